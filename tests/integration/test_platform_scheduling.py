"""gpu_scheduling on the local control plane: the role's ResourceQuota is enforced by the API
server, and the real kube-scheduler preempts preemptible GPU pods for a training pod."""

import json
import os
import re
import subprocess
import tempfile
import uuid

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError
from polling import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GPU = "nvidia.com/gpu"

ROLE_PLAY = """
- hosts: k8s_control
  gather_facts: false
  module_defaults:
    group/aiinfra.cluster.k8s:
      kubeconfig: "{{ aiinfra_kubeconfig }}"
  roles:
    - aiinfra.cluster.gpu_scheduling
"""


def run_play(play, extra_vars, kubeconfig):
    """ansible-playbook with the local inventory; returns (rc, output, changed count)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        handle.write(play)
        path = handle.name
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=kubeconfig, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(ROOT, ".cache", "collections")
    try:
        proc = subprocess.run(
            [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", "local"), path, "-e", json.dumps(extra_vars)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            timeout=600,
            check=False,
        )
    finally:
        os.unlink(path)
    out = proc.stdout.decode()
    match = re.search(r"changed=(\d+)", out.split("PLAY RECAP")[-1])
    return proc.returncode, out, int(match.group(1)) if match else None


def pod(name, gpus, priority_class=None, node=None):
    spec = {
        "containers": [{"name": "main", "image": "registry.example/cuda:12", "resources": {"limits": {GPU: str(gpus)}} if gpus else {}}],
        "terminationGracePeriodSeconds": 0,
    }
    if priority_class:
        spec["priorityClassName"] = priority_class
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def create_pod(kube, namespace, manifest):
    return kube.request("POST", "/api/v1/namespaces/%s/pods" % namespace, body=manifest)


@pytest.fixture(scope="module")
def team(kube, kubeconfig):
    """A team namespace made by the role (quota 4 GPUs, at most 4 per container); removed after."""
    name = "t-team-%s" % uuid.uuid4().hex[:6]
    extra = {"gpu_scheduling_teams": [{"name": name, "gpu_quota": 4, "max_gpus_per_pod": 4, "istio_injection": True, "pod_security": "restricted"}]}
    rc, out, changed = run_play(ROLE_PLAY, extra, kubeconfig)
    assert rc == 0, out
    yield {"name": name, "vars": extra}
    try:
        kube.delete("/api/v1/namespaces/%s" % name, body={"propagationPolicy": "Background"})
    except ApiError:
        pass


def test_role_creates_priorities_namespace_quota_and_limits(kube, team, kubeconfig):
    name = team["name"]
    classes = dict((pc["metadata"]["name"], pc) for pc in kube.get("/apis/scheduling.k8s.io/v1/priorityclasses")["items"])
    assert classes["gpu-inference"]["value"] > classes["gpu-training"]["value"] > 0 > classes["gpu-preemptible"]["value"]
    assert classes["gpu-preemptible"]["preemptionPolicy"] == "Never"
    labels = kube.get("/api/v1/namespaces/%s" % name)["metadata"]["labels"]
    assert labels["istio-injection"] == "enabled"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    quota = kube.get("/api/v1/namespaces/%s/resourcequotas/gpu-quota" % name)
    assert quota["spec"]["hard"] == {"requests.%s" % GPU: "4"}
    limits = kube.get("/api/v1/namespaces/%s/limitranges/gpu-limits" % name)["spec"]["limits"][0]
    assert limits["max"][GPU] == "4" and limits["default"][GPU] == "0"
    # Second run of the same inventory: nothing changes.
    rc, out, changed = run_play(ROLE_PLAY, team["vars"], kubeconfig)
    assert rc == 0, out
    assert changed == 0, out


def test_pod_over_gpu_quota_is_refused(kube, team):
    name = team["name"]
    # Quota admission needs the controller to have computed the quota's status first.
    wait_until("quota status", lambda: (kube.get("/api/v1/namespaces/%s/resourcequotas/gpu-quota" % name).get("status") or {}).get("hard"))
    created = create_pod(kube, name, restricted(pod("fits", 3)))
    assert created["spec"]["containers"][0]["resources"]["limits"][GPU] == "3"
    with pytest.raises(ApiError) as refused:
        create_pod(kube, name, restricted(pod("over-quota", 3)))
    assert refused.value.status == 403
    assert "exceeded quota: gpu-quota" in str(refused.value.msg)
    with pytest.raises(ApiError) as too_big:
        create_pod(kube, name, restricted(pod("too-big", 5)))
    assert too_big.value.status == 403
    # CPU-only pods get the LimitRange default of 0 GPUs and are admitted.
    cpu = create_pod(kube, name, restricted(pod("cpu-only", 0)))
    assert cpu["spec"]["containers"][0]["resources"]["limits"][GPU] == "0"


def restricted(manifest):
    """Pod Security `restricted` wants these; the namespace enforces it."""
    manifest["spec"]["securityContext"] = {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}}
    manifest["spec"]["containers"][0]["securityContext"] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    return manifest


def free_gpus(kube):
    """Free GPUs per schedulable GPU node, from allocatable minus bound pods' requests."""
    free = {}
    for node in kube.get("/api/v1/nodes")["items"]:
        alloc = int((node["status"].get("allocatable") or {}).get(GPU, "0"))
        if alloc and not node["spec"].get("unschedulable"):
            free[node["metadata"]["name"]] = alloc
    for item in kube.get("/api/v1/pods")["items"]:
        node = item["spec"].get("nodeName")
        if node not in free or item["status"].get("phase") in ("Succeeded", "Failed"):
            continue
        for container in item["spec"]["containers"]:
            free[node] -= int(((container.get("resources") or {}).get("limits") or {}).get(GPU, "0"))
    return free


def test_training_pod_preempts_preemptible_pod(kube, team, namespace):
    fillers = {}
    for node, count in sorted(free_gpus(kube).items()):
        if count > 0:
            fillers[node] = create_pod(kube, namespace, pod("filler-%s" % node, count, "gpu-preemptible", node))["metadata"]["name"]
    assert fillers, "no free GPUs on the simulated nodes"

    def bound():
        pods = dict((p["metadata"]["name"], p) for p in kube.get("/api/v1/namespaces/%s/pods" % namespace)["items"])
        return all(pods.get(n, {}).get("spec", {}).get("nodeName") for n in fillers.values())

    wait_until("preemptible fillers bound", bound)
    assert all(count == 0 for count in free_gpus(kube).values()), free_gpus(kube)

    target = sorted(fillers)[0]
    victim = fillers[target]
    want = int(kube.get("/api/v1/namespaces/%s/pods/%s" % (namespace, victim))["spec"]["containers"][0]["resources"]["limits"][GPU])
    create_pod(kube, namespace, pod("training", want, "gpu-training", target))

    def training_bound():
        return kube.get("/api/v1/namespaces/%s/pods/training" % namespace)["spec"].get("nodeName")

    assert wait_until("training pod scheduled after preemption", training_bound, timeout=90) == target
    try:
        gone = kube.get("/api/v1/namespaces/%s/pods/%s" % (namespace, victim))["metadata"].get("deletionTimestamp") is not None
    except ApiError as exc:
        gone = exc.status == 404
    assert gone, "the preemptible pod on %s was not evicted" % target
    events = kube.get("/api/v1/namespaces/%s/events" % namespace, query={"fieldSelector": "involvedObject.name=%s" % victim})["items"]
    assert any(e["reason"] == "Preempted" for e in events), [e["reason"] for e in events]
    # Fillers on the other nodes were not touched.
    for node, name in fillers.items():
        if node != target:
            assert kube.get("/api/v1/namespaces/%s/pods/%s" % (namespace, name))["metadata"].get("deletionTimestamp") is None
