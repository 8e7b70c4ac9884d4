"""A kind cluster on the node image built here (tools/kind): it comes up with no image pulled
from anywhere (every image kubeadm and kind run is made from binaries built here), an image made
here is pushed to the local registry on 127.0.0.1 and pulled from it by the nodes, real pods
serve real processes across nodes through kube-proxy and CoreDNS, and `down` leaves no
container, network or process of its own behind.

Needs a Docker engine (tools/docker_up.sh; `make test-kind` starts and stops one)."""

import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIND = os.path.join(ROOT, "tools", "kind")
NAME = "aiinfra-kind-test"
STATE = "/tmp/aiinfra-kind-%s" % NAME
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


@pytest.fixture(scope="module")
def docker_engine():
    if subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode != 0:
        pytest.fail("no Docker engine answers: run through `make test-kind` (it starts one with tools/docker_up.sh)")


def test_kind_cluster_offline_runs_real_pods_and_leaves_nothing(docker_engine, tmp_path):
    before = docker_state()
    started = time.monotonic()
    try:
        run(["bash", os.path.join(KIND, "cluster.sh"), "up", NAME, "2"], timeout=3000)
        up_seconds = time.monotonic() - started
        kubectl = [os.path.join(run(["bash", os.path.join(KIND, "build.sh"), "--print-only"]).strip(), "kubectl"), "--kubeconfig", STATE + "/kubeconfig"]

        # kind waits for the control plane; the workers join and get their pod network after it.
        run(kubectl + ["wait", "--for=condition=Ready", "nodes", "--all", "--timeout=180s"], timeout=240)
        nodes = json.loads(run(kubectl + ["get", "nodes", "-o", "json"]))["items"]
        assert len(nodes) == 3
        for node in nodes:
            ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"][0]
            assert ready["status"] == "True", (node["metadata"]["name"], ready)
        # Every system pod runs an image that could only come from the node image: nothing here
        # can reach a registry, and the pod network's image exists nowhere else.
        run(kubectl + ["wait", "-n", "kube-system", "--for=condition=Ready", "pods", "--all", "--timeout=180s"], timeout=240)
        pods = json.loads(run(kubectl + ["get", "pods", "-n", "kube-system", "-o", "json"]))["items"]
        images = sorted(set(c["image"] for p in pods for c in p["spec"]["containers"]))
        assert "aiinfra.local/kind-pod-network:v1" in images and any("coredns" in i for i in images), images
        events = run(kubectl + ["get", "events", "-A", "--field-selector", "reason=Pulling", "-o", "name"])
        assert events.strip() == "", events

        # An image made here (the node image's Debian layer, which has socat), pushed to the local
        # registry on 127.0.0.1 and pulled from it by the nodes' containerd.
        cache = os.path.expanduser("~/.cache/aiinfra-cluster/kind")
        rootfs = sorted(f for f in os.listdir(cache) if f.startswith("rootfs-"))[-1]
        archive = str(tmp_path / "web.tar")
        run([sys.executable, os.path.join(KIND, "mkimage.py"), "-o", archive, "--ref", "aiinfra.local/kind-test-web:v1",
             "--layer-tar", os.path.join(cache, rootfs)])
        pushed = run([sys.executable, os.path.join(KIND, "push_image.py"), archive, "127.0.0.1:5001/aiinfra/kind-test-web:v1"])
        assert "blobs pushed" in pushed, pushed
        manifest = tmp_path / "web.yaml"
        manifest.write_text(WEB)
        run(kubectl + ["apply", "-f", str(manifest)])
        run(kubectl + ["rollout", "status", "deployment/web", "--timeout=120s"], timeout=180)
        placed = json.loads(run(kubectl + ["get", "pods", "-l", "app=web", "-o", "json"]))["items"]
        pulled = run(kubectl + ["get", "events", "--field-selector", "reason=Pulled", "-o", "jsonpath={.items[*].message}"])
        assert "localhost:5001/aiinfra/kind-test-web:v1" in pulled, pulled
        assert len(set(p["spec"]["nodeName"] for p in placed)) == 2, [p["spec"]["nodeName"] for p in placed]
        # From a pod on the control plane: the Service's DNS name (CoreDNS), its ClusterIP
        # (kube-proxy) and both backends on the two workers (the pod network between nodes).
        answers = set()
        for _attempt in range(20):
            out = run(kubectl + ["run", "probe", "--rm", "-i", "--restart=Never", "--image=aiinfra.local/kind-pod-network:v1",
                                 "--image-pull-policy=Never", "--overrides",
                                 json.dumps({"spec": {"nodeName": NAME + "-control-plane",
                                                      "tolerations": [{"operator": "Exists"}]}}),
                                 "--", "bash", "-c", "for i in 1 2 3 4 5 6; do curl -s --max-time 3 http://web.default.svc.cluster.local/; done"],
                      timeout=120, check=False)
            answers.update(line.strip() for line in out.splitlines() if line.strip().startswith("web-"))
            if len(answers) == 2:
                break
        assert answers == set(p["metadata"]["name"] for p in placed), answers
        print("kind cluster (1 control plane, 2 workers) up in %.0f s" % up_seconds)
    finally:
        run(["bash", os.path.join(KIND, "cluster.sh"), "down", NAME], check=False)
    containers, networks, proxies = docker_state()
    assert not [c for c in containers - before[0] if NAME in c], containers
    assert networks - before[1] == set(), networks - before[1]
    assert proxies - before[2] == set(), proxies - before[2]
    assert not os.path.exists(STATE)
