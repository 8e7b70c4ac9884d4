"""Integration fixtures: a real local control plane (tools/local_cluster.py up) is required.

The kubeconfig comes from K8S_AUTH_KUBECONFIG or .local-cluster/kubeconfig; tests fail (they do
not skip) when no control plane answers, so a green run always means the API was exercised."""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params
from ansible_collections.aiinfra.cluster.plugins.module_utils.resources import ResourceResolver

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@contextlib.contextmanager
def own_control_plane(prefix, *up_args):
    """A control plane of a test's own (tools/local_cluster.py up in a temporary state directory,
    always brought down): yields its state directory."""
    state = tempfile.mkdtemp(prefix=prefix)
    launcher = [sys.executable, os.path.join(ROOT, "tools", "local_cluster.py")]
    env = dict(os.environ, AIINFRA_LOCAL_CLUSTER_DIR=state)
    try:
        subprocess.run(launcher + ["up", "--state-dir", state] + list(up_args), check=True, env=env)
        yield state
    finally:
        subprocess.run(launcher + ["down", "--state-dir", state], check=False, env=env)


@pytest.fixture(scope="session")
def control_plane():
    """own_control_plane, for module-scoped fixtures: `with control_plane(prefix, *up_args) as state`."""
    return own_control_plane


@pytest.fixture(scope="session")
def kubeconfig():
    path = os.environ.get("K8S_AUTH_KUBECONFIG") or os.path.join(ROOT, ".local-cluster", "kubeconfig")
    if not os.path.exists(path):
        raise RuntimeError("no local control plane (%s missing): run `make up` first" % path)
    os.environ["K8S_AUTH_KUBECONFIG"] = path
    return path


@pytest.fixture(scope="session")
def kube(kubeconfig):
    client = KubeClient(config_from_params({"kubeconfig": kubeconfig}))
    client.get("/readyz")
    yield client
    client.close()


@pytest.fixture
def namespace(kube, request):
    """A fresh namespace per test, deleted afterwards."""
    name = "t-%s-%s" % (request.node.name.lower().replace("_", "-")[:40].strip("-[]"), uuid.uuid4().hex[:5])
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    kube.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    deadline = time.time() + 30
    while time.time() < deadline:  # pods need the namespace's default ServiceAccount
        try:
            kube.get("/api/v1/namespaces/%s/serviceaccounts/default" % name)
            break
        except ApiError:
            time.sleep(0.2)
    yield name
    try:
        kube.delete("/api/v1/namespaces/%s" % name, body={"propagationPolicy": "Background"})
    except ApiError:
        pass


# Helm releases whose webhooks, runtimes and configuration the real controllers need.
OPERATOR_RELEASES = [("kserve", "kserve-resources"), ("kserve", "kserve-runtime-configs"), ("kubeflow-system", "kubeflow-trainer"), ("fluid-system", "fluid"),
                     ("kueue-system", "kueue")]


@pytest.fixture(scope="session")
def operators(kube, kubeconfig):
    """The platform charts installed from the mirror (playbooks/platform.yml, run once when a
    release is missing), so the operators' controllers that tools/local_cluster.py runs serve the
    charts' webhooks. Fails when a controller is not running."""
    state_dir = os.path.dirname(os.path.abspath(kubeconfig))
    with open(os.path.join(state_dir, "state.json")) as handle:
        running = set(p["name"] for p in json.load(handle)["processes"] if p.get("operator"))
    missing = {"jobset", "kserve", "trainer", "kueue"} - running
    if missing:
        raise RuntimeError("controllers not running: %s (run `make up`, not --no-operators)" % ", ".join(sorted(missing)))

    def deployed(namespace, name):
        query = {"labelSelector": "owner=helm,name=%s,status=deployed" % name}
        return bool(kube.get("/api/v1/namespaces/%s/secrets" % namespace, query=query)["items"]) if namespace_exists(namespace) else False

    def namespace_exists(name):
        try:
            kube.get("/api/v1/namespaces/%s" % name)
            return True
        except ApiError:
            return False

    if not all(deployed(ns, name) for ns, name in OPERATOR_RELEASES):
        env = dict(os.environ, K8S_AUTH_KUBECONFIG=kubeconfig, ANSIBLE_NOCOLOR="1", ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"))
        cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", "local"),
               os.path.join(ROOT, "playbooks", "platform.yml")]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=1200, check=False)
        assert proc.returncode == 0, proc.stdout.decode()[-6000:]
    return running


def patch_status(kube, api_version, kind, name, namespace, status):
    """Set .status the way an operator would (status subresource, merge patch). Only for kinds whose
    controller does not run here: the GPU Operator's ClusterPolicy, the Training Operator v1 jobs,
    Fluid's runtimes and Datasets (Fluid runs only with `local_cluster.py up --operators ...,fluid`)."""
    rt = ResourceResolver(kube).resolve(api_version, kind)
    path = rt.item_path(name, namespace) + "/status"
    return kube.request("PATCH", path, body={"status": status}, content_type="application/merge-patch+json")


def get_object(kube, api_version, kind, name, namespace=None):
    rt = ResourceResolver(kube).resolve(api_version, kind)
    try:
        return kube.get(rt.item_path(name, namespace))
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


@pytest.fixture
def status_patcher(kube):
    return lambda *args: patch_status(kube, *args)


@pytest.fixture
def getter(kube):
    return lambda *args: get_object(kube, *args)


@pytest.fixture
def gpu_pool(kube, request):
    """Dedicated simulated GPU nodes for one test, with a GPU product label of their own, so a test
    that needs whole free nodes does not depend on what else holds GPUs on the shared cluster.
    Returns a function: gpu_pool(count, gpus=8) -> (product, [node names])."""
    created = []

    def make(count, gpus=8):
        suffix = uuid.uuid4().hex[:6]
        product = "TEST-POOL-%s" % suffix
        names = []
        for index in range(count):
            name = "pool-%s-%d" % (suffix, index)
            capacity = {"cpu": "192", "memory": "2Ti", "pods": "110", "nvidia.com/gpu": str(gpus)}
            labels = {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "type": "kwok",
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": product,
                "nvidia.com/gpu.count": str(gpus),
            }
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": labels, "annotations": {"kwok.x-k8s.io/node": "fake"}},
                "status": {"capacity": capacity, "allocatable": dict(capacity)},
            }
            kube.request("POST", "/api/v1/nodes", body=node)
            created.append(name)
            names.append(name)
        deadline = time.time() + 60
        while time.time() < deadline:
            ready = [
                n
                for n in kube.get("/api/v1/nodes", query={"labelSelector": "nvidia.com/gpu.product=%s" % product})["items"]
                if any(c["type"] == "Ready" and c["status"] == "True" for c in (n.get("status") or {}).get("conditions") or [])
            ]
            if len(ready) == count:
                return product, names
            time.sleep(0.3)
        raise AssertionError("pool nodes %s not Ready after 60s" % names)

    yield make
    for name in created:
        try:
            kube.delete("/api/v1/nodes/%s" % name)
        except ApiError:
            pass


@pytest.fixture(scope="module")
def nvidia_runtime_class(kube):
    """The RuntimeClass the Container Toolkit role (or the GPU Operator) creates on a GPU cluster."""
    try:
        kube.get("/apis/node.k8s.io/v1/runtimeclasses/nvidia")
        yield "nvidia"
        return
    except ApiError as exc:
        if exc.status != 404:
            raise
    body = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"}, "handler": "nvidia"}
    kube.request("POST", "/apis/node.k8s.io/v1/runtimeclasses", body=body)
    yield "nvidia"
    kube.delete("/apis/node.k8s.io/v1/runtimeclasses/nvidia")
