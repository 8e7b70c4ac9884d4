"""gpu_operator with gpu_operator_gpu_allocation=dra on the local control plane: the GPU Operator's
device plugin off and CDI on, NVIDIA's DRA driver chart installed from the offline mirror
(../shared/charts) by kubernetes.core.helm, its DeviceClass gpu.nvidia.com serving claims that the
real kube-scheduler allocates from the simulated nodes' ResourceSlices, a re-run that runs no helm
and changes nothing, and the way back to the device plugin.

The chart's kubelet plugin needs NVML: its DaemonSet pods are simulated (KWOK) here, and the
launcher publishes the ResourceSlices the plugin would publish (docs/local-control-plane.md)."""

import pytest

from test_platform_charts import GPU_OPERATOR_PLAY, helm_release, helm_tasks_run, run_play_text

# The charts come from ../shared: skipped on a plain clone (tests/conftest.py).
pytestmark = pytest.mark.upstream

DRA = {"gpu_operator_gpu_allocation": "dra"}
NAMESPACE, RELEASE = "nvidia-dra-driver-gpu", "nvidia-dra-driver-gpu"
LABEL = "nvidia.com/dra-kubelet-plugin"


@pytest.fixture(scope="module")
def dra_installed(kubeconfig):
    rc, out, _changed = run_play_text(GPU_OPERATOR_PLAY, kubeconfig, DRA)
    assert rc == 0, out[-6000:]
    return out


def test_dra_driver_chart_installed_and_operator_device_plugin_off(kube, dra_installed):
    assert "aiinfra.cluster.gpu_operator : Chart nvidia-dra-driver-gpu" in helm_tasks_run(dra_installed), helm_tasks_run(dra_installed)
    assert helm_release(kube, NAMESPACE, RELEASE)
    # The chart's own DeviceClass, owned by the Helm release.
    device_class = kube.get("/apis/resource.k8s.io/v1/deviceclasses/gpu.nvidia.com")
    assert device_class["metadata"]["annotations"]["meta.helm.sh/release-name"] == RELEASE
    assert "device.attributes['gpu.nvidia.com'].type == 'gpu'" in device_class["spec"]["selectors"][0]["cel"]["expression"]
    policy = kube.get("/apis/nvidia.com/v1/clusterpolicies/cluster-policy")["spec"]
    assert policy["devicePlugin"]["enabled"] is False and policy["cdi"]["enabled"] is True
    # The operator installs the driver here, so its driver manager evicts the kubelet plugin by the label.
    assert {"name": "NODE_LABEL_FOR_GPU_POD_EVICTION", "value": LABEL} in policy["driver"]["manager"]["env"]
    ds = kube.get("/apis/apps/v1/namespaces/%s/daemonsets/nvidia-dra-driver-gpu-kubelet-plugin" % NAMESPACE)
    assert ds["spec"]["template"]["spec"]["nodeSelector"] == {LABEL: "true"}
    env = dict((e["name"], e.get("value")) for e in ds["spec"]["template"]["spec"]["containers"][0]["env"])
    assert env["NVIDIA_DRIVER_ROOT"] == "/run/nvidia/driver"
    gpu_nodes = [n["metadata"]["name"] for n in kube.get("/api/v1/nodes", query={"labelSelector": "feature.node.kubernetes.io/pci-10de.present=true"})["items"]]
    labelled = [n["metadata"]["name"] for n in kube.get("/api/v1/nodes", query={"labelSelector": "%s=true" % LABEL})["items"]]
    assert gpu_nodes and sorted(labelled) == sorted(gpu_nodes)
    # One simulated kubelet-plugin pod per GPU node, all ready (the role waited for the rollout).
    assert ds["status"]["desiredNumberScheduled"] == len(gpu_nodes) == ds["status"]["numberReady"], ds["status"]


def test_second_run_runs_no_helm_and_changes_nothing(kube, kubeconfig, dra_installed):
    revision = helm_release(kube, NAMESPACE, RELEASE)
    rc, out, changed = run_play_text(GPU_OPERATOR_PLAY, kubeconfig, DRA)
    assert rc == 0, out[-6000:]
    assert changed == 0, out[-6000:]
    assert helm_tasks_run(out) == [], helm_tasks_run(out)
    assert helm_release(kube, NAMESPACE, RELEASE) == revision


def test_claims_on_the_charts_device_class_are_allocated(module_runner, kube, namespace, dra_installed):
    args = {"name": "triton", "namespace": namespace, "model_repository": "s3://models/triton", "gpus": 2,
            "gpu_allocation": "dra", "wait_timeout": 60}
    res = module_runner("triton_server", args)
    assert res.get("failed") is not True, res.get("msg")
    [claim] = kube.get("/apis/resource.k8s.io/v1/namespaces/%s/resourceclaims" % namespace)["items"]
    results = claim["status"]["allocation"]["devices"]["results"]
    assert len(results) == 2 and all(r["driver"] == "gpu.nvidia.com" for r in results), results


def test_device_plugin_beside_dra_is_refused_before_any_change(kube, kubeconfig, dra_installed):
    revision = helm_release(kube, NAMESPACE, RELEASE)
    rc, out, _changed = run_play_text(GPU_OPERATOR_PLAY, kubeconfig, dict(DRA, gpu_operator_device_plugin_enabled=True))
    assert rc != 0 and "cannot run beside the device plugin" in out, out[-3000:]
    assert "TASK [aiinfra.cluster.gpu_operator : Chart" not in out
    assert helm_release(kube, NAMESPACE, RELEASE) == revision


def test_back_to_the_device_plugin_removes_the_dra_driver(kube, kubeconfig, dra_installed):
    rc, out, _changed = run_play_text(GPU_OPERATOR_PLAY, kubeconfig)
    assert rc == 0, out[-6000:]
    assert helm_release(kube, NAMESPACE, RELEASE) is None
    assert kube.get("/apis/resource.k8s.io/v1/deviceclasses", query={"fieldSelector": "metadata.name=gpu.nvidia.com"})["items"] == []
    assert kube.get("/apis/nvidia.com/v1/clusterpolicies/cluster-policy")["spec"]["devicePlugin"]["enabled"] is True
