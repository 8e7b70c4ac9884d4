# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Simulated GPU nodes joining a kind cluster: KWOK (the control plane's build) runs on this
machine against the kind API server and keeps the nodes it is told about (annotation
kwok.x-k8s.io/node=fake) Ready and their pods Running, while the kind nodes run real pods.

    gpu_nodes.py up --kubeconfig K --state-dir D [--nodes 4 --gpus-per-node 8 --gpu-product P]
    gpu_nodes.py down --kubeconfig K --state-dir D

The nodes are the local control plane's (tools/local_cluster.py: GPU Feature Discovery labels,
nvidia.com/gpu capacity, rack/block topology labels, a DRA ResourceSlice each) and carry the taint
nvidia.com/gpu=present:NoSchedule, so that only pods asking for GPUs (tolerating it, which the
API server's ExtendedResourceToleration admission adds) land on them; the controllers and every
other pod stay on the kind nodes, where their containers really run. `down` stops KWOK by PID
and deletes the nodes and slices.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import local_cluster  # noqa: E402  (the launcher's KWOK arguments, node and slice manifests)

# KWOK's pod IPs come from each node's podCIDR (kind's controller-manager allocates them); this range
# is only its fallback, kept apart from kind's 10.244.0.0/16.
KWOK_CIDR = "10.250.0.0/16"
KWOK_NODE_IP = "10.250.0.1"


def log(msg):
    sys.stderr.write("gpu-nodes: %s\n" % msg)
    sys.stderr.flush()


def control_plane_bin():
    return subprocess.check_output(["bash", os.path.join(ROOT, "tools", "gobuild", "build.sh"), "--print-only"], text=True).strip()


def kubectl(opts, *args, data=None):
    cmd = [os.path.join(opts.bin, "kubectl"), "--kubeconfig", opts.kubeconfig] + list(args)
    return subprocess.run(cmd, input=data, text=True, capture_output=True, check=True).stdout


def kwok_alive(state_dir):
    path = os.path.join(state_dir, "kwok.pid")
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        pid = int(handle.read().strip() or 0)
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return pid if b"kwok" in handle.read() else None
    except OSError:
        return None


def start_kwok(opts):
    if kwok_alive(opts.state_dir):
        return
    args = [os.path.join(opts.bin, "kwok")] + local_cluster.kwok_args(opts.bin, opts.kubeconfig, KWOK_CIDR, KWOK_NODE_IP)
    with open(os.path.join(opts.state_dir, "kwok.log"), "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    with open(os.path.join(opts.state_dir, "kwok.pid"), "w") as handle:
        handle.write(str(proc.pid))
    log("KWOK started (pid %d, log %s/kwok.log)" % (proc.pid, opts.state_dir))


def nodes_ready(opts, names):
    items = json.loads(kubectl(opts, "get", "nodes", "-o", "json"))["items"]
    ready = set(n["metadata"]["name"] for n in items
                if any(c.get("type") == "Ready" and c.get("status") == "True" for c in (n.get("status") or {}).get("conditions") or []))
    return set(names) <= ready


def up(opts):
    os.makedirs(opts.state_dir, exist_ok=True)
    start_kwok(opts)
    names, docs = [], []
    for index in range(opts.nodes):
        name = "%s-%d" % (opts.prefix, index)
        names.append(name)
        docs.append(local_cluster.LocalCluster.node_manifest(name, opts.gpus_per_node, opts.gpu_product, True, index))
        docs.append(local_cluster.LocalCluster.resource_slice_manifest(name, opts.gpus_per_node, opts.gpu_product, index))
    # create, not apply: a node's status (capacity) is only taken on create; existing ones are kept.
    existing = set(kubectl(opts, "get", "nodes", "-o", "name").split())
    new = [d for d in docs if d["kind"] != "Node" or "node/" + d["metadata"]["name"] not in existing]
    slices = set(kubectl(opts, "get", "resourceslices", "-o", "name").split())
    new = [d for d in new if d["kind"] != "ResourceSlice" or "resourceslice.resource.k8s.io/" + d["metadata"]["name"] not in slices]
    if new:
        kubectl(opts, "create", "-f", "-", data=json.dumps({"apiVersion": "v1", "kind": "List", "items": new}))
    deadline = time.time() + 120
    while not nodes_ready(opts, names):
        if time.time() > deadline or not kwok_alive(opts.state_dir):
            raise RuntimeError("the simulated GPU nodes did not become Ready; see %s/kwok.log" % opts.state_dir)
        time.sleep(1)
    log("%d GPU nodes x %d %s Ready (%d created)" % (opts.nodes, opts.gpus_per_node, opts.gpu_product, len(new)))


def down(opts):
    pid = kwok_alive(opts.state_dir)
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _attempt in range(50):
            if not kwok_alive(opts.state_dir):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        log("KWOK stopped (pid %d)" % pid)
    if os.path.exists(opts.kubeconfig):
        try:
            kubectl(opts, "delete", "nodes,resourceslices", "-l", "aiinfra.cluster/simulated=true", "--ignore-not-found", "--wait=false")
        except subprocess.CalledProcessError:
            pass  # the cluster is already gone
    if os.path.exists(os.path.join(opts.state_dir, "kwok.pid")):
        os.unlink(os.path.join(opts.state_dir, "kwok.pid"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--gpu-product", default="NVIDIA-H100-80GB-HBM3")
    parser.add_argument("--prefix", default="gpu-node")
    opts = parser.parse_args(argv)
    opts.bin = control_plane_bin()
    try:
        up(opts) if opts.command == "up" else down(opts)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        log("FAILED: %s%s" % (exc, (": " + exc.stderr.strip()) if getattr(exc, "stderr", None) else ""))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
