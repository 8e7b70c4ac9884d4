"""Serving through Kueue's queues, with the real Kueue and KServe controllers: inference_service and
triton_server pods are admitted one by one (Kueue's pod and deployment integrations), wait gated
with no GPU while their ClusterQueue is full, and GPUs claimed through DRA count in the same quota
(Kueue's deviceClassMappings). Nothing here writes a status."""

import os
import sys
import time

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError
from polling import wait_until
from test_dra import ensure_device_class

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import local_cluster  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.upstream

KUEUE = "/apis/kueue.x-k8s.io/v1beta2"
GATE = "kueue.x-k8s.io/admission"
QUOTA = 2  # GPUs of the test's ClusterQueue


@pytest.fixture
def team_queue(kube, namespace, gpu_pool):
    """The test's namespace labelled as a team's (the label gpu_scheduling sets, which Kueue's
    namespace selector matches), a ResourceFlavor on a fresh pool of 2 nodes with their
    ResourceSlices, a ClusterQueue of QUOTA GPUs and the LocalQueue `gpu`."""
    product, nodes = gpu_pool(2)
    made = ensure_device_class(kube)
    for index, node in enumerate(nodes):
        rs = local_cluster.LocalCluster.resource_slice_manifest(node, 8, product, 2000 + index)
        kube.request("POST", "/apis/resource.k8s.io/v1/resourceslices", body=rs)
        made.append("/apis/resource.k8s.io/v1/resourceslices/%s" % rs["metadata"]["name"])
    kube.request("PATCH", "/api/v1/namespaces/%s" % namespace, body={"metadata": {"labels": {"aiinfra.cluster/team": namespace}}},
                 content_type="application/merge-patch+json")
    flavor = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": namespace},
              "spec": {"nodeLabels": {"nvidia.com/gpu.product": product}}}
    quota = [{"name": "cpu", "nominalQuota": "64"}, {"name": "memory", "nominalQuota": "256Gi"}, {"name": "nvidia.com/gpu", "nominalQuota": str(QUOTA)}]
    cluster_queue = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": namespace},
                     "spec": {"namespaceSelector": {}, "resourceGroups": [{"coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
                                                                           "flavors": [{"name": namespace, "resources": quota}]}]}}
    local_queue = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue", "metadata": {"name": "gpu", "namespace": namespace},
                   "spec": {"clusterQueue": namespace}}
    kube.request("POST", KUEUE + "/resourceflavors", body=flavor)
    made.append(KUEUE + "/resourceflavors/" + namespace)
    kube.request("POST", KUEUE + "/clusterqueues", body=cluster_queue)
    made.append(KUEUE + "/clusterqueues/" + namespace)
    kube.request("POST", KUEUE + "/namespaces/%s/localqueues" % namespace, body=local_queue)
    wait_until("ClusterQueue active", lambda: condition(kube.get(KUEUE + "/clusterqueues/" + namespace), "Active").get("status") == "True")
    yield product, nodes
    for path in reversed(made):
        try:
            kube.delete(path)
        except ApiError:
            pass


def pods(kube, namespace, selector):
    return kube.get("/api/v1/namespaces/%s/pods" % namespace, query={"labelSelector": selector})["items"]


def gated(pod):
    return any(g["name"] == GATE for g in pod["spec"].get("schedulingGates") or [])


def pod_workload(kube, pod):
    """The Workload Kueue made for one serving pod."""
    query = {"labelSelector": "kueue.x-k8s.io/job-uid=" + pod["metadata"]["uid"]}
    items = kube.get(KUEUE + "/namespaces/%s/workloads" % pod["metadata"]["namespace"], query=query)["items"]
    return items[0] if items else None


def condition(obj, kind):
    return next((c for c in ((obj or {}).get("status") or {}).get("conditions") or [] if c["type"] == kind), {})


def gpus_used(kube, name):
    usage = (kube.get(KUEUE + "/clusterqueues/" + name).get("status") or {}).get("flavorsUsage") or []
    return sum(int(r["total"]) for f in usage for r in f["resources"] if r["name"] == "nvidia.com/gpu")


def isvc_args(namespace, product, **extra):
    args = {"name": "iris", "namespace": namespace, "model_format": {"name": "sklearn"}, "storage_uri": "gs://kfserving-examples/models/sklearn/1.0/model",
            "gpus": QUOTA, "gpu_product": product, "queue_name": "gpu", "wait_timeout": 180}
    args.update(extra)
    return args


def triton_args(namespace, product, **extra):
    args = {"name": "triton", "namespace": namespace, "model_repository": "s3://models/triton", "gpus": 1, "gpu_product": product,
            "replicas": 1, "queue_name": "gpu", "wait_timeout": 90}
    args.update(extra)
    return args


def test_serving_pods_wait_in_the_queue_and_are_admitted_one_by_one(module_runner, kube, namespace, operators, team_queue):
    product, nodes = team_queue
    # The InferenceService takes the whole quota: KServe's predictor pod, admitted by Kueue.
    res = module_runner("inference_service", isvc_args(namespace, product))
    assert res.get("failed") is not True, res.get("msg")
    assert res["ready"] is True and res["url"], res
    deployment = kube.get("/apis/apps/v1/namespaces/%s/deployments/iris-predictor" % namespace)
    assert deployment["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu", deployment["metadata"]["labels"]
    [predictor] = pods(kube, namespace, "serving.kserve.io/inferenceservice=iris")
    assert predictor["metadata"]["labels"].get("kueue.x-k8s.io/managed") == "true", predictor["metadata"]["labels"]
    assert not gated(predictor) and predictor["spec"]["nodeName"] in nodes, predictor["spec"]
    workload = pod_workload(kube, predictor)
    assert condition(workload, "Admitted").get("status") == "True", workload and workload.get("status")
    assert workload["status"]["admission"]["clusterQueue"] == namespace
    wait_until("the ClusterQueue counts the predictor's GPUs", lambda: gpus_used(kube, namespace) == QUOTA)
    # KServe and Kueue's deployment webhook (which adds to the pod template) do not fight: the
    # predictor Deployment stays as it is while nothing changes.
    version = kube.get("/apis/apps/v1/namespaces/%s/deployments/iris-predictor" % namespace)["metadata"]["resourceVersion"]
    time.sleep(3)
    assert kube.get("/apis/apps/v1/namespaces/%s/deployments/iris-predictor" % namespace)["metadata"]["resourceVersion"] == version

    # A Triton pod now finds no quota: it exists, gated, on no node; the module's wait says why.
    res = module_runner("triton_server", triton_args(namespace, product, wait_timeout=10))
    assert res.get("failed") is True, res
    print("serving pod queued: %s" % res["msg"])
    assert "queued in LocalQueue gpu" in res["msg"] and "not admitted" in res["msg"], res["msg"]
    assert "nvidia.com/gpu" in res["msg"], res["msg"]
    [waiting] = pods(kube, namespace, "app.kubernetes.io/instance=triton")
    assert gated(waiting) and not waiting["spec"].get("nodeName"), waiting["spec"]
    assert waiting["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu"

    # The InferenceService goes: Kueue admits the Triton pod, which the same call now sees roll out.
    res = module_runner("inference_service", {"name": "iris", "namespace": namespace, "state": "absent", "wait_timeout": 60})
    assert res.get("failed") is not True and res["changed"] is True, res
    res = module_runner("triton_server", triton_args(namespace, product))
    assert res.get("failed") is not True, res.get("msg")
    assert res["changed"] is False, res.get("diff")
    [running] = pods(kube, namespace, "app.kubernetes.io/instance=triton")
    assert not gated(running) and running["spec"]["nodeName"] in nodes
    assert condition(pod_workload(kube, running), "Admitted").get("status") == "True"


def test_dra_claims_count_in_the_queue_as_gpus(module_runner, kube, namespace, operators, team_queue):
    product, nodes = team_queue
    # Device-plugin GPUs fill the quota ...
    res = module_runner("triton_server", triton_args(namespace, product, gpus=QUOTA))
    assert res.get("failed") is not True, res.get("msg")
    wait_until("the ClusterQueue counts Triton's GPUs", lambda: gpus_used(kube, namespace) == QUOTA)
    # ... so one GPU claimed through DRA does not fit: Kueue counts the claim as nvidia.com/gpu.
    job = {"name": "dra", "namespace": namespace, "script": "/t.py", "nodes": 1, "gpus_per_node": 1, "gpu_allocation": "dra",
           "gpu_selector": {"product": product}, "queue_name": "gpu", "wait_timeout": 10}
    res = module_runner("training_job", job)
    assert res.get("failed") is True, res
    print("DRA job queued: %s" % res["msg"])
    assert "queued in LocalQueue gpu" in res["msg"] and "nvidia.com/gpu" in res["msg"], res["msg"]
    assert not pods(kube, namespace, "batch.kubernetes.io/job-name=dra"), "a queued job must hold no pod"
    # Room again: admitted, its claim allocated on the flavor's nodes, and it completes.
    res = module_runner("triton_server", {"name": "triton", "namespace": namespace, "state": "absent", "wait_timeout": 60})
    assert res.get("failed") is not True, res.get("msg")
    res = module_runner("training_job", dict(job, wait_timeout=120))
    assert res.get("failed") is not True, res.get("msg")
    ran = pods(kube, namespace, "batch.kubernetes.io/job-name=dra")
    assert ran and all(p["spec"].get("nodeName") in nodes for p in ran), [(p["metadata"]["name"], p["spec"].get("nodeName")) for p in ran]


def test_kueue_leaves_pods_outside_team_namespaces_alone(kube, namespace, operators):
    """Kueue's pod webhook fails closed, so gpu_scheduling limits it to team namespaces: a pod that
    names a queue elsewhere is neither gated nor given a Workload (the test's namespace carries no
    team label here)."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "outside", "labels": {"kueue.x-k8s.io/queue-name": "gpu"}},
           "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}
    created = kube.request("POST", "/api/v1/namespaces/%s/pods" % namespace, body=pod)
    assert not gated(created) and "kueue.x-k8s.io/managed" not in created["metadata"].get("labels", {}), created["metadata"]
    hooks = kube.get("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/kueue-mutating-webhook-configuration")
    [mpod] = [w for w in hooks["webhooks"] if w["name"] == "mpod.kb.io"]
    assert mpod["namespaceSelector"] == {"matchExpressions": [{"key": "aiinfra.cluster/team", "operator": "Exists"}]}, mpod["namespaceSelector"]
    assert mpod["failurePolicy"] == "Fail"
