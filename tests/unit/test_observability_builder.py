"""Unit tests for the DCGM exporter and TensorBoard builders."""

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError
from ansible_collections.aiinfra.cluster.plugins.module_utils.observability_builder import (
    build_dcgm_exporter,
    build_tensorboard,
    gpu_operator_exporter,
)


def test_dcgm_exporter_on_gpu_nodes_with_profiling_capability():
    objs = build_dcgm_exporter({"name": "dcgm-exporter", "namespace": "mon", "service_monitor": False})
    assert [o["kind"] for o in objs] == ["DaemonSet", "Service"]
    ds, svc = objs
    pod = ds["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    (ctr,) = pod["containers"]
    assert ctr["image"] == "nvcr.io/nvidia/k8s/dcgm-exporter:4.6.0-4.8.3-distroless"
    assert ctr["securityContext"]["capabilities"] == {"add": ["SYS_ADMIN"], "drop": ["ALL"]}
    assert ctr["securityContext"]["allowPrivilegeEscalation"] is False
    assert ctr["ports"][0]["containerPort"] == 9400
    assert {"name": "pod-resources", "mountPath": "/var/lib/kubelet/pod-resources", "readOnly": True} in ctr["volumeMounts"]
    # The NVIDIA runtime, and every GPU from it, although nvidia may not be containerd's default runtime.
    assert pod["runtimeClassName"] == "nvidia"
    env = dict((e["name"], e.get("value")) for e in ctr["env"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all" and "utility" in env["NVIDIA_DRIVER_CAPABILITIES"]
    assert env["DCGM_EXPORTER_KUBERNETES"] == "true"
    assert svc["spec"]["selector"] == ds["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["port"] == 9400


def test_dcgm_runtime_class_can_be_left_to_the_default_runtime():
    pod = build_dcgm_exporter({"name": "d", "namespace": "m", "service_monitor": False, "runtime_class_name": ""})[0]["spec"]["template"]["spec"]
    assert "runtimeClassName" not in pod
    pod = build_dcgm_exporter({"name": "d", "namespace": "m", "service_monitor": False, "runtime_class_name": "nvidia-cdi"})[0]["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "nvidia-cdi"


def test_dcgm_pod_mapping_without_profiling_runs_as_root_without_capabilities():
    # Only root can open the kubelet's pod-resources socket; a non-root exporter would map no pod.
    ds = build_dcgm_exporter({"name": "d", "namespace": "m", "service_monitor": False, "profiling_metrics": False})[0]
    ctr = ds["spec"]["template"]["spec"]["containers"][0]
    assert ctr["securityContext"] == {"runAsUser": 0, "runAsNonRoot": False, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert dict((e["name"], e.get("value")) for e in ctr["env"])["DCGM_EXPORTER_KUBERNETES"] == "true"
    assert ds["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"] == "/var/lib/kubelet/pod-resources"


def test_dcgm_without_profiling_or_pod_mapping_runs_non_root_and_custom_metrics_and_monitor():
    objs = build_dcgm_exporter(
        {
            "name": "dcgm",
            "namespace": "mon",
            "profiling_metrics": False,
            "pod_resources": False,
            "metrics_csv": "DCGM_FI_DEV_GPU_UTIL, gauge, util\n",
            "service_monitor": True,
            "service_monitor_labels": {"release": "kps"},
        }
    )
    assert [o["kind"] for o in objs] == ["ConfigMap", "DaemonSet", "Service", "ServiceMonitor"]
    ctr = objs[1]["spec"]["template"]["spec"]["containers"][0]
    assert ctr["securityContext"]["runAsNonRoot"] is True and "add" not in ctr["securityContext"]["capabilities"]
    assert [m["name"] for m in ctr["volumeMounts"]] == ["metrics"]
    env = dict((e["name"], e.get("value")) for e in ctr["env"])
    assert env["DCGM_EXPORTER_KUBERNETES"] == "false"
    assert env["DCGM_EXPORTER_COLLECTORS"] == "/etc/dcgm-exporter/custom/dcgm-metrics.csv"
    mon = objs[3]
    assert mon["metadata"]["labels"]["release"] == "kps"
    assert mon["spec"]["endpoints"][0]["port"] == "metrics" and mon["spec"]["selector"]["matchLabels"] == objs[1]["spec"]["selector"]["matchLabels"]


def test_dcgm_refuses_empty_node_selector():
    with pytest.raises(InputError):
        build_dcgm_exporter({"name": "d", "namespace": "m", "node_selector": {}})


def test_gpu_operator_exporter_detection():
    assert gpu_operator_exporter([], []) is None
    assert "nvidia-dcgm-exporter" in gpu_operator_exporter([{"metadata": {"name": "nvidia-dcgm-exporter", "namespace": "gpu-operator"}}], [])
    assert "ClusterPolicy" in gpu_operator_exporter([], [{"metadata": {"name": "cluster-policy"}, "spec": {}}])
    assert gpu_operator_exporter([], [{"metadata": {"name": "cp"}, "spec": {"dcgmExporter": {"enabled": False}}}]) is None


def test_tensorboard_from_pvc_read_only():
    dep, svc = build_tensorboard({"name": "tb", "namespace": "ml", "log_dir": {"claim_name": "ckpt", "sub_path": "tb"}})
    pod = dep["spec"]["template"]["spec"]
    ctr = pod["containers"][0]
    assert ctr["command"][:2] == ["tensorboard", "--logdir=/logs"]
    assert {"name": "logs", "mountPath": "/logs", "readOnly": True, "subPath": "tb"} in ctr["volumeMounts"]
    assert {"name": "logs", "persistentVolumeClaim": {"claimName": "ckpt", "readOnly": True}} in pod["volumes"]
    assert ctr["image"] == "tensorflow/tensorflow:2.21.0"
    assert svc["spec"]["ports"][0]["port"] == 6006 and svc["spec"]["ports"][0]["name"].startswith("http")


def test_tensorboard_object_storage_with_istio_policies():
    objs = build_tensorboard(
        {"name": "tb", "namespace": "ml", "log_dir_uri": "gs://runs/x", "storage_secret": "gcs", "istio": {"enabled": True, "allow_namespaces": ["ml-users"]}}
    )
    assert [o["kind"] for o in objs] == ["Deployment", "Service", "PeerAuthentication", "AuthorizationPolicy"]
    ctr = objs[0]["spec"]["template"]["spec"]["containers"][0]
    assert "--logdir=gs://runs/x" in ctr["command"] and ctr["envFrom"] == [{"secretRef": {"name": "gcs"}}]
    assert objs[0]["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    authz = objs[3]
    assert authz["spec"]["selector"]["matchLabels"] == objs[0]["spec"]["selector"]["matchLabels"]
    assert authz["spec"]["rules"][0]["from"] == [{"source": {"namespaces": ["ml-users"]}}]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"log_dir": {"claim_name": "a"}, "log_dir_uri": "gs://b"},
        {"log_dir_uri": "gs://b", "istio": {"enabled": True}},
    ],
)
def test_tensorboard_bad_input(params):
    with pytest.raises(InputError):
        build_tensorboard(dict({"name": "tb", "namespace": "ml"}, **params))
