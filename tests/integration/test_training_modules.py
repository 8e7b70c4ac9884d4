"""training_job against the local control plane: real scheduler, Job controller, EndpointSlice
controller, the real Kubeflow/JobSet CRD schemas, and the real JobSet and Trainer controllers and
webhooks (tools/local_cluster.py). Only the Training Operator v1 kinds (PyTorchJob, TFJob), whose
controller does not run here, get their status set by the tests."""

import json
import re
import socket
import threading
import time

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params

# The operators' CRDs (and charts) from ../shared: skipped on a plain clone (tests/conftest.py).
pytestmark = pytest.mark.upstream

INDEX = "batch.kubernetes.io/job-completion-index"
UNREACHABLE = {"host": "https://127.0.0.1:9", "validate_certs": False}


def pods_of(kube, namespace, selector):
    items = kube.get("/api/v1/namespaces/%s/pods" % namespace, query={"labelSelector": selector})["items"]
    return sorted(items, key=lambda p: int(p["metadata"]["annotations"].get(INDEX, 0)))


def env_values(container):
    return dict((e["name"], e.get("value")) for e in container.get("env") or [])


def kubelet_expand(value, pod, container):
    """Resolve $(VAR) the way the kubelet does: literal values, and fieldRef annotations."""
    resolved = {}
    for env in container.get("env") or []:
        if "value" in env:
            resolved[env["name"]] = re.sub(r"\$\((\w+)\)", lambda m: resolved.get(m.group(1), m.group(0)), env["value"])
        else:
            path = env["valueFrom"]["fieldRef"]["fieldPath"]
            where, key = re.match(r"metadata\.(annotations|labels)\['(.+)'\]", path).groups()
            resolved[env["name"]] = pod["metadata"][where][key]
    return re.sub(r"\$\((\w+)\)", lambda m: resolved.get(m.group(1), m.group(0)), value), resolved


class EndpointSliceWatch:
    """Records every EndpointSlice version in a namespace (KWOK completes Job pods at once, so the
    endpoints exist only briefly; a watch sees every version the controller wrote)."""

    def __init__(self, kubeconfig, namespace):
        self.events = []
        self.client = KubeClient(config_from_params({"kubeconfig": kubeconfig}))
        conn = self.client._connect()
        path = "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices?watch=1&timeoutSeconds=120" % namespace
        conn.putrequest("GET", self.client.config.base_path + path)
        for name, value in self.client._headers(None, False):  # pairs: a header may repeat
            conn.putheader(name, value)
        conn.endheaders()
        self.resp = conn.getresponse()
        self.conn = conn
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for line in iter(self.resp.readline, b""):
                self.events.append(json.loads(line)["object"])
        except (OSError, ValueError):
            pass

    def close(self):
        # Shut the socket first: the reader thread holds the response's buffer lock in readline().
        if self.conn.sock is not None:
            try:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(5)
        self.conn.close()


def test_pytorch_2x8_job_rendezvous_and_completion(module_runner, kube, namespace, kubeconfig, gpu_pool):
    product, _pool_nodes = gpu_pool(2)  # two whole 8-GPU nodes, whatever else holds GPUs
    args = {
        "name": "ddp",
        "namespace": namespace,
        "script": "/workspace/train.py",
        "args": ["--epochs", "1"],
        "nodes": 2,
        "gpus_per_node": 8,
        "gpu_product": product,
        "memory": "64Gi",
        "wait_timeout": 90,
        # Both pods hold their GPUs together for a while (tools/kwok-stages/pod-complete.yaml):
        # a simulated pod that completed at once could free its node for the other one.
        "pod_annotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "5s"},
    }
    check = module_runner("training_job", args, check_mode=True)
    assert check["changed"] is True, check
    assert kube.get("/apis/batch/v1/namespaces/%s/jobs" % namespace)["items"] == []
    assert kube.get("/api/v1/namespaces/%s/services" % namespace)["items"] == []

    watch = EndpointSliceWatch(kubeconfig, namespace)
    try:
        result = module_runner("training_job", args)
        time.sleep(1)
    finally:
        watch.close()
    assert result.get("failed") is not True, result
    assert result["changed"] is True
    training = result["training"]
    assert training["state"] == "succeeded" and training["rendezvous_endpoint"] == "ddp-0.ddp:29400"
    assert training["timings"]["start_time"] and training["timings"]["completion_time"]

    job = kube.get("/apis/batch/v1/namespaces/%s/jobs/ddp" % namespace)
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"])
    assert job["status"]["succeeded"] == 2 and job["spec"]["completionMode"] == "Indexed"

    svc = kube.get("/api/v1/namespaces/%s/services/ddp" % namespace)
    assert svc["spec"]["clusterIP"] == "None"

    pods = pods_of(kube, namespace, "batch.kubernetes.io/job-name=ddp")
    assert len(pods) == 2
    nodes = dict((n["metadata"]["name"], n) for n in kube.get("/api/v1/nodes")["items"])
    bound = set()
    for index, pod in enumerate(pods):
        spec = pod["spec"]
        # Bound by the real scheduler to a simulated GPU node that had 8 free GPUs.
        node = nodes[spec["nodeName"]]
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == product
        assert int(node["status"]["allocatable"]["nvidia.com/gpu"]) >= 8
        bound.add(spec["nodeName"])
        ctr = spec["containers"][0]
        assert ctr["resources"]["limits"]["nvidia.com/gpu"] == "8"
        # Stable DNS: <job>-<index>.<headless service>
        assert spec["hostname"] == "ddp-%d" % index and spec["subdomain"] == svc["metadata"]["name"]
        command = " ".join(ctr["command"])
        expanded, env = kubelet_expand(command, pod, ctr)
        assert "--node-rank=%d" % index in expanded
        assert "--nnodes=2" in expanded and "--nproc-per-node=8" in expanded
        assert "--rdzv-backend=c10d --rdzv-endpoint=ddp-0.ddp:29400" in expanded
        assert env["NODE_RANK"] == str(index) and env["WORLD_SIZE"] == "16" and env["MASTER_ADDR"] == "ddp-0.ddp"
        assert any(m["mountPath"] == "/dev/shm" for m in ctr["volumeMounts"])
    assert len(bound) == 2, "8 GPUs each: the two pods must be on two different 8-GPU nodes"

    # The rendezvous name ddp-0.ddp resolves to the pod the headless Service selects: the Service
    # selects every pod, and the EndpointSlice controller publishes each pod under its hostname
    # (DNS: <hostname>.<service>). KWOK completes a Job's pod the moment it runs, so a pod can be
    # gone from the slices before the controller's first sync: every published pod must carry its
    # own index's hostname, and at least one must have been published.
    for pod in pods:
        assert all(pod["metadata"]["labels"].get(k) == v for k, v in svc["spec"]["selector"].items())
    hostnames = dict((pod["metadata"]["name"], pod["spec"]["hostname"]) for pod in pods)
    listed = [ep for sl in watch.events if sl["metadata"]["labels"].get("kubernetes.io/service-name") == "ddp" for ep in sl.get("endpoints") or []]
    assert listed, "the EndpointSlice controller published no pod of the job"
    assert all(ep["targetRef"]["name"] in hostnames and ep.get("hostname") == hostnames[ep["targetRef"]["name"]] for ep in listed), listed

    again = module_runner("training_job", args)
    assert again["changed"] is False, again["resources"]
    assert again["training"]["state"] == "succeeded"

    changed = module_runner("training_job", dict(args, script="/workspace/other.py"))
    assert changed["failed"] is True
    assert "spec.template cannot change once the job exists" in changed["msg"] and len(changed["msg"]) < 300, changed["msg"]


def test_tensorflow_workers_get_their_own_tf_config(module_runner, kube, namespace):
    result = module_runner(
        "training_job",
        {"name": "tfw", "namespace": namespace, "framework": "tensorflow", "script": "/w/train.py", "nodes": 3, "gpus_per_node": 1, "wait_timeout": 90},
    )
    assert result["training"]["state"] == "succeeded", result
    pods = pods_of(kube, namespace, "batch.kubernetes.io/job-name=tfw")
    assert len(pods) == 3
    workers = ["tfw-0.tfw:2222", "tfw-1.tfw:2222", "tfw-2.tfw:2222"]
    for index, pod in enumerate(pods):
        ctr = pod["spec"]["containers"][0]
        raw = env_values(ctr)["TF_CONFIG"]
        tf_config = json.loads(kubelet_expand(raw, pod, ctr)[0])
        assert tf_config == {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        # Each worker name is a pod of this job behind the headless service.
        assert "%s.%s:2222" % (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == workers[index]


def test_job_failure_fails_fast_with_pod_reason(module_runner, kube, namespace):
    out = {}
    args = {
        "name": "oom",
        "namespace": namespace,
        "script": "/w/train.py",
        "nodes": 2,
        "gpus_per_node": 8,
        "node_selector": {"pool": "none"},
        "wait_timeout": 120,
    }
    runner = threading.Thread(target=lambda: out.setdefault("result", module_runner("training_job", args)))
    started = time.time()
    runner.start()
    pod = None
    while time.time() - started < 30 and pod is None:
        pods = pods_of(kube, namespace, "batch.kubernetes.io/job-name=oom")
        pod = pods[0] if pods else None
        time.sleep(0.2)
    assert pod is not None and pod["status"]["phase"] == "Pending"
    status = {
        "phase": "Failed",
        "containerStatuses": [
            {
                "name": "pytorch",
                "image": "x",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": "CUDA out of memory"}},
            }
        ],
    }
    kube.request(
        "PATCH",
        "/api/v1/namespaces/%s/pods/%s/status" % (namespace, pod["metadata"]["name"]),
        body={"status": status},
        content_type="application/merge-patch+json",
    )
    runner.join(60)
    result = out["result"]
    assert result["failed"] is True
    assert time.time() - started < 60, "must fail fast, not at wait_timeout"
    assert "BackoffLimitExceeded" in result["msg"] and "CUDA out of memory" in result["msg"], result["msg"]
    assert result["failed_pod"]["pod"] == pod["metadata"]["name"]
    assert result["failed_pod"]["log_tail"] is None and "log tail unavailable" in result["msg"]

    # The failure is remembered too: once the Job is gone, a re-run reports it instead of training again.
    record = kube.get("/api/v1/namespaces/%s/configmaps/oom-training-record" % namespace)
    assert record["data"]["state"] == "failed" and "BackoffLimitExceeded" in record["data"]["reason"]
    kube.delete("/apis/batch/v1/namespaces/%s/jobs/oom" % namespace, body={"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"})
    deadline = time.time() + 30
    while time.time() < deadline and kube.get("/apis/batch/v1/namespaces/%s/jobs" % namespace)["items"]:
        time.sleep(0.2)
    again = module_runner("training_job", args)
    assert again["failed"] is True and "already ran and failed" in again["msg"] and "rerun: true" in again["msg"], again["msg"]
    assert kube.get("/apis/batch/v1/namespaces/%s/jobs" % namespace)["items"] == []


def test_unschedulable_job_reports_the_schedulers_reason(module_runner, namespace):
    # 9 GPUs per pod on 8-GPU nodes: the Job stays active with its pod Pending. The wait ends with
    # the scheduler's reason from the pod, not only the Job's own "1 active" and events.
    args = {"name": "nine", "namespace": namespace, "script": "/t.py", "gpus_per_node": 9, "wait_timeout": 8}
    res = module_runner("training_job", args)
    assert res.get("failed") is True, res
    assert "1 active" in res["msg"] and "Unschedulable" in res["msg"] and "Insufficient nvidia.com/gpu" in res["msg"], res["msg"]


def test_operator_backends_accepted_by_crd_schemas(module_runner, getter, namespace, operators):
    common = {"namespace": namespace, "script": "/w/train.py", "wait": False, "checkpoint": {"claim_name": "ckpt"}}
    cases = [
        ("kubeflow.org/v1", "PyTorchJob", dict(common, name="ptj", backend="pytorchjob", nodes=2, gpus_per_node=8)),
        ("kubeflow.org/v1", "PyTorchJob", dict(common, name="ptj-elastic", backend="pytorchjob", nodes=4, elastic={"min_nodes": 2})),
        ("trainer.kubeflow.org/v1alpha1", "TrainJob", dict(common, name="trj", backend="trainjob", nodes=2, gpus_per_node=8)),
        ("kubeflow.org/v1", "TFJob", dict(common, name="tfj", framework="tensorflow", strategy="parameter_server", backend="tfjob", nodes=2, ps_replicas=1)),
    ]
    for api_version, kind, args in cases:
        result = module_runner("training_job", args)
        assert result.get("failed") is not True, (kind, result.get("msg"))
        assert getter(api_version, kind, args["name"], namespace) is not None
        assert module_runner("training_job", args)["changed"] is False, kind

    # JobSet with parameter servers: the real JobSet controller (tools/local_cluster.py) runs it.
    args = dict(common, name="tfps", framework="tensorflow", strategy="parameter_server", backend="jobset", nodes=2, ps_replicas=2, wait=True, wait_timeout=120)
    args.pop("checkpoint")  # no storage provisioner: a claim would keep the pods Pending
    result = module_runner("training_job", args)
    assert result.get("failed") is not True, result.get("msg")
    assert result["training"]["state"] == "succeeded" and result["training"]["kind"] == "JobSet"
    jobset = getter("jobset.x-k8s.io/v1alpha2", "JobSet", "tfps", namespace)
    assert jobset["spec"]["successPolicy"] == {"operator": "All", "targetReplicatedJobs": ["chief", "worker"]}


def test_operator_job_failure_is_reported(module_runner, getter, namespace, status_patcher):
    # Simulated: no Training Operator v1 controller runs here (PyTorchJob is kubeflow.org/v1), so
    # its verdict is set through the status subresource as that controller would.
    out = {}
    args = {"name": "ptj-fail", "namespace": namespace, "backend": "pytorchjob", "script": "/w/train.py", "nodes": 2, "gpus_per_node": 8, "wait_timeout": 60}
    runner = threading.Thread(target=lambda: out.setdefault("result", module_runner("training_job", args)))
    started = time.time()
    runner.start()
    while getter("kubeflow.org/v1", "PyTorchJob", "ptj-fail", namespace) is None and time.time() - started < 30:
        time.sleep(0.2)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status_patcher(
        "kubeflow.org/v1",
        "PyTorchJob",
        "ptj-fail",
        namespace,
        {
            "replicaStatuses": {},
            "conditions": [
                {"type": "Created", "status": "True", "reason": "PyTorchJobCreated", "message": "created", "lastUpdateTime": now, "lastTransitionTime": now},
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "PyTorchJobFailed",
                    "message": "Worker 1 exited with code 1",
                    "lastUpdateTime": now,
                    "lastTransitionTime": now,
                },
            ],
        },
    )
    runner.join(60)
    result = out["result"]
    assert result["failed"] is True and time.time() - started < 45
    assert "PyTorchJobFailed: Worker 1 exited with code 1" in result["msg"], result["msg"]


def writes(result):
    return dict((verb, n) for verb, n in result["api_requests"].items() if verb in ("POST", "PUT", "PATCH", "DELETE"))


def test_finished_run_is_not_repeated_after_ttl_garbage_collection(module_runner, kube, namespace):
    args = {"name": "once", "namespace": namespace, "script": "/w/train.py", "nodes": 2, "gpus_per_node": 0, "wait_timeout": 90}
    first = module_runner("training_job", args)
    assert first.get("failed") is not True, first
    assert first["training"]["state"] == "succeeded" and first["training"]["already_ran"] is False
    job = kube.get("/apis/batch/v1/namespaces/%s/jobs/once" % namespace)
    completed, first_uid = job["status"]["completionTime"], job["metadata"]["uid"]
    record = kube.get("/api/v1/namespaces/%s/configmaps/once-training-record" % namespace)
    assert record["data"]["state"] == "succeeded" and record["data"]["completion-time"] == completed
    assert not record["metadata"].get("ownerReferences")

    # What the TTL-after-finished controller does: delete the Job, its pods in the background.
    kube.delete("/apis/batch/v1/namespaces/%s/jobs/once" % namespace, body={"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"})
    deadline = time.time() + 30
    while time.time() < deadline and kube.get("/apis/batch/v1/namespaces/%s/jobs" % namespace)["items"]:
        time.sleep(0.2)
    assert kube.get("/apis/batch/v1/namespaces/%s/jobs" % namespace)["items"] == []

    again = module_runner("training_job", args)
    assert again.get("failed") is not True, again
    assert again["changed"] is False and writes(again) == {}, again["api_requests"]
    assert kube.get("/apis/batch/v1/namespaces/%s/jobs" % namespace)["items"] == [], "the training ran again"
    training = again["training"]
    assert training["already_ran"] is True and training["state"] == "succeeded"
    assert "already completed at %s" % completed in training["reason"] and "rerun" in training["reason"], training["reason"]
    assert training["timings"]["completion_time"] == completed

    # Another spec is another run; rerun: true runs this one again.
    rerun = module_runner("training_job", dict(args, rerun=True))
    assert rerun.get("failed") is not True, rerun
    assert rerun["changed"] is True and rerun["training"]["state"] == "succeeded" and rerun["training"]["already_ran"] is False
    job = kube.get("/apis/batch/v1/namespaces/%s/jobs/once" % namespace)
    assert job["metadata"]["uid"] != first_uid and job["status"]["succeeded"] == 2
    settled = module_runner("training_job", args)
    assert settled["changed"] is False and writes(settled) == {}, settled["api_requests"]

    # rerun with the finished Job still there: it is replaced by a new one.
    old_uid = job["metadata"]["uid"]
    replaced = module_runner("training_job", dict(args, rerun=True))
    assert replaced.get("failed") is not True, replaced
    assert replaced["removed"] == [{"apiVersion": "batch/v1", "kind": "Job", "name": "once", "namespace": namespace}]
    assert kube.get("/apis/batch/v1/namespaces/%s/jobs/once" % namespace)["metadata"]["uid"] != old_uid

    gone = module_runner("training_job", dict(args, state="absent"))
    assert gone["changed"] is True
    assert kube.get("/api/v1/namespaces/%s/configmaps" % namespace, query={"labelSelector": "aiinfra.cluster/training-record=true"})["items"] == []


def test_operator_backend_run_is_remembered_too(module_runner, getter, namespace, status_patcher, kube):
    args = {"name": "ptj-once", "namespace": namespace, "backend": "pytorchjob", "script": "/w/train.py", "nodes": 2, "gpus_per_node": 8, "wait": False}
    assert module_runner("training_job", args).get("failed") is not True
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status_patcher(
        "kubeflow.org/v1",
        "PyTorchJob",
        "ptj-once",
        namespace,
        {
            "replicaStatuses": {},
            "startTime": now,
            "completionTime": now,
            "conditions": [
                {"type": "Succeeded", "status": "True", "reason": "PyTorchJobSucceeded", "message": "done", "lastUpdateTime": now, "lastTransitionTime": now}
            ],
        },
    )
    seen = module_runner("training_job", args)
    assert seen["training"]["state"] == "succeeded" and seen["changed"] is True  # the outcome is recorded
    assert module_runner("training_job", args)["changed"] is False
    kube.delete("/apis/kubeflow.org/v1/namespaces/%s/pytorchjobs/ptj-once" % namespace)
    deadline = time.time() + 30
    while time.time() < deadline and getter("kubeflow.org/v1", "PyTorchJob", "ptj-once", namespace) is not None:
        time.sleep(0.2)
    again = module_runner("training_job", args)
    assert again["changed"] is False and writes(again) == {}, again
    assert again["training"]["already_ran"] is True and "already completed at %s" % now in again["training"]["reason"]
    assert getter("kubeflow.org/v1", "PyTorchJob", "ptj-once", namespace) is None


def test_bad_input_fails_before_any_request(module_runner):
    # An unreachable API server: any request would fail with "cannot reach"; these must fail earlier.
    cases = [
        ({"name": "x", "script": "t.py", "framework": "tensorflow", "strategy": "parameter_server", "ps_replicas": 1}, "backend tfjob or jobset"),
        ({"name": "x", "script": "t.py", "backend": "tfjob"}, "option backend"),
        ({"name": "x", "script": "t.py", "elastic": {"min_nodes": 5}, "nodes": 2}, "option elastic"),
        ({"name": "x"}, "script"),
    ]
    for args, words in cases:
        result = module_runner("training_job", dict(args, **UNREACHABLE))
        assert result["failed"] is True
        assert words in result["msg"] and "cannot reach" not in result["msg"], result["msg"]
