"""GPUs through Dynamic Resource Allocation with the real kube-scheduler: the local control plane
publishes, per simulated GPU node, the ResourceSlice NVIDIA's DRA kubelet plugin would publish
(tools/local_cluster.py), and training_job, triton_server and inference_service claim devices from
them with a CEL selector.

The DeviceClass gpu.nvidia.com comes from NVIDIA's DRA driver chart, which the gpu_operator role
installs with gpu_operator_gpu_allocation=dra (tests/integration/test_gpu_operator_dra.py). Where
that has not run, the class is created here as the chart defines it (see ../shared/charts/SOURCES.md),
with a warning that says so, and removed afterwards."""

import os
import sys
import time
import warnings

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import local_cluster  # noqa: E402  pylint: disable=wrong-import-position

DEVICE_CLASS = {
    "apiVersion": "resource.k8s.io/v1",
    "kind": "DeviceClass",
    "metadata": {"name": "gpu.nvidia.com"},
    "spec": {"selectors": [{"cel": {"expression": "device.driver == 'gpu.nvidia.com' && device.attributes['gpu.nvidia.com'].type == 'gpu'"}}]},
}
H200_NODES = ["dra-h200-0", "dra-h200-1"]


def ensure_device_class(kube):
    """The DeviceClass gpu.nvidia.com, created as the chart defines it where the chart has not run:
    the paths to delete afterwards."""
    try:
        kube.get("/apis/resource.k8s.io/v1/deviceclasses/gpu.nvidia.com")
        return []
    except ApiError as exc:
        if exc.status != 404:
            raise
    warnings.warn("DeviceClass gpu.nvidia.com missing (the DRA driver chart is not installed): created here as the chart defines it")
    kube.request("POST", "/apis/resource.k8s.io/v1/deviceclasses", body=DEVICE_CLASS)
    return ["/apis/resource.k8s.io/v1/deviceclasses/gpu.nvidia.com"]


@pytest.fixture(scope="module")
def h200_nodes(kube):
    """Two simulated H200 nodes beside the session's H100 nodes, with their ResourceSlices, built
    by the launcher's own functions; and the DeviceClass, when the DRA driver chart is not there."""
    made = ensure_device_class(kube)
    for index, name in enumerate(H200_NODES):
        node = local_cluster.LocalCluster.node_manifest(name, 8, "NVIDIA-H200", False, 1000 + index)
        kube.request("POST", "/api/v1/nodes", body=node)
        made.append("/api/v1/nodes/%s" % name)
        rs = local_cluster.LocalCluster.resource_slice_manifest(name, 8, "NVIDIA-H200", 1000 + index)
        kube.request("POST", "/apis/resource.k8s.io/v1/resourceslices", body=rs)
        made.append("/apis/resource.k8s.io/v1/resourceslices/%s" % rs["metadata"]["name"])
    deadline = time.time() + 60
    while time.time() < deadline:  # KWOK marks them Ready
        if all(node_ready(kube, n) for n in H200_NODES):
            break
        time.sleep(0.5)
    yield H200_NODES
    for path in reversed(made):
        try:
            kube.delete(path)
        except ApiError:
            pass


def node_ready(kube, name):
    conditions = (kube.get("/api/v1/nodes/%s" % name).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def dra_job(namespace, name, selector, **extra):
    args = {"name": name, "namespace": namespace, "script": "/t.py", "nodes": 2, "gpus_per_node": 8,
            "gpu_allocation": "dra", "gpu_selector": selector, "wait_timeout": 90}
    args.update(extra)
    return args


def test_claims_are_allocated_to_matching_devices_only(module_runner, kube, namespace, h200_nodes):
    res = module_runner("training_job", dra_job(namespace, "h200", {"product": "NVIDIA-H200", "min_memory": "140Gi"}))
    assert res.get("failed") is not True, res.get("msg")
    assert res["resources"][0]["kind"] == "ResourceClaimTemplate", res["resources"]
    pods = kube.get("/api/v1/namespaces/%s/pods" % namespace, query={"labelSelector": "aiinfra.cluster/training-job=h200"})["items"]
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    # The scheduler placed each pod where its claim's 8 devices could be allocated: the H200
    # nodes, never the session's H100 nodes (which have free GPUs too).
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(h200_nodes), [p["spec"].get("nodeName") for p in pods]
    for pod in pods:
        assert pod["spec"]["resourceClaims"] == [{"name": "gpus", "resourceClaimTemplateName": "h200-gpus"}]
        assert [s["name"] for s in pod["status"].get("resourceClaimStatuses") or []] == ["gpus"], pod["status"]
    # A second run changes nothing.
    again = module_runner("training_job", dra_job(namespace, "h200", {"product": "NVIDIA-H200", "min_memory": "140Gi"}))
    assert again.get("failed") is not True and again["changed"] is False, again.get("msg")


def test_claim_no_device_matches_stays_pending_with_the_schedulers_reason(module_runner, kube, namespace, h200_nodes):
    started = time.monotonic()
    res = module_runner("training_job", dra_job(namespace, "huge", {"product": "NVIDIA-H200", "min_memory": "200Gi"}, nodes=1, wait_timeout=8))
    assert res.get("failed") is True and time.monotonic() - started < 60
    # The module's wait reports why the pod is not scheduled, as the scheduler says it.
    assert "PodScheduled" in res["msg"] or "Unschedulable" in res["msg"], res["msg"]
    assert "claim" in res["msg"], res["msg"]
    pods = kube.get("/api/v1/namespaces/%s/pods" % namespace, query={"labelSelector": "aiinfra.cluster/training-job=huge"})["items"]
    assert pods and all(not p["spec"].get("nodeName") for p in pods), [p["spec"].get("nodeName") for p in pods]


def pods_of(kube, namespace, selector):
    return kube.get("/api/v1/namespaces/%s/pods" % namespace, query={"labelSelector": selector})["items"]


def assert_claimed_on(pods, template, nodes):
    """Each pod has its own claim from `template`, allocated by the scheduler, on one of `nodes`."""
    for pod in pods:
        assert pod["spec"]["resourceClaims"] == [{"name": "gpus", "resourceClaimTemplateName": template}], pod["spec"]
        assert pod["spec"].get("nodeName") in nodes, (pod["metadata"]["name"], pod["spec"].get("nodeName"))
        assert [s["name"] for s in pod["status"].get("resourceClaimStatuses") or []] == ["gpus"], pod["status"]


@pytest.mark.upstream
def test_triton_on_dra_lands_only_on_the_selected_product(module_runner, kube, namespace, h200_nodes):
    args = {"name": "triton", "namespace": namespace, "model_repository": "s3://models/triton", "replicas": 3, "gpus": 4,
            "gpu_allocation": "dra", "gpu_selector": {"product": "NVIDIA-H200"}, "wait_timeout": 90}
    res = module_runner("triton_server", args)
    assert res.get("failed") is not True, res.get("msg")
    assert [r["kind"] for r in res["resources"]][:2] == ["ResourceClaimTemplate", "Deployment"], res["resources"]
    dep = kube.get("/apis/apps/v1/namespaces/%s/deployments/triton" % namespace)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"claims": [{"name": "gpus"}]} and "nodeSelector" not in dep["spec"]["template"]["spec"]
    pods = pods_of(kube, namespace, "app.kubernetes.io/instance=triton")
    # 3 pods x 4 GPUs: more than one H200 node holds, all on H200 nodes although the H100 nodes are free.
    assert len(pods) == 3
    assert_claimed_on(pods, "triton-gpus", h200_nodes)
    claims = kube.get("/apis/resource.k8s.io/v1/namespaces/%s/resourceclaims" % namespace)["items"]
    devices = [r for c in claims for r in c["status"]["allocation"]["devices"]["results"]]
    assert len(devices) == 12 and set(r["pool"] for r in devices) <= set(h200_nodes), devices
    again = module_runner("triton_server", args)
    assert again.get("failed") is not True and again["changed"] is False, again.get("msg")
    # The template's spec is immutable: a changed selector fails naming the options and the way out.
    changed = module_runner("triton_server", dict(args, gpu_selector={"product": "NVIDIA-H100-80GB-HBM3"}))
    assert changed.get("failed") is True and "gpus and gpu_selector cannot change once it exists" in changed["msg"], changed.get("msg")
    gone = module_runner("triton_server", {"name": "triton", "namespace": namespace, "state": "absent", "gpu_allocation": "dra"})
    assert gone["changed"] is True and [r["kind"] for r in gone["resources"]][0] == "ResourceClaimTemplate", gone


@pytest.mark.upstream
def test_inference_service_predictor_gets_its_claim_through_kserve(module_runner, kube, namespace, operators, h200_nodes):
    args = {"name": "iris", "namespace": namespace, "model_format": {"name": "sklearn"},
            "storage_uri": "gs://kfserving-examples/models/sklearn/1.0/model", "gpus": 1,
            "gpu_allocation": "dra", "gpu_selector": {"product": "NVIDIA-H200"}, "wait_timeout": 120}
    res = module_runner("inference_service", args)
    assert res.get("failed") is not True, res.get("msg")
    assert res["ready"] is True and res["claim_template"]["metadata"]["name"] == "iris-gpus", res
    # KServe's controller built the predictor Deployment from the predictor pod spec: the claim
    # reached its pods, which the scheduler placed on an H200 node.
    pods = pods_of(kube, namespace, "serving.kserve.io/inferenceservice=iris")
    assert pods
    assert_claimed_on(pods, "iris-gpus", h200_nodes)
    container = next(c for c in pods[0]["spec"]["containers"] if c["name"] == "kserve-container")
    assert container["resources"]["claims"] == [{"name": "gpus"}] and "nvidia.com/gpu" not in container["resources"].get("limits", {})
    again = module_runner("inference_service", args)
    assert again.get("failed") is not True and again["changed"] is False, again.get("msg")
