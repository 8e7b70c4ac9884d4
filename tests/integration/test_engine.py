"""The apply engine against the real local control plane, through the `resources` module."""

import json
import os
import socket
import threading
import time

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params


def configmap(ns, name="cm", data=None):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data or {"a": "1"}}


def deployment(ns, name="web", replicas=1, gpus=0, image="registry.local/web:1"):
    container = {"name": "web", "image": image}
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
        },
    }


def test_create_update_noop_delete(module_runner, namespace, getter):
    objs = [configmap(namespace), deployment(namespace, gpus=1)]
    first = module_runner("resources", {"definitions": objs})
    assert first["changed"] and [r["action"] for r in first["resources"]] == ["created", "created"], first
    # The real scheduler bound the pod and KWOK ran it: the rollout wait succeeded.
    assert first["resources"][1]["object"]["status"]["availableReplicas"] == 1

    second = module_runner("resources", {"definitions": objs})
    assert not second["changed"], second
    assert "PATCH" not in second["api_requests"], second["api_requests"]

    objs[0]["data"] = {"a": "2"}
    third = module_runner("resources", {"definitions": objs}, diff=True)
    assert [r["action"] for r in third["resources"]] == ["updated", "unchanged"]
    assert getter("v1", "ConfigMap", "cm", namespace)["data"] == {"a": "2"}
    diff = third["diff"][0]
    assert diff["before"]["data"] == {"a": "1"} and diff["after"]["data"] == {"a": "2"}
    assert "managedFields" not in json.dumps(diff) and "resourceVersion" not in json.dumps(diff)

    gone = module_runner("resources", {"definitions": objs, "state": "absent"})
    assert gone["changed"] and getter("apps/v1", "Deployment", "web", namespace) is None
    again = module_runner("resources", {"definitions": objs, "state": "absent"})
    assert not again["changed"] and [r["action"] for r in again["resources"]] == ["absent", "absent"]


def test_dropped_field_is_pruned(module_runner, namespace, getter):
    module_runner("resources", {"definitions": [configmap(namespace, data={"a": "1", "b": "2"})]})
    result = module_runner("resources", {"definitions": [configmap(namespace, data={"a": "1"})]})
    assert result["changed"]
    assert getter("v1", "ConfigMap", "cm", namespace)["data"] == {"a": "1"}


def test_check_mode_creates_nothing_and_still_validates(module_runner, namespace, getter):
    result = module_runner("resources", {"definitions": [configmap(namespace)]}, check_mode=True, diff=True)
    assert result["changed"] and result["resources"][0]["action"] == "created"
    assert result["diff"][0]["after"]["data"] == {"a": "1"}
    assert getter("v1", "ConfigMap", "cm", namespace) is None

    bad = deployment(namespace, replicas=-1)
    result = module_runner("resources", {"definitions": [bad]}, check_mode=True)
    assert result.get("failed") and "spec.replicas" in result["msg"], result
    assert getter("apps/v1", "Deployment", "web", namespace) is None


def test_validation_error_names_field_and_leaves_bundle_unapplied(module_runner, namespace, getter):
    objs = [configmap(namespace), deployment(namespace, replicas=-3)]
    result = module_runner("resources", {"definitions": objs})
    assert result.get("failed"), result
    assert "Deployment %s/web rejected by the API server" % namespace in result["msg"]
    assert "spec.replicas" in result["msg"] and "nothing in this bundle was changed" in result["msg"]
    assert getter("v1", "ConfigMap", "cm", namespace) is None


def test_unknown_field_is_rejected_by_the_schema(module_runner, namespace):
    obj = configmap(namespace)
    obj["spec"] = {"oops": True}
    result = module_runner("resources", {"definitions": [obj]})
    assert result.get("failed") and ".spec: field not declared in schema" in result["msg"], result
    assert "rejected by the API server" in result["msg"] and result["api_requests"]["PATCH"] == 1


def test_bundle_with_its_own_namespace(module_runner, kube, namespace):
    ns = namespace + "-b"
    objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, configmap(ns)]
    try:
        result = module_runner("resources", {"definitions": objs})
        assert [r["action"] for r in result["resources"]] == ["created", "created"], result
    finally:
        module_runner("resources", {"definitions": objs[:1], "state": "absent", "wait": False})


def test_field_manager_conflict_needs_force(module_runner, kube, namespace, getter):
    other = configmap(namespace, data={"a": "theirs"})
    kube.apply_patch("/api/v1/namespaces/%s/configmaps/cm" % namespace, other, "someone-else")
    result = module_runner("resources", {"definitions": [configmap(namespace, data={"a": "ours"})]})
    assert result.get("failed") and "conflict" in result["msg"] and "force_conflicts" in result["msg"], result
    assert ".data.a" in result["msg"] and "someone-else" in result["msg"]
    assert getter("v1", "ConfigMap", "cm", namespace)["data"] == {"a": "theirs"}
    result = module_runner("resources", {"definitions": [configmap(namespace, data={"a": "ours"})], "force_conflicts": True})
    assert result["changed"] and getter("v1", "ConfigMap", "cm", namespace)["data"] == {"a": "ours"}


def test_missing_crd_is_named_with_its_installer(module_runner, namespace):
    # Gateway API: a group none of ../shared/crds brings (Kueue's CRDs are installed since 1.1).
    obj = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "q", "namespace": namespace}, "spec": {}}
    result = module_runner("resources", {"definitions": [obj]})
    assert result.get("failed") and "httproutes.gateway.networking.k8s.io" in result["msg"], result
    # A version of a known group that this cluster does not serve: the installer is named.
    obj = {"apiVersion": "serving.kserve.io/v1alpha9", "kind": "InferenceService", "metadata": {"name": "m", "namespace": namespace}, "spec": {}}
    result = module_runner("resources", {"definitions": [obj]})
    assert result.get("failed") and "inferenceservices.serving.kserve.io" in result["msg"], result
    assert "KServe (role aiinfra.cluster.kserve)" in result["msg"] and result["api_requests"] == {"GET": 1}


def test_wait_timeout_reports_last_status_and_events(module_runner, namespace):
    result = module_runner("resources", {"definitions": [deployment(namespace, gpus=100)], "wait_timeout": 4})
    assert result.get("failed") and "not ready after 4s" in result["msg"], result
    assert "0/1 replicas updated" in result["msg"] or "replicas" in result["msg"]
    assert "ScalingReplicaSet" in result["msg"], result["msg"]
    assert "Unschedulable" in result["msg"] and "Insufficient nvidia.com/gpu" in result["msg"], result["msg"]
    assert result["last_status"] is not None


@pytest.mark.upstream
def test_condition_wait_uses_operator_status(module_runner, namespace, operators):
    # KServe's controller writes the InferenceService's conditions (tools/local_cluster.py runs it).
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m", "namespace": namespace},
        "spec": {"predictor": {"nodeSelector": {"pool": "none"}, "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://bucket/model"}}},
    }
    result = module_runner("resources", {"definitions": [isvc], "wait_timeout": 15})
    assert result.get("failed") and "condition Ready is False" in result["msg"], result.get("msg")
    assert "Deployment does not have minimum availability" in result["msg"] or "MinimumReplicasUnavailable" in result["msg"], result["msg"]
    del isvc["spec"]["predictor"]["nodeSelector"]
    result = module_runner("resources", {"definitions": [isvc], "wait_timeout": 120})
    assert not result.get("failed") and result["changed"], result.get("msg")


def test_bad_connection_settings(module_runner, tmp_path, kubeconfig):
    result = module_runner("resources", {"definitions": [configmap("default")], "kubeconfig": str(tmp_path / "nope")})
    assert result.get("failed") and "nope does not exist" in result["msg"]

    result = module_runner("resources", {"definitions": [configmap("default")], "context": "staging"})
    assert result.get("failed") and "context 'staging' not found" in result["msg"] and "aiinfra-local" in result["msg"]

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = module_runner("resources", {"definitions": [configmap("default")], "host": "https://127.0.0.1:%d" % port, "validate_certs": False})
    assert result.get("failed") and "cannot reach the Kubernetes API server at https://127.0.0.1:%d" % port in result["msg"]


def test_client_survives_dropped_connections(kubeconfig):
    """A TCP proxy in front of the real API server that cuts the first two connections."""
    cfg = config_from_params({"kubeconfig": kubeconfig})
    upstream_addr = (cfg.hostname, cfg.port)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    drops = {"left": 2}

    def pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve():
        while True:
            try:
                conn = listener.accept()[0]
            except OSError:
                return
            if drops["left"] > 0:
                drops["left"] -= 1
                conn.close()
                continue
            upstream = socket.create_connection(upstream_addr)
            threading.Thread(target=pipe, args=(conn, upstream), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        cfg.hostname, cfg.port = "127.0.0.1", listener.getsockname()[1]
        cfg.ssl_context.check_hostname = True  # the serving cert names 127.0.0.1
        client = KubeClient(cfg, backoff=0.05)
        assert client.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"
        assert drops["left"] == 0
        client.close()
    finally:
        listener.close()


def test_gpu_node_info_reports_simulated_gpus(module_runner, namespace):
    base = module_runner("gpu_node_info", {})
    # Nodes, pods, the DRA ResourceSlices and the ResourceClaims: one list each.
    assert base["totals"]["nodes"] >= 4 and base["api_requests"] == {"GET": 4}, base["api_requests"]
    h100 = base["products"]["NVIDIA-H100-80GB-HBM3"]
    assert h100["gpu_capacity"] == 8 * h100["nodes"]
    # The launcher publishes every simulated GPU as a DRA device too (NVML's name has spaces).
    assert base["dra"]["products"]["NVIDIA H100 80GB HBM3"]["devices"] == h100["gpu_capacity"], base["dra"]
    assert module_runner("gpu_node_info", {"dra": False})["api_requests"] == {"GET": 2}
    module_runner("resources", {"definitions": [deployment(namespace, replicas=2, gpus=3)]})
    after = module_runner("gpu_node_info", {"product": "NVIDIA-H100-80GB-HBM3"})
    assert after["products"]["NVIDIA-H100-80GB-HBM3"]["gpu_requested"] == h100["gpu_requested"] + 6
    assert all(n["product"] == "NVIDIA-H100-80GB-HBM3" for n in after["nodes"])
    none = module_runner("gpu_node_info", {"product": "Tesla-K80"})
    assert none["nodes"] == [] and none["totals"]["nodes"] == 0
    cpu = module_runner("gpu_node_info", {"only_gpu_nodes": False, "label_selector": "!nvidia.com/gpu.present"})
    assert cpu["nodes"] and all(n["gpu_capacity"] == 0 for n in cpu["nodes"])
    assert os.environ["K8S_AUTH_KUBECONFIG"]


def test_secret_values_never_appear_in_results_or_diffs(module_runner, namespace, getter):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": namespace}, "stringData": {"token": "s3cr3t-value"}}
    first = module_runner("resources", {"definitions": [secret]}, diff=True)
    first.pop("invocation")  # the task's own arguments; tasks passing secrets set no_log
    assert first["changed"] and "s3cr3t-value" not in json.dumps(first)
    assert "czNjcjN0LXZhbHVl" not in json.dumps(first)  # nor its base64
    assert getter("v1", "Secret", "s", namespace)["data"]["token"] == "czNjcjN0LXZhbHVl"
    assert not module_runner("resources", {"definitions": [secret]})["changed"]
    secret["stringData"]["token"] = "n3w-value"
    changed = module_runner("resources", {"definitions": [secret]}, diff=True)
    changed.pop("invocation")
    assert changed["changed"] and "n3w-value" not in json.dumps(changed)


def test_missing_namespace_is_named_not_mistaken_for_a_missing_crd(module_runner, namespace):
    obj = configmap(namespace + "-absent")
    result = module_runner("resources", {"definitions": [obj]})
    assert result.get("failed") and "namespace %s-absent does not exist" % namespace in result["msg"], result
    # In check mode (a play whose namespace task did not really run) the object would be created.
    result = module_runner("resources", {"definitions": [obj]}, check_mode=True)
    assert not result.get("failed") and result["resources"][0]["action"] == "created", result


def test_batch_checks_state_dependent_requirements_before_anything(module_runner, namespace, getter):
    """triton_server requires model_repository with state=present: in a batch too, checked for every
    element before the first is applied."""
    good = {"name": "t1", "namespace": namespace, "model_repository": "gs://bucket/models"}
    bad = {"name": "t2", "namespace": namespace}
    result = module_runner("triton_server", {"batch": [good, bad], "wait": False})
    assert result.get("failed") and "batch[1] t2" in result["msg"] and "model_repository" in result["msg"], result
    assert getter("apps/v1", "Deployment", "t1", namespace) is None
    result = module_runner("triton_server", {"batch": [good], "wait": False})
    assert not result.get("failed") and result["changed"], result


# Objects being deleted -------------------------------------------------------------------------
def _merge_patch(kube, path, body):
    return kube.request("PATCH", path, body=body, content_type="application/merge-patch+json")


def _terminating_configmap(kube, module_runner, namespace):
    """cm, applied by the module, then deleted while a finalizer (held by someone else) keeps it."""
    module_runner("resources", {"definitions": [configmap(namespace)]})
    path = "/api/v1/namespaces/%s/configmaps/cm" % namespace
    _merge_patch(kube, path, {"metadata": {"finalizers": ["example.com/hold"]}})
    kube.delete(path)
    held = kube.get(path)
    assert held["metadata"].get("deletionTimestamp"), held
    return path, held["metadata"]["uid"]


def test_object_being_deleted_is_not_reported_present(module_runner, kube, namespace):
    path, old_uid = _terminating_configmap(kube, module_runner, namespace)
    # Without waiting: a clear failure naming the finalizer, nothing written.
    result = module_runner("resources", {"definitions": [configmap(namespace)], "wait": False})
    assert result.get("failed") and "ConfigMap %s/cm is being deleted (finalizers: example.com/hold)" % namespace in result["msg"], result
    assert "PATCH" not in result["api_requests"]
    # Waiting, bounded by wait_timeout: still held, so it fails saying so.
    result = module_runner("resources", {"definitions": [configmap(namespace)], "wait_timeout": 2})
    assert result.get("failed") and "is being deleted" in result["msg"] and "still there after 2s" in result["msg"], result
    # state=absent on an object already on its way out changes nothing.
    gone = module_runner("resources", {"definitions": [configmap(namespace)], "state": "absent", "wait": False})
    assert gone["changed"] is False and gone["resources"][0]["action"] == "terminating", gone
    assert "DELETE" not in gone["api_requests"]

    # Waiting: once the finalizer's holder lets go, the object is created again.
    release = threading.Timer(2.0, lambda: _merge_patch(kube, path, {"metadata": {"finalizers": None}}))
    release.start()
    try:
        result = module_runner("resources", {"definitions": [configmap(namespace)], "wait_timeout": 30})
    finally:
        release.join()
    assert result.get("failed") is not True, result.get("msg")
    res = result["resources"][0]
    assert result["changed"] and res["action"] == "created" and "is being deleted" in res["warning"], res
    assert kube.get(path)["metadata"]["uid"] != old_uid


# The applied-hash recipe -----------------------------------------------------------------------
@pytest.mark.upstream
def test_older_hash_recipe_with_the_desired_fields_gets_no_write(module_runner, kube, namespace, getter):
    """An object applied by an earlier release (a bare, unversioned digest) already holding the
    desired fields is left alone: upgrading the collection rewrites nothing."""
    obj = deployment(namespace)
    obj["metadata"]["annotations"] = {"aiinfra.cluster/applied-hash": "0123456789abcdef0123"}
    path = "/apis/apps/v1/namespaces/%s/deployments/web" % namespace
    kube.apply_patch(path, obj, "aiinfra.cluster")
    result = module_runner("resources", {"definitions": [deployment(namespace)], "wait": False})
    assert result["changed"] is False and "PATCH" not in result["api_requests"], result
    # A real change still goes out, with the current recipe.
    result = module_runner("resources", {"definitions": [deployment(namespace, replicas=2)], "wait": False})
    assert result["changed"] is True and result["api_requests"]["PATCH"] == 1
    stored = getter("apps/v1", "Deployment", "web", namespace)["metadata"]["annotations"]["aiinfra.cluster/applied-hash"]
    assert stored.startswith("v2-"), stored


# Waits -----------------------------------------------------------------------------------------
# The simulated GPU Operator's ClusterPolicy: its controller is not served at the pinned version.
CLUSTER_POLICY_SPEC = dict(
    (key, {}) for key in ("daemonsets", "dcgm", "dcgmExporter", "devicePlugin", "driver", "gfd", "nodeStatusExporter", "operator", "toolkit")
)


@pytest.mark.upstream
def test_cluster_policy_ready_needs_its_operands_rolled_out(module_runner, kube, namespace, status_patcher):
    name = "cp-" + namespace[-5:]
    policy = {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "metadata": {"name": name}, "spec": CLUSTER_POLICY_SPEC}
    created = module_runner("resources", {"definitions": [policy], "wait": False})
    assert created.get("failed") is not True, created.get("msg")
    try:
        uid = kube.get("/apis/nvidia.com/v1/clusterpolicies/%s" % name)["metadata"]["uid"]
        # Simulated operator: state ready (from before the upgrade), and an operand DaemonSet whose
        # new generation cannot roll out (its pods ask for more GPUs than any node has).
        status_patcher("nvidia.com/v1", "ClusterPolicy", name, None, {"state": "ready", "namespace": namespace})
        operand = {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "nvidia-device-plugin-daemonset", "namespace": namespace,
                         "ownerReferences": [{"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "name": name, "uid": uid, "controller": True}]},
            "spec": {
                "selector": {"matchLabels": {"app": "dp"}},
                "template": {
                    "metadata": {"labels": {"app": "dp"}},
                    "spec": {
                        "nodeSelector": {"nvidia.com/gpu.present": "true"},
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [{"name": "dp", "image": "registry.local/dp:2", "resources": {"limits": {"nvidia.com/gpu": "1000"}}}],
                    },
                },
            },
        }
        kube.apply_patch("/apis/apps/v1/namespaces/%s/daemonsets/%s" % (namespace, operand["metadata"]["name"]), operand, "simulated-gpu-operator")
        result = module_runner("resources", {"definitions": [policy], "wait_timeout": 4})
        assert result.get("failed") and "operand DaemonSet %s/nvidia-device-plugin-daemonset" % namespace in result["msg"], result
        operand["spec"]["template"]["spec"]["containers"][0]["resources"] = {}
        kube.apply_patch("/apis/apps/v1/namespaces/%s/daemonsets/%s" % (namespace, operand["metadata"]["name"]), operand, "simulated-gpu-operator")
        result = module_runner("resources", {"definitions": [policy], "wait_timeout": 60})
        assert result.get("failed") is not True, result.get("msg")
    finally:
        kube.delete("/apis/nvidia.com/v1/clusterpolicies/%s" % name)


def test_only_wait_reads_and_waits_but_never_writes(module_runner, kube, namespace):
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "made-elsewhere", "namespace": namespace}}
    # Check mode reports the wait without a request: what it waits for may come from a task check
    # mode did not run (a chart), and its CRD may not exist yet.
    crd_missing = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": namespace}}
    res = module_runner("resources", {"definitions": [ref], "only_wait": True}, check_mode=True)
    assert res["changed"] is False and res["resources"][0]["action"] == "would wait" and res["api_requests"] == {}, res
    res = module_runner("resources", {"definitions": [crd_missing], "only_wait": True, "wait_for": {"condition": "Accepted"}}, check_mode=True)
    assert res.get("failed") is not True and res["api_requests"] == {}, res
    # Missing: the wait says so at its end, and nothing was created.
    res = module_runner("resources", {"definitions": [ref], "only_wait": True, "wait_timeout": 2})
    assert res.get("failed") and "not ready after 2s: object does not exist" in res["msg"], res
    assert set(res["api_requests"]) == {"GET"}, res["api_requests"]
    # Created by someone else: waited for until rolled out, reported unchanged, no write.
    kube.apply_patch("/apis/apps/v1/namespaces/%s/deployments/made-elsewhere" % namespace, deployment(namespace, name="made-elsewhere"), "someone-else")
    res = module_runner("resources", {"definitions": [ref], "only_wait": True, "wait_timeout": 60})
    assert res.get("failed") is not True, res.get("msg")
    assert res["changed"] is False and res["resources"][0]["action"] == "waited", res
    assert res["resources"][0]["object"]["status"]["availableReplicas"] == 1, res["resources"][0]["object"]
    assert set(res["api_requests"]) == {"GET"}, res["api_requests"]
    # A kind without a known readiness check needs wait_for, before any request.
    res = module_runner("resources", {"definitions": [configmap(namespace)], "only_wait": True})
    assert res.get("failed") and "no readiness check is known" in res["msg"] and res["api_requests"] == {}, res


def test_only_wait_by_labels_waits_for_every_labelled_object(module_runner, kube, namespace):
    # A chart's Deployments by the label Helm gives them, as the platform roles wait for them.
    selected = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"namespace": namespace, "labels": {"app.kubernetes.io/instance": "chart-x"}}}
    res = module_runner("resources", {"definitions": [selected], "only_wait": True, "wait_timeout": 2})
    assert res.get("failed") and "no Deployment labelled app.kubernetes.io/instance=chart-x in namespace %s after 2s" % namespace in res["msg"], res
    for name, labels in (("chart-x-a", {"app.kubernetes.io/instance": "chart-x"}), ("chart-x-b", {"app.kubernetes.io/instance": "chart-x"}),
                         ("other", {"app.kubernetes.io/instance": "chart-y"})):
        dep = deployment(namespace, name=name)
        dep["metadata"]["labels"] = labels
        kube.apply_patch("/apis/apps/v1/namespaces/%s/deployments/%s" % (namespace, name), dep, "someone-else")
    res = module_runner("resources", {"definitions": [selected], "only_wait": True, "wait_timeout": 60})
    assert res.get("failed") is not True, res.get("msg")
    assert [r["name"] for r in res["resources"]] == ["chart-x-a", "chart-x-b"], res["resources"]
    assert all(r["object"]["status"]["availableReplicas"] == 1 and r["selector"] == "app.kubernetes.io/instance=chart-x" for r in res["resources"])
    assert set(res["api_requests"]) == {"GET"} and res["changed"] is False, res


def test_deployment_fails_fast_on_progress_deadline(module_runner, namespace):
    dep = deployment(namespace, gpus=100)
    dep["spec"]["progressDeadlineSeconds"] = 2
    started = time.monotonic()
    result = module_runner("resources", {"definitions": [dep], "wait_timeout": 120})
    took = time.monotonic() - started
    assert result.get("failed") and "ProgressDeadlineExceeded" in result["msg"], result
    assert "Insufficient nvidia.com/gpu" in result["msg"], result["msg"]
    assert took < 40, took


def statefulset(namespace, image, partition=None, strategy="RollingUpdate"):
    update = {"type": strategy}
    if partition is not None:
        update["rollingUpdate"] = {"partition": partition}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": namespace},
        "spec": {
            "replicas": 2,
            "serviceName": "db",
            "updateStrategy": update,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": image}]}},
        },
    }


@pytest.mark.parametrize("strategy,partition", [("RollingUpdate", 2), ("OnDelete", None)])
def test_statefulset_partition_and_on_delete_do_not_wait_forever(module_runner, namespace, strategy, partition):
    first = module_runner("resources", {"definitions": [statefulset(namespace, "registry.local/db:1", partition, strategy)], "wait_timeout": 60})
    assert first.get("failed") is not True, first.get("msg")
    # A new template that, by the strategy's design, no pod takes yet.
    result = module_runner("resources", {"definitions": [statefulset(namespace, "registry.local/db:2", partition, strategy)], "wait_timeout": 15})
    assert result.get("failed") is not True, result.get("msg")
    status = result["resources"][0]["object"]["status"]
    assert status["currentRevision"] != status["updateRevision"] and status["readyReplicas"] == 2


def _event(namespace, name, uid, reason, seconds_ago):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "%s.%s" % (name, reason.lower()), "namespace": namespace},
        "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "namespace": namespace, "uid": uid},
        "reason": reason,
        "message": reason + " happened",
        "type": "Warning",
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def test_timeout_events_are_this_objects_newest_first(module_runner, kube, namespace):
    module_runner("resources", {"definitions": [deployment(namespace, gpus=100)], "wait": False})
    uid = kube.get("/apis/apps/v1/namespaces/%s/deployments/web" % namespace)["metadata"]["uid"]
    events = "/api/v1/namespaces/%s/events" % namespace
    # An earlier Deployment of the same name (another uid) left an Event behind.
    kube.request("POST", events, body=_event(namespace, "web", "00000000-0000-0000-0000-000000000000", "EarlierObject", 30))
    kube.request("POST", events, body=_event(namespace, "web", uid, "OlderOne", 600))
    kube.request("POST", events, body=_event(namespace, "web", uid, "NewerOne", 1))
    result = module_runner("resources", {"definitions": [deployment(namespace, gpus=100)], "wait_timeout": 3})
    assert result.get("failed") and "not ready after 3s" in result["msg"], result
    assert "EarlierObject" not in result["msg"], result["msg"]
    reasons = [line.split(":")[0] for line in result["events"]]
    assert "Warning NewerOne" in reasons and "Warning OlderOne" in reasons, reasons
    assert reasons.index("Warning NewerOne") < reasons.index("Warning OlderOne"), reasons
    assert len(result["events"]) <= 8


# batch: apply everything, then wait for everything ----------------------------------------------
def test_batch_applies_every_element_before_waiting_and_waits_once(module_runner, kube, namespace):
    count, min_ready = 5, 4
    elements = []
    for index in range(count):
        dep = deployment(namespace, name="web-%d" % index)
        dep["spec"]["minReadySeconds"] = min_ready  # each rollout takes at least this long
        elements.append({"definitions": [dep]})
    started = time.monotonic()
    result = module_runner("resources", {"batch": elements, "wait_timeout": 60})
    took = time.monotonic() - started
    assert result.get("failed") is not True, result.get("msg")
    assert all(r["resources"][0]["object"]["status"]["availableReplicas"] == 1 for r in result["batch"]), result["batch"]
    # One after the other this takes count x min_ready = 20 s at the least.
    assert took < count * min_ready * 0.6, took
    created = sorted(
        kube.get("/apis/apps/v1/namespaces/%s/deployments/web-%d" % (namespace, index))["metadata"]["creationTimestamp"] for index in range(count)
    )
    # Every Deployment was written before the first one had rolled out (timestamps in seconds).
    first, last = [time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) for stamp in (created[0], created[-1])]
    assert last - first < min_ready, created


def test_batch_reads_no_state_from_before_a_wait(module_runner, kube, namespace, getter):
    """Element 0 waits (until the test releases it). Element 2's write must already have happened
    by then: every element is read and applied before any waits, so no element is judged from a
    list read before another element's wait (element 1, deleted during that wait, was judged
    unchanged when it still existed; with reads reused after the wait it would have been judged
    unchanged while gone)."""
    module_runner("resources", {"definitions": [configmap(namespace, "cm1"), configmap(namespace, "cm2")]})
    cm_path = "/api/v1/namespaces/%s/configmaps/%s" % (namespace, "%s")
    seen = {}

    def operator():
        deadline = time.monotonic() + 30
        while getter("v1", "ConfigMap", "cm0", namespace) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            if (getter("v1", "ConfigMap", "cm2", namespace) or {}).get("data") == {"a": "2"}:
                seen["cm2_written_before_wait_ended"] = True
                break
            time.sleep(0.1)
        kube.delete(cm_path % "cm1")
        _merge_patch(kube, cm_path % "cm0", {"metadata": {"labels": {"go": "yes"}}})

    thread = threading.Thread(target=operator)
    thread.start()
    try:
        result = module_runner(
            "resources",
            {
                "batch": [
                    {"definitions": [configmap(namespace, "cm0")], "wait_for": {"field": "metadata.labels.go", "value": "yes"}},
                    {"definitions": [configmap(namespace, "cm1")]},
                    {"definitions": [configmap(namespace, "cm2", data={"a": "2"})]},
                ],
                "wait_timeout": 40,
            },
        )
    finally:
        thread.join()
    assert result.get("failed") is not True, result.get("msg")
    assert seen.get("cm2_written_before_wait_ended"), "element 2 was applied only after element 0's wait"
    assert [r["resources"][0]["action"] for r in result["batch"]] == ["created", "unchanged", "updated"]


def test_batch_wait_failure_names_the_element_and_keeps_the_others_applied(module_runner, namespace, getter):
    elements = [{"definitions": [deployment(namespace, name="ok")]}, {"definitions": [deployment(namespace, name="stuck", gpus=100)]}]
    result = module_runner("resources", {"batch": elements, "wait_timeout": 5})
    assert result.get("failed") and result["msg"].startswith("batch[1] #1: Deployment %s/stuck not ready after 5s" % namespace), result["msg"]
    assert "(all 2 elements were applied)" in result["msg"]
    assert getter("apps/v1", "Deployment", "ok", namespace) is not None


def test_batch_of_a_module_that_reads_after_its_wait(module_runner, namespace):
    """triton_server reads the Service's EndpointSlices once its Deployment has rolled out: in a
    batch, each element still finishes with its own waited objects and endpoints."""
    names = ["tr-%d" % index for index in range(3)]
    elements = [{"name": name, "namespace": namespace, "model_repository": "s3://models/%s" % name, "gpus": 1, "replicas": 1} for name in names]
    result = module_runner("triton_server", {"batch": elements, "wait_timeout": 90})
    assert result.get("failed") is not True, result.get("msg")
    for name, element in zip(names, result["batch"]):
        deployment_result = next(r for r in element["resources"] if r["kind"] == "Deployment")
        assert deployment_result["name"] == name and deployment_result["object"]["status"]["availableReplicas"] == 1
        assert len(element["endpoints"]["ready_addresses"]) == 1, element["endpoints"]


def test_batch_elements_take_their_own_state_wait_and_timeout(module_runner, kube, namespace, getter):
    """One call holds a role's whole list: an element's own state/wait/wait_timeout wins over the
    top-level one, an element that sets none takes the top-level one."""
    module_runner("resources", {"definitions": [configmap(namespace, "gone")]})
    elements = [
        {"definitions": [configmap(namespace, "kept")]},
        {"definitions": [configmap(namespace, "gone")], "state": "absent"},
        {"definitions": [deployment(namespace, name="stuck", gpus=100)], "wait": False},
        {"definitions": [deployment(namespace, name="slow", gpus=100)], "wait_timeout": 1},
    ]
    result = module_runner("resources", {"batch": elements, "wait_timeout": 60})
    # Only the last element waits, for 1 s: the top-level 60 s would hold the run for a minute.
    assert result.get("failed") and result["msg"].startswith("batch[3] #3: Deployment %s/slow not ready after 1s" % namespace), result["msg"]
    assert getter("v1", "ConfigMap", "kept", namespace) is not None
    assert getter("v1", "ConfigMap", "gone", namespace) is None
    assert getter("apps/v1", "Deployment", "stuck", namespace) is not None
    elements[3]["wait"] = False
    again = module_runner("resources", {"batch": elements, "wait_timeout": 60})
    assert again.get("failed") is not True and again["changed"] is False, again.get("msg")
    assert [r["resources"][0]["action"] for r in again["batch"]] == ["unchanged", "absent", "unchanged", "unchanged"]


def test_create_namespaces_ensures_each_namespace_once_and_never_writes_again(module_runner, kube, namespace, getter):
    """create_namespaces ensures, in the same run and before anything is applied in them, the
    namespace of every present element, once each (what a role's own namespace task did)."""
    first, second = namespace + "-a", namespace + "-b"

    def boards(names):
        return [{"name": "tb-%d" % index, "namespace": ns, "log_dir_uri": "s3://runs/%d" % index} for index, ns in enumerate(names)]

    elements = boards([first, second, first]) + [{"name": "tb-old", "namespace": namespace + "-c", "log_dir_uri": "s3://x", "state": "absent"}]
    try:
        # An element the module refuses stops the run before its namespace is made too.
        refused = module_runner("triton_server", {"batch": [{"name": "t", "namespace": first}], "wait": False, "create_namespaces": True})
        assert refused.get("failed") and "model_repository" in refused["msg"] and "nothing was applied" in refused["msg"], refused
        assert getter("v1", "Namespace", first) is None

        preview = module_runner("tensorboard", {"batch": elements, "wait": False, "create_namespaces": True}, check_mode=True)
        assert preview.get("failed") is not True and preview["changed"] is True, preview.get("msg")
        assert [(r["name"], r["action"]) for r in preview["namespaces"]] == [(first, "created"), (second, "created")]
        assert getter("v1", "Namespace", first) is None

        result = module_runner("tensorboard", {"batch": elements, "wait": False, "create_namespaces": True})
        assert result.get("failed") is not True, result.get("msg")
        assert [(r["name"], r["action"]) for r in result["namespaces"]] == [(first, "created"), (second, "created")]
        created = getter("v1", "Namespace", first)
        assert created["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "aiinfra.cluster"
        assert [m["manager"] for m in created["metadata"]["managedFields"] if m["operation"] == "Apply"] == ["aiinfra.cluster.namespaces"]
        assert getter("v1", "Namespace", namespace + "-c") is None  # an absent element's namespace is not made
        assert getter("apps/v1", "Deployment", "tb-2", first) is not None

        again = module_runner("tensorboard", {"batch": elements, "wait": False, "create_namespaces": True})
        assert again.get("failed") is not True and again["changed"] is False, again.get("msg")
        assert set(again["api_requests"]) <= {"GET"}, again["api_requests"]
    finally:
        for name in (first, second):
            try:
                kube.delete("/api/v1/namespaces/%s" % name, body={"propagationPolicy": "Background"})
            except ApiError:
                pass
