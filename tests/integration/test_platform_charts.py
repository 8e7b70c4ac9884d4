"""Platform charts on the local control plane, installed by the roles with kubernetes.core.helm
from the offline chart mirror (../shared/charts): Deployments available, CRDs established, a
second run changes nothing, ClusterPolicy readiness, and bad inventory values refused before
anything changes."""

import json
import os
import re
import subprocess
import tempfile

import pytest

# The operators' CRDs (and charts) from ../shared: skipped on a plain clone (tests/conftest.py).
pytestmark = pytest.mark.upstream

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLATFORM = os.path.join(ROOT, "playbooks", "platform.yml")

GPU_OPERATOR_PLAY = """
- hosts: k8s_control
  gather_facts: false
  module_defaults:
    group/aiinfra.cluster.k8s: {kubeconfig: "{{ aiinfra_kubeconfig }}"}
    kubernetes.core.helm: {kubeconfig: "{{ aiinfra_kubeconfig }}"}
    kubernetes.core.k8s_info: {kubeconfig: "{{ aiinfra_kubeconfig }}"}
  roles:
    - aiinfra.cluster.gpu_operator
"""

# (namespace, Deployment) each platform role must leave available.
CONTROLLERS = [
    ("gpu-operator", "gpu-operator"),
    ("gpu-operator", "gpu-operator-node-feature-discovery-master"),
    ("cert-manager", "cert-manager"),
    ("cert-manager", "cert-manager-webhook"),
    ("kserve", "kserve-controller-manager"),
    ("fluid-system", "dataset-controller"),
    ("fluid-system", "fluid-webhook"),
    ("kubeflow-system", "kubeflow-trainer-controller-manager"),
    ("kubeflow-system", "jobset-controller"),
]
CRDS = [
    "clusterpolicies.nvidia.com",
    "certificates.cert-manager.io",
    "inferenceservices.serving.kserve.io",
    "datasets.data.fluid.io",
    "trainjobs.trainer.kubeflow.org",
    "clustertrainingruntimes.trainer.kubeflow.org",
    "jobsets.jobset.x-k8s.io",
]


def run_playbook(playbook, kubeconfig, extra_vars=None, args=()):
    """ansible-playbook with the local inventory; returns (rc, output, changed count)."""
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=kubeconfig, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(ROOT, ".cache", "collections")
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", "local"), playbook]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    proc = subprocess.run(list(cmd) + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=900, check=False)
    out = proc.stdout.decode()
    match = re.search(r"changed=(\d+)", out.split("PLAY RECAP")[-1])
    return proc.returncode, out, int(match.group(1)) if match else None


def run_play_text(play, kubeconfig, extra_vars=None):
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        handle.write(play)
    try:
        return run_playbook(handle.name, kubeconfig, extra_vars)
    finally:
        os.unlink(handle.name)


def available(kube, namespace, name):
    dep = kube.get("/apis/apps/v1/namespaces/%s/deployments/%s" % (namespace, name))
    conds = dict((c["type"], c["status"]) for c in (dep.get("status") or {}).get("conditions") or [])
    return conds.get("Available") == "True" and (dep["status"].get("availableReplicas") or 0) >= dep["spec"]["replicas"]


def helm_release(kube, namespace, name):
    """The deployed revision of a Helm release, from its release Secrets (no helm needed)."""
    items = kube.get("/api/v1/namespaces/%s/secrets" % namespace, query={"labelSelector": "owner=helm,name=%s" % name})["items"]
    deployed = [s for s in items if s["metadata"]["labels"].get("status") == "deployed"]
    return int(deployed[0]["metadata"]["labels"]["version"]) if deployed else None


@pytest.fixture(scope="module")
def platform(kubeconfig):
    """The whole platform tier, installed from the mirror (a no-op when already installed)."""
    rc, out, _changed = run_playbook(PLATFORM, kubeconfig)
    assert rc == 0, out[-6000:]
    return out


def test_charts_install_from_mirror_and_controllers_become_available(kube, platform):
    for namespace, name in CONTROLLERS:
        assert available(kube, namespace, name), "%s/%s not available" % (namespace, name)
    for crd in CRDS:
        conds = dict((c["type"], c["status"]) for c in kube.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/%s" % crd)["status"]["conditions"])
        assert conds.get("Established") == "True", crd
    for namespace, release in [("gpu-operator", "gpu-operator"), ("cert-manager", "cert-manager"), ("kserve", "kserve-crd"),
                               ("kserve", "kserve-resources"), ("kserve", "kserve-runtime-configs"), ("fluid-system", "fluid"),
                               ("kubeflow-system", "kubeflow-trainer")]:
        assert helm_release(kube, namespace, release), "%s/%s not deployed" % (namespace, release)
    # Values from the role variables reached the cluster.
    policy = kube.get("/apis/nvidia.com/v1/clusterpolicies/cluster-policy")
    assert policy["spec"]["driver"]["enabled"] is True
    assert policy["spec"]["mig"]["strategy"] == "single"
    assert "defaultRuntime" not in policy["spec"]["operator"]
    ns = kube.get("/api/v1/namespaces/gpu-operator")["metadata"]["labels"]
    assert ns["pod-security.kubernetes.io/enforce"] == "privileged"
    config = kube.get("/api/v1/namespaces/kserve/configmaps/inferenceservice-config")["data"]
    assert json.loads(config["deploy"])["defaultDeploymentMode"] == "Standard"
    runtimes = kube.get("/apis/serving.kserve.io/v1alpha1/clusterservingruntimes")["items"]
    assert "kserve-tritonserver" in [r["metadata"]["name"] for r in runtimes]


# (namespace, release) of the Helm releases the platform playbook installs.
PLATFORM_RELEASES = [("gpu-operator", "gpu-operator"), ("kserve", "kserve-resources"), ("kubeflow-system", "kubeflow-trainer")]


def helm_tasks_run(out):
    """The roles' chart tasks (kubernetes.core.helm) that ran instead of being skipped."""
    ran = []
    for block in re.split(r"\nTASK \[", out)[1:]:
        title, body = block.partition("]")[::2]
        if re.search(r" : Chart\b", title) and re.search(r"^(ok|changed): ", body, re.M):
            ran.append(title)
    return ran


def test_second_platform_run_changes_nothing(kube, kubeconfig, platform):
    revisions = dict((r, helm_release(kube, ns, r)) for ns, r in PLATFORM_RELEASES)
    rc, out, changed = run_playbook(PLATFORM, kubeconfig)
    assert rc == 0, out[-6000:]
    assert changed == 0, out[-6000:]
    # helm_release_info read Helm's records: no chart task started helm.
    assert re.search(r" : Chart\b", out) and helm_tasks_run(out) == [], helm_tasks_run(out)
    assert revisions == dict((r, helm_release(kube, ns, r)) for ns, r in PLATFORM_RELEASES)


def test_cluster_policy_wait_reports_operands_then_succeeds_when_ready(kube, kubeconfig, platform, status_patcher):
    # Simulated GPU Operator (its controller is not served at the pinned version): the test writes
    # the ClusterPolicy's status and plays the operand DaemonSet it would own.
    wait = {"gpu_operator_wait_for_ready": True, "gpu_operator_wait_timeout": 6}
    uid = kube.get("/apis/nvidia.com/v1/clusterpolicies/cluster-policy")["metadata"]["uid"]
    path = "/apis/apps/v1/namespaces/gpu-operator/daemonsets/nvidia-device-plugin-daemonset"
    # An operand whose generation cannot roll out (it asks more GPUs than a node has).
    container = {"name": "dp", "image": "registry.local/dp:2", "resources": {"limits": {"nvidia.com/gpu": "1000"}}}
    operand = {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "nvidia-device-plugin-daemonset", "namespace": "gpu-operator",
                     "ownerReferences": [{"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "name": "cluster-policy", "uid": uid, "controller": True}]},
        "spec": {"selector": {"matchLabels": {"app": "dp"}},
                 "template": {"metadata": {"labels": {"app": "dp"}},
                              "spec": {"nodeSelector": {"nvidia.com/gpu.present": "true"}, "tolerations": [{"operator": "Exists"}],
                                       "containers": [container]}}},
    }
    try:
        kube.apply_patch(path, operand, "simulated-gpu-operator")
        status_patcher("nvidia.com/v1", "ClusterPolicy", "cluster-policy", None,
                       {"state": "notReady", "namespace": "gpu-operator",
                        "conditions": [{"type": "Ready", "status": "False", "reason": "OperandNotReady",
                                        "message": "ClusterPolicy is not ready, states not ready: [state-driver]",
                                        "lastTransitionTime": "2026-11-29T00:00:00Z"}]})
        rc, out, changed = run_play_text(GPU_OPERATOR_PLAY, kubeconfig, wait)
        assert rc != 0
        assert "ClusterPolicy cluster-policy not ready after 6s" in out, out[-4000:]
        assert "status.state is 'notReady'" in out, out[-4000:]
        assert "states not ready: [state-driver]" in out, out[-4000:]
        # Which operands are not ready, as the role's own report said before it used the engine.
        assert "operand DaemonSet gpu-operator/nvidia-device-plugin-daemonset" in out, out[-4000:]

        # After a `helm upgrade` the operator still says `ready` (from before it): the operand that
        # cannot roll out must hold the wait.
        status_patcher("nvidia.com/v1", "ClusterPolicy", "cluster-policy", None, {"state": "ready", "namespace": "gpu-operator", "conditions": []})
        rc, out, changed = run_play_text(GPU_OPERATOR_PLAY, kubeconfig, wait)
        assert rc != 0, out[-4000:]
        assert "operand DaemonSet gpu-operator/nvidia-device-plugin-daemonset" in out, out[-4000:]
        # The operand rolls out: the same role run passes without changing anything.
        container["resources"] = {}
        kube.apply_patch(path, operand, "simulated-gpu-operator")
        rc, out, changed = run_play_text(GPU_OPERATOR_PLAY, kubeconfig, dict(wait, gpu_operator_wait_timeout=60))
        assert rc == 0, out[-4000:]
        assert changed == 0, out[-4000:]
    finally:
        kube.delete(path)


@pytest.mark.parametrize(
    "tag, extra, message",
    [
        ("gpu_operator", {"gpu_operator_extra_values": {"devicePlugn": {"enabled": False}}}, "unknown GPU Operator chart option(s) devicePlugn"),
        ("gpu_operator", {"gpu_operator_extra_values": {"dcgmExporter": {"serviceMonitr": {"enabled": True}}}}, "dcgmExporter.serviceMonitr"),
        ("gpu_operator", {"gpu_operator_extra_values": {"operator": {"defaultRuntime": "containerd"}}}, "defaultRuntime was removed"),
        ("gpu_operator", {"gpu_operator_chart_version": "v26.9.9"}, "gpu_operator_chart_version v26.9.9 is not in the chart mirror"),
        ("gpu_operator", {"gpu_operator_mig_strategy": "half"}, "gpu_operator_mig_strategy"),
        ("gpu_scheduling", {"gpu_scheduling_teams": [{"name": "t-bad-quota", "gpu_quota": "lots"}]}, "gpu_quota"),
        ("kserve", {"kserve_version": "v0.99.0"}, "kserve_version v0.99.0: the chart mirror has no kserve-crd chart of that version"),
    ],
    ids=["unknown-option", "unknown-nested-option", "removed-default-runtime", "version-not-in-mirror", "bad-choice", "quota-not-a-number", "kserve-version"],
)
def test_bad_inventory_values_fail_before_any_change(kube, kubeconfig, platform, tag, extra, message):
    before = helm_release(kube, "gpu-operator", "gpu-operator")
    rc, out, changed = run_playbook(PLATFORM, kubeconfig, extra, args=["--tags", tag])
    assert rc != 0, out[-3000:]
    assert message in out, out[-3000:]
    assert changed == 0, out[-3000:]
    assert helm_release(kube, "gpu-operator", "gpu-operator") == before
    assert not kube.get("/api/v1/namespaces", query={"fieldSelector": "metadata.name=t-bad-quota"})["items"]


def test_time_slicing_and_mig_configs_are_wired_into_the_operator(kube, kubeconfig, platform):
    extra = {
        "gpu_operator_time_slicing_replicas": 4,
        "gpu_operator_mig_strategy": "mixed",
        "gpu_operator_container_runtime": "rke2",
        "gpu_operator_mig_configs": {"inference-1g": [{"devices": "all", "mig-enabled": True, "mig-devices": {"1g.10gb": 7}}]},
    }
    try:
        rc, out, changed = run_play_text(GPU_OPERATOR_PLAY, kubeconfig, extra)
        assert rc == 0, out[-4000:]
        spec = kube.get("/apis/nvidia.com/v1/clusterpolicies/cluster-policy")["spec"]
        assert spec["devicePlugin"]["config"] == {"name": "aiinfra-device-plugin-config", "default": "time-slicing"}
        assert spec["migManager"]["config"] == {"name": "aiinfra-mig-parted-config", "default": "all-disabled"}
        assert spec["mig"]["strategy"] == "mixed"
        assert spec["toolkit"]["env"] == [{"name": "CONTAINERD_SOCKET", "value": "/run/k3s/containerd/containerd.sock"}]
        sharing = kube.get("/api/v1/namespaces/gpu-operator/configmaps/aiinfra-device-plugin-config")["data"]["time-slicing"]
        assert "replicas: 4" in sharing and "name: nvidia.com/gpu" in sharing
        layouts = kube.get("/api/v1/namespaces/gpu-operator/configmaps/aiinfra-mig-parted-config")["data"]["config.yaml"]
        assert "inference-1g:" in layouts and "all-disabled:" in layouts and "1g.10gb: 7" in layouts
        rc, out, changed = run_play_text(GPU_OPERATOR_PLAY, kubeconfig, extra)
        assert rc == 0 and changed == 0, out[-4000:]
    finally:
        # Back to the inventory's values for the tests and the converge that follow.
        rc, out, changed = run_play_text(GPU_OPERATOR_PLAY, kubeconfig)
        assert rc == 0, out[-4000:]
    # Configurations dropped from the inventory are removed from the cluster.
    assert kube.get("/api/v1/namespaces/gpu-operator/configmaps", query={"labelSelector": "app.kubernetes.io/managed-by=aiinfra.cluster"})["items"] == []
    assert not kube.get("/apis/nvidia.com/v1/clusterpolicies/cluster-policy")["spec"]["devicePlugin"].get("config", {}).get("name")
