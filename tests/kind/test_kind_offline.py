"""A kind cluster on the node image built here (tools/kind): it comes up with no image pulled
from anywhere (every image kubeadm and kind run is made from binaries built here), images made
here are pushed to the local registry on 127.0.0.1 and pulled from it by the nodes, real pods
serve real processes across nodes through kube-proxy and CoreDNS, an operator's controller (the
JobSet chart) runs from the local registry and reconciles through its webhook's Service, and
`down` leaves no container, network or process of its own behind. Last, `molecule test -s kind`
offline: the whole site on such a cluster, converged twice (the second changes nothing).

Needs a Docker engine (tools/docker_up.sh; `make test-kind` starts and stops one)."""

import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIND = os.path.join(ROOT, "tools", "kind")
CHARTS = os.environ.get("AIINFRA_CHARTS_DIR", os.path.join(os.path.dirname(ROOT), "shared", "charts"))
CACHE = os.path.expanduser("~/.cache/aiinfra-cluster")
NAME = "aiinfra-kind-test"
STATE = "/tmp/aiinfra-kind-%s" % NAME
REGISTRY = "127.0.0.1:5001"  # pushed to from here; the nodes pull it as localhost:5001
WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      topologySpreadConstraints:
        - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
      containers:
        - name: web
          image: localhost:5001/aiinfra/kind-test-web:v1
          imagePullPolicy: Always
          command: [socat, "TCP-LISTEN:8080,fork,reuseaddr", "SYSTEM:echo HTTP/1.0 200 OK; echo; hostname"]
          ports: [{containerPort: 8080}]
          readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""
JOBSET = """
apiVersion: jobset.x-k8s.io/v1alpha2
kind: JobSet
metadata: {name: hello, namespace: default}
spec:
  replicatedJobs:
    - name: workers
      replicas: 2
      template:
        spec:
          parallelism: 1
          completions: 1
          backoffLimit: 0
          template:
            spec:
              restartPolicy: Never
              containers:
                - name: main
                  image: localhost:5001/aiinfra/kind-test-web:v1
                  command: [bash, -c, "echo trained on $(hostname)"]
"""


def run(cmd, timeout=900, check=True, **kwargs):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, check=False, **kwargs)
    out = proc.stdout.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        raise AssertionError("%s failed (rc=%d):\n%s" % (" ".join(cmd), proc.returncode, out[-4000:]))
    return out


def docker_state():
    containers = set(run(["docker", "ps", "-a", "--format", "{{.Names}}"]).split())
    networks = set(run(["docker", "network", "ls", "--format", "{{.Name}}"]).split())
    proxies = set(run(["pgrep", "-f", "docker-proxy"], check=False).split())
    return containers, networks, proxies


def push(tmp_path, name, *mkimage_args):
    """An image made here with mkimage.py, pushed to the local registry; returns its pull name."""
    archive = str(tmp_path / ("%s.tar" % name.replace("/", "-")))
    run([sys.executable, os.path.join(KIND, "mkimage.py"), "-o", archive, "--ref", "aiinfra.local/%s" % name] + list(mkimage_args))
    out = run([sys.executable, os.path.join(KIND, "push_image.py"), archive, "%s/%s" % (REGISTRY, name)])
    assert "blobs pushed" in out, out
    return "localhost:5001/%s" % name


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode != 0:
        pytest.fail("no Docker engine answers: run through `make test-kind` (it starts one with tools/docker_up.sh)")
    before = docker_state()
    started = time.monotonic()
    bin_dir = run(["bash", os.path.join(KIND, "build.sh"), "--print-only"]).strip()
    info = {"before": before, "kubectl": [os.path.join(bin_dir, "kubectl"), "--kubeconfig", STATE + "/kubeconfig"], "up": True}
    try:
        run(["bash", os.path.join(KIND, "cluster.sh"), "up", NAME, "2"], timeout=3000)
        info["up_seconds"] = time.monotonic() - started
        rootfs = sorted(f for f in os.listdir(os.path.join(CACHE, "kind")) if f.startswith("rootfs-"))[-1]
        # The node image's Debian layer (bash, socat, curl) as a workload image.
        info["web"] = push(tmp_path_factory.mktemp("images"), "aiinfra/kind-test-web:v1", "--layer-tar", os.path.join(CACHE, "kind", rootfs))
        yield info
    finally:
        if info["up"]:
            run(["bash", os.path.join(KIND, "cluster.sh"), "down", NAME], check=False)


def test_nodes_and_system_pods_run_only_what_the_node_image_holds(cluster):
    kubectl = cluster["kubectl"]
    # kind waits for the control plane; the workers join and get their pod network after it.
    run(kubectl + ["wait", "--for=condition=Ready", "nodes", "--all", "--timeout=180s"], timeout=240)
    assert len(json.loads(run(kubectl + ["get", "nodes", "-o", "json"]))["items"]) == 3
    run(kubectl + ["wait", "-n", "kube-system", "--for=condition=Ready", "pods", "--all", "--timeout=180s"], timeout=240)
    pods = json.loads(run(kubectl + ["get", "pods", "-n", "kube-system", "-o", "json"]))["items"]
    images = sorted(set(c["image"] for p in pods for c in p["spec"]["containers"]))
    assert "aiinfra.local/kind-pod-network:v1" in images and any("coredns" in i for i in images), images
    events = run(kubectl + ["get", "events", "-n", "kube-system", "--field-selector", "reason=Pulling", "-o", "name"])
    assert events.strip() == "", events
    print("kind cluster (1 control plane, 2 workers) up in %.0f s" % cluster["up_seconds"])


def test_an_image_from_the_local_registry_serves_across_nodes(cluster, tmp_path):
    kubectl = cluster["kubectl"]
    manifest = tmp_path / "web.yaml"
    manifest.write_text(WEB)
    run(kubectl + ["apply", "-f", str(manifest)])
    run(kubectl + ["rollout", "status", "deployment/web", "--timeout=120s"], timeout=180)
    placed = json.loads(run(kubectl + ["get", "pods", "-l", "app=web", "-o", "json"]))["items"]
    assert len(set(p["spec"]["nodeName"] for p in placed)) == 2, [p["spec"]["nodeName"] for p in placed]
    pulled = run(kubectl + ["get", "events", "--field-selector", "reason=Pulled", "-o", "jsonpath={.items[*].message}"])
    assert cluster["web"] in pulled, pulled
    # From a pod on the control plane: the Service's DNS name (CoreDNS), its ClusterIP
    # (kube-proxy) and both backends on the two workers (the pod network between nodes).
    answers = set()
    for _attempt in range(20):
        out = run(kubectl + ["run", "probe", "--rm", "-i", "--restart=Never", "--image=aiinfra.local/kind-pod-network:v1",
                             "--image-pull-policy=Never", "--overrides",
                             json.dumps({"spec": {"nodeName": NAME + "-control-plane", "tolerations": [{"operator": "Exists"}]}}),
                             "--", "bash", "-c", "for i in 1 2 3 4 5 6; do curl -s --max-time 3 http://web.default.svc.cluster.local/; done"],
                  timeout=120, check=False)
        answers.update(line.strip() for line in out.splitlines() if line.strip().startswith("web-"))
        if len(answers) == 2:
            break
    assert answers == set(p["metadata"]["name"] for p in placed), answers


@pytest.mark.upstream
def test_jobset_controller_runs_from_the_local_registry_and_reconciles(cluster, tmp_path):
    """The JobSet chart with its image moved to the local registry: the controller runs as a real
    pod pulled from it, serves its webhooks through their Service (with the certificate it makes
    itself), and runs a JobSet to completion."""
    kubectl = cluster["kubectl"]
    operators = os.path.join(CACHE, "operators")
    binary = os.path.join(operators, sorted(d for d in os.listdir(operators) if d.startswith("jobset-"))[-1], "jobset")
    image = push(tmp_path, "jobset/jobset:v0.12.0", "--file", binary + ":/manager", "--dir", "/tmp", "--user", "65532:65532")
    helm = os.path.join(run(["bash", os.path.join(ROOT, "tools", "gobuild", "build.sh"), "--print-only"]).strip(), "helm")
    run([helm, "install", "jobset", os.path.join(CHARTS, "jobset"), "--kubeconfig", STATE + "/kubeconfig", "-n", "jobset-system",
         "--create-namespace", "--set", "image.repository=" + image.rsplit(":", 1)[0], "--wait", "--timeout", "300s"], timeout=420)
    pods = json.loads(run(kubectl + ["get", "pods", "-n", "jobset-system", "-o", "json"]))["items"]
    assert [c["image"] for p in pods for c in p["spec"]["containers"]] == [image]
    assert all(c["ready"] for p in pods for c in p["status"]["containerStatuses"])

    manifest = tmp_path / "jobset.yaml"
    manifest.write_text(JOBSET)
    # The first requests may reach the webhook before its certificate is in place.
    for _attempt in range(30):
        out = run(kubectl + ["apply", "-f", str(manifest)], check=False)
        if "created" in out or "unchanged" in out or "configured" in out:
            break
        time.sleep(2)
    assert "jobset.jobset.x-k8s.io/hello" in out, out
    # Defaulted by the mutating webhook (through the Service) before it was stored.
    stored = json.loads(run(kubectl + ["get", "jobset", "hello", "-o", "json"]))
    assert stored["spec"].get("successPolicy", {}).get("operator") == "All", stored["spec"]
    run(kubectl + ["wait", "jobset/hello", "--for=condition=Completed", "--timeout=180s"], timeout=240)
    jobs = json.loads(run(kubectl + ["get", "jobs", "-l", "jobset.sigs.k8s.io/jobset-name=hello", "-o", "json"]))["items"]
    assert len(jobs) == 2 and all(j["status"].get("succeeded") == 1 for j in jobs), [j["status"] for j in jobs]


def test_down_leaves_nothing_of_its_own(cluster):
    run(["bash", os.path.join(KIND, "cluster.sh"), "down", NAME])
    cluster["up"] = False
    before = cluster["before"]
    containers, networks, proxies = docker_state()
    assert not [c for c in containers - before[0] if NAME in c], containers
    assert networks - before[1] == set(), networks - before[1]
    assert proxies - before[2] == set(), proxies - before[2]
    assert not os.path.exists(STATE)


def _memory_used_mib():
    info = dict(line.split(":", 1) for line in open("/proc/meminfo"))
    return (int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])) // 1024


@pytest.mark.upstream
def test_molecule_kind_scenario_offline():
    """`molecule test -s kind` as make test runs it here (AIINFRA_KIND_OFFLINE=1): create (node image,
    local registry with the platform's images, four simulated GPU nodes), converge site.yml with the
    controllers running as pods pulled from the registry, idempotence (changed=0), verify, destroy;
    then nothing of its own is left (containers, networks, KWOK, docker-proxy)."""
    before = docker_state()
    kwok_before = set(run(["pgrep", "-f", "kwok --config"], check=False).split())
    peak, done = [_memory_used_mib()], threading.Event()

    def sample():
        while not done.wait(2):
            peak.append(_memory_used_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    env = dict(os.environ, AIINFRA_KIND_OFFLINE="1", NO_COLOR="1", PATH=os.path.join(ROOT, ".venv", "bin") + os.pathsep + os.environ["PATH"])
    try:
        out = run([os.path.join(ROOT, ".venv", "bin", "molecule"), "test", "-s", "kind"], timeout=3000, check=False, cwd=ROOT, env=env)
    finally:
        done.set()
        sampler.join()
    elapsed = time.monotonic() - started
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    for step in ("create", "converge", "idempotence", "verify", "destroy"):
        assert "%s: Executed: Successful" % step in plain, plain[-6000:]
    containers, networks, proxies = docker_state()
    assert not [c for c in containers - before[0] if "aiinfra-molecule" in c], containers
    assert networks - before[1] == set() and proxies - before[2] == set(), (networks, proxies)
    assert set(run(["pgrep", "-f", "kwok --config"], check=False).split()) - kwok_before == set()
    print("molecule test -s kind (offline): %.0f s, memory in use peaked at %d MiB (%d MiB before)" % (elapsed, max(peak), peak[0]))
