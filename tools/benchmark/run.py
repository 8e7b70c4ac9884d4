#!/usr/bin/env python3
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Benchmark: the same ~150-object workload applied by this collection (its modules with `batch`,
a loop per item, and the workload tier's roles from an inventory), by one kubernetes.core.k8s
task per object and by one `kubectl apply --server-side`, each run twice (first run, then the
re-run that must change nothing); then gpu_node_info over 1000 simulated GPU nodes; then the
whole embedded site (site.yml, inventories/local) on a control plane of its own, converged and
re-run, against the floor of knowing that nothing changed. Request counts come from the API
server's own apiserver_request_total counters.

Normally started through tools/benchmark/run.sh, which brings up a private control plane.

    run.py --state-dir DIR [--out docs] [--gpu-nodes 1000] [--skip PHASE ...]
"""

import argparse
import copy
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import workload  # noqa: E402  (puts the collection on sys.path)
import yaml  # noqa: E402

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError  # noqa: E402
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params  # noqa: E402
from ansible_collections.aiinfra.cluster.plugins.module_utils.resources import ResourceResolver  # noqa: E402

# (key, label, generated file, name prefix, runner)
PHASES = [
    ("collection", "aiinfra.cluster (batch)", "collection-batch.yml", "bench-a", "ansible"),
    ("collection_loop", "aiinfra.cluster (loop per item)", "collection-loop.yml", "bench-l", "ansible"),
    ("roles", "aiinfra.cluster roles (workload tier, inventory)", "roles.yml", "bench-r", "roles"),
    ("kubernetes_core", "kubernetes.core.k8s (task per object)", "k8s.yml", "bench-k", "ansible"),
    ("kubectl", "kubectl apply --server-side", "workload.yaml", "bench-c", "kubectl"),
    ("engine", "apply engine alone, no Ansible (reference)", "workload.yaml", "bench-e", "engine"),
]
WRITE_VERBS = ("POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION")
METRIC = re.compile(r"^apiserver_request_total\{(.*)\} ([0-9.e+]+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
SERVER_SET = ("resourceVersion", "managedFields")
# Annotations controllers set on their own shortly after an object is created.
CONTROLLER_ANNOTATIONS = ("deployment.kubernetes.io/revision",)


def log(msg):
    print("benchmark: %s" % msg, file=sys.stderr, flush=True)


# API server metrics ---------------------------------------------------------------------------
def scrape(client):
    text = client.get("/metrics")
    counters = {}
    for line in text.splitlines():
        match = METRIC.match(line)
        if match:
            labels = tuple(sorted(LABEL.findall(match.group(1))))
            counters[labels] = float(match.group(2))
    return counters


def classify(before, after, plurals):
    """Requests between two scrapes that belong to the workload: its resources (not their status,
    which controllers write) and discovery/OpenAPI. WATCH and health/metrics probes are left out."""
    out = {"by_verb": {}, "reads": 0, "writes": 0, "dry_run": 0, "discovery": 0, "errors": 0}
    for labels, value in after.items():
        count = int(round(value - before.get(labels, 0)))
        if count <= 0:
            continue
        lab = dict(labels)
        verb, resource, sub = lab.get("verb"), lab.get("resource", ""), lab.get("subresource", "")
        if verb == "WATCH" or verb == "WATCHLIST":
            continue
        if resource:
            if resource not in plurals or sub:
                continue
        elif not (sub in ("api", "apis") or sub.startswith("openapi") or lab.get("group") or lab.get("version")):
            continue  # /metrics, /readyz, /healthz, /livez
        key = verb + (" (dry-run)" if lab.get("dry_run") else "")
        out["by_verb"][key] = out["by_verb"].get(key, 0) + count
        if lab.get("code", "200")[0] in "45":
            out["errors"] += count
        if not resource:
            out["discovery"] += count
        elif lab.get("dry_run"):
            out["dry_run"] += count
        elif verb in WRITE_VERBS:
            out["writes"] += count
        else:
            out["reads"] += count
    out["total"] = sum(out["by_verb"].values())
    return out


def discount_root_ca(client, objects, requests):
    """kube-controller-manager creates the ConfigMap kube-root-ca.crt in every new namespace; the
    counters cannot tell its requests from the tool's, so they are taken out here."""
    found = 0
    for obj in objects:
        if obj["kind"] == "Namespace":
            try:
                client.get("/api/v1/namespaces/%s/configmaps/kube-root-ca.crt" % obj["metadata"]["name"])
                found += 1
            except ApiError:
                pass
    found = min(found, requests["by_verb"].get("POST", 0))
    if found:
        requests["by_verb"]["POST"] -= found
        if not requests["by_verb"]["POST"]:
            del requests["by_verb"]["POST"]
        requests["writes"] -= found
        requests["total"] -= found
    requests["controller_writes_removed"] = found


# What the server holds ------------------------------------------------------------------------
def user_view(obj):
    """An object without status and bookkeeping the server changes on its own."""
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    meta = obj.get("metadata", {})
    for key in SERVER_SET:
        meta.pop(key, None)
    for key in CONTROLLER_ANNOTATIONS:
        (meta.get("annotations") or {}).pop(key, None)
    if meta.get("annotations") == {}:
        del meta["annotations"]
    return obj


def changed_paths(before, after, path=""):
    """Where two object views differ, as dotted paths (for the report)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after)):
            out += changed_paths(before.get(key), after.get(key), "%s.%s" % (path, key) if path else key)
        return out
    return [] if before == after else [path]


def snapshot(client, objects):
    resolver = ResourceResolver(client)
    views = {}
    for obj in objects:
        rt = resolver.resolve(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        try:
            views[workload._task_name(obj)] = user_view(client.get(rt.item_path(meta["name"], meta.get("namespace"))))
        except ApiError as exc:
            if exc.status != 404:
                raise
            views[workload._task_name(obj)] = None
    return views


def cleanup(client, created, timeout=180):
    """Delete the phases' namespaces and cluster-scoped objects and wait until the namespaces are
    gone (their DaemonSets would otherwise put a pod on each of the 1000 nodes added next)."""
    resolver = ResourceResolver(client)
    namespaces = []
    for objects, prefix in created:
        for obj in objects:
            rt = resolver.resolve(obj["apiVersion"], obj["kind"])
            if rt.namespaced or not obj["metadata"]["name"].startswith(prefix):
                continue
            if obj["kind"] == "Namespace":
                namespaces.append(obj["metadata"]["name"])
            try:
                client.delete(rt.item_path(obj["metadata"]["name"]), body={"propagationPolicy": "Background"})
            except ApiError as exc:
                if exc.status != 404:
                    raise
    deadline = time.monotonic() + timeout
    while namespaces and time.monotonic() < deadline:
        remaining = []
        for name in namespaces:
            try:
                client.get("/api/v1/namespaces/%s" % name)
                remaining.append(name)
            except ApiError as exc:
                if exc.status != 404:
                    raise
        namespaces = remaining
        if namespaces:
            time.sleep(1)
    if namespaces:
        log("namespaces still terminating after %ds: %s" % (timeout, ", ".join(namespaces)))


# Running the tools ----------------------------------------------------------------------------
def tool_env(work, kubeconfig):
    cfg = os.path.join(work, "ansible.cfg")
    with open(cfg, "w") as handle:
        # The same settings for every Ansible phase; everything else is Ansible's default.
        handle.write("[defaults]\ninterpreter_python = %s\nstdout_callback = default\nretry_files_enabled = false\n" % sys.executable)
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_CONFIG": cfg,
            "ANSIBLE_COLLECTIONS_PATH": workload.COLLECTIONS,
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
            "K8S_AUTH_KUBECONFIG": kubeconfig,
            "KUBECONFIG": kubeconfig,
            "KUBECACHEDIR": os.path.join(work, "kubectl-cache"),
        }
    )
    return env


def run_tool(kind, path, env, work):
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    if kind == "ansible":
        cmd = [playbook, "-i", "localhost,", "-c", "local", path]
    elif kind == "roles":
        cmd = [playbook, "-i", os.path.join(os.path.dirname(path), "inventory"), path]
    elif kind == "site":
        cmd = [playbook, "-i", os.path.join(ROOT, "inventories", "local"), path]
    elif kind == "engine":
        cmd = [sys.executable, os.path.join(HERE, "engine_apply.py"), path]
    else:
        cmd = [shutil.which("kubectl", path=env["PATH"]) or "kubectl", "apply", "--server-side", "--field-manager=benchmark", "-f", path]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    elapsed = time.monotonic() - started
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError("%s failed (rc=%d):\n%s" % (" ".join(cmd), proc.returncode, out[-4000:]))
    changed = None
    if kind in ("ansible", "roles", "site"):
        match = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)", out)
        changed = int(match.group(2)) if match else None
    elif kind == "engine":
        changed = json.loads(out.strip().splitlines()[-1])["changed"]
    return elapsed, changed


def run_phase(client, key, label, fname, prefix, kind, work, env):
    phase_dir = os.path.join(work, key)
    objects, kinds = workload.write(phase_dir, prefix)
    plurals = set(ResourceResolver(client).resolve(o["apiVersion"], o["kind"]).plural for o in objects)
    result = {"key": key, "label": label, "objects": len(objects), "kinds": kinds}
    for run in ("first", "rerun"):
        before = scrape(client)
        elapsed, changed = run_tool(kind, os.path.join(phase_dir, fname), env, phase_dir)
        after = scrape(client)
        requests = classify(before, after, plurals)
        if run == "first":
            discount_root_ca(client, objects, requests)
        views = snapshot(client, objects)
        entry = {"seconds": round(elapsed, 2), "tasks_changed": changed, "requests": requests}
        entry["requests_per_object"] = round(float(requests["total"]) / len(objects), 2)
        entry["writes_per_object"] = round(float(requests["writes"]) / len(objects), 2)
        if run == "first":
            entry["missing"] = sorted(name for name, view in views.items() if view is None)
        else:
            entry["objects_changed"] = sorted(name for name, view in views.items() if view != first_views.get(name))
            entry["changed_fields"] = dict((name, changed_paths(first_views.get(name), views[name])) for name in entry["objects_changed"])
        first_views = views
        result[run] = entry
        log(
            "%-40s %-5s %6.1fs  requests %4d (writes %d, dry-run %d, reads %d, discovery %d)  changed tasks %s"
            % (label, run, elapsed, requests["total"], requests["writes"], requests["dry_run"], requests["reads"], requests["discovery"], changed)
        )
    result["ratio_rerun_first"] = round(result["rerun"]["seconds"] / result["first"]["seconds"], 2)
    return result, objects


def warm_up(work, env):
    """Apply the workload once, unmeasured, under its own prefix: the API server builds its
    per-CRD schema and apply machinery on the first write of each kind, and the phase that
    happened to run first would otherwise pay for every one after it."""
    phase_dir = os.path.join(work, "warm-up")
    objects, _kinds = workload.write(phase_dir, "bench-w")
    elapsed = run_tool("kubectl", os.path.join(phase_dir, "workload.yaml"), env, phase_dir)[0]
    log("API server warmed up (kubectl apply of the workload, not measured): %.1fs" % elapsed)
    return objects, "bench-w"


def nvidia_runtime_class(client):
    """The RuntimeClass the Container Toolkit role (or the GPU Operator) creates on a GPU cluster:
    the DCGM exporter's pods name it, and dcgm_exporter refuses to apply them without it."""
    try:
        client.get("/apis/node.k8s.io/v1/runtimeclasses/nvidia")
    except ApiError as exc:
        if exc.status != 404:
            raise
        body = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"}, "handler": "nvidia"}
        client.request("POST", "/apis/node.k8s.io/v1/runtimeclasses", body=body)


def ansible_floor(work, env):
    """ansible-playbook with one no-op task: what every Ansible phase pays before its first task."""
    path = os.path.join(work, "noop.yml")
    with open(path, "w") as handle:
        handle.write("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: Nothing\n      ansible.builtin.meta: noop\n")
    seconds = min(run_tool("ansible", path, env, work)[0] for _attempt in range(2))
    log("ansible-playbook with one no-op task: %.1fs" % seconds)
    return round(seconds, 2)


# gpu_node_info at scale -----------------------------------------------------------------------
def grow_nodes(state_dir, gpu_nodes):
    started = time.monotonic()
    subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "local_cluster.py"), "up", "--state-dir", state_dir, "--gpu-nodes", str(gpu_nodes), "--no-operators"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    log("cluster grown to %d GPU nodes in %.1fs" % (gpu_nodes, time.monotonic() - started))


def run_module(name, args, env):
    """One module run the way Ansible starts it (a new Python process), timed from outside."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
        args_file = handle.name
    menv = dict(env, PYTHONPATH=workload.COLLECTIONS)
    try:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", workload.MODULES + name, args_file], env=menv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
        )
        elapsed = time.monotonic() - started
    finally:
        os.unlink(args_file)
    out = proc.stdout.decode()
    result = json.loads(out[out.index("{") :])
    if result.get("failed"):
        raise RuntimeError("%s failed: %s" % (name, result.get("msg")))
    return elapsed, result


def gpu_node_info_at_scale(client, env, repeats=3):
    runs = []
    for _repeat in range(repeats):
        before = scrape(client)
        elapsed, result = run_module("gpu_node_info", {}, env)
        after = scrape(client)
        lists = {}
        for labels, value in after.items():
            lab = dict(labels)
            count = int(round(value - before.get(labels, 0)))
            if count > 0 and lab.get("verb") == "LIST" and lab.get("resource") in ("nodes", "pods", "resourceslices", "resourceclaims"):
                lists[lab["resource"]] = lists.get(lab["resource"], 0) + count
        runs.append({"seconds": round(elapsed, 2), "module_requests": result.get("api_requests"), "server_lists": lists, "nodes": result["totals"]["nodes"],
                     "dra": result.get("dra")})
    all_nodes = len((client.get("/api/v1/nodes", query={"resourceVersion": "0"}) or {}).get("items") or [])
    median = statistics.median(r["seconds"] for r in runs)
    log("gpu_node_info over %d GPU nodes (%d nodes in all): median %.2fs, lists %s" % (runs[0]["nodes"], all_nodes, median, runs[0]["server_lists"]))
    slices = len((client.get("/apis/resource.k8s.io/v1/resourceslices", query={"resourceVersion": "0"}) or {}).get("items") or [])
    return {"runs": runs, "median_seconds": round(median, 2), "gpu_nodes": runs[0]["nodes"], "cluster_nodes": all_nodes, "resource_slices": slices,
            "dra_devices": (runs[0]["dra"] or {}).get("devices", 0)}


# 100 queued training jobs through Kueue on the grown cluster --------------------------------------
QUEUE_JOBS = 100
QUEUE_PODS, QUEUE_GPUS = 4, 8  # per job: 4 pods x 8 GPUs
QUEUE_TEAM = {"name": "bench-queue", "gpu_quota": 2048}  # 64 jobs' worth: 64 admitted, 36 queued on quota
QUEUE_HOLD = {"pod-complete.stage.kwok.x-k8s.io/delay": "1h"}


def queue_phase(client, env, state_dir, gpu_nodes, work):
    """Kueue's real controller on the 1000-node cluster (the launcher starts it), gpu_scheduling's
    queues (a flavor, a block/rack/host Topology, one team with 2048 GPUs), then 100 jobs of 4 pods x
    8 GPUs with topology {preferred: rack} in one training_job call (batch). Timed from the call to
    every job admitted with all its pods bound, or queued because the quota is used (64 + 36)."""
    launcher = [sys.executable, os.path.join(ROOT, "tools", "local_cluster.py"), "up", "--state-dir", state_dir, "--gpu-nodes", str(gpu_nodes)]
    started = time.monotonic()
    subprocess.run(launcher + ["--operators", "kueue"], check=True, stdout=subprocess.DEVNULL)
    log("Kueue's controller started in %.1fs" % (time.monotonic() - started))
    extra = {"gpu_scheduling_teams": [QUEUE_TEAM], "gpu_scheduling_priority_classes": [],
             "gpu_scheduling_topology_levels": ["aiinfra.cluster/topology-block", "aiinfra.cluster/topology-rack", "kubernetes.io/hostname"]}
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", "local"),
           os.path.join(ROOT, "playbooks", "platform.yml"), "--tags", "gpu_scheduling", "-e", json.dumps(extra)]
    proc = subprocess.run(cmd, env=dict(env, AIINFRA_LOCAL_CLUSTER_DIR=state_dir), cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError("gpu_scheduling failed:\n%s" % proc.stdout.decode()[-4000:])
    team = QUEUE_TEAM["name"]
    batch = [{"name": "q-%03d" % i, "namespace": team, "script": "/train.py", "nodes": QUEUE_PODS, "gpus_per_node": QUEUE_GPUS,
              "queue_name": "gpu", "topology": {"preferred": "rack"}, "pod_annotations": QUEUE_HOLD} for i in range(QUEUE_JOBS)]
    admitted_expected = QUEUE_TEAM["gpu_quota"] // (QUEUE_PODS * QUEUE_GPUS)
    before = scrape(client)
    started = time.monotonic()
    module_seconds, result = run_module("training_job", {"batch": batch, "wait": False}, env)

    def progress():
        workloads = (client.get("/apis/kueue.x-k8s.io/v1beta2/namespaces/%s/workloads" % team) or {}).get("items") or []

        def has(workload, kind, status):
            return any(c["type"] == kind and c["status"] == status for c in (workload.get("status") or {}).get("conditions") or [])

        admitted = [w for w in workloads if has(w, "Admitted", "True")]
        # Queued: no quota reserved. Kueue writes QuotaReserved=False only on the workload it
        # tried last; the ones behind it in the queue have no condition yet.
        pending = [w for w in workloads if not has(w, "QuotaReserved", "True")]
        pods = (client.get("/api/v1/namespaces/%s/pods" % team) or {}).get("items") or []
        bound = [p for p in pods if (p.get("spec") or {}).get("nodeName")]
        return len(workloads), len(admitted), len(pending), len(pods), len(bound)

    deadline = time.monotonic() + 600
    state = progress()
    while time.monotonic() < deadline:
        state = progress()
        # Settled: every admitted job has all its pods bound, and no queued job has a pod.
        if state[1] == admitted_expected and state[2] == QUEUE_JOBS - admitted_expected and state[3] == state[4] == admitted_expected * QUEUE_PODS:
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    after = scrape(client)
    by_verb = {}
    by_resource = {}
    for labels, value in after.items():
        lab = dict(labels)
        count = int(round(value - before.get(labels, 0)))
        if count <= 0 or lab.get("verb") in ("WATCH", "WATCHLIST") or not lab.get("resource"):
            continue
        by_verb[lab["verb"]] = by_verb.get(lab["verb"], 0) + count
        key = lab["resource"] + ("/" + lab["subresource"] if lab.get("subresource") else "")
        by_resource[key] = by_resource.get(key, 0) + count
    workloads, admitted, pending, pods, bound = state
    done = admitted == admitted_expected and pending == QUEUE_JOBS - admitted_expected and pods == bound == admitted_expected * QUEUE_PODS
    log("%d queued jobs: %d admitted with %d/%d pods bound, %d queued, in %.1fs (module %.1fs)%s"
        % (QUEUE_JOBS, admitted, bound, pods, pending, elapsed, module_seconds, "" if done else " (NOT settled)"))
    top = dict(sorted(by_resource.items(), key=lambda kv: -kv[1])[:8])
    return {"jobs": QUEUE_JOBS, "pods_per_job": QUEUE_PODS, "gpus_per_pod": QUEUE_GPUS, "team_quota": QUEUE_TEAM["gpu_quota"], "gpu_nodes": gpu_nodes,
            "seconds": round(elapsed, 1), "module_seconds": round(module_seconds, 1), "module_requests": result.get("api_requests"),
            "workloads": workloads, "admitted": admitted, "queued": pending, "pods": pods, "bound": bound, "settled": done,
            "admitted_expected": admitted_expected, "server_requests_by_verb": by_verb, "server_requests_top_resources": top}


# The whole embedded site ----------------------------------------------------------------------
SITE_LABEL = "whole embedded site (site.yml, inventories/local)"
# Set by the server or its controllers, not by who applies the object.
SERVER_META = ("uid", "creationTimestamp", "generation", "resourceVersion", "managedFields", "selfLink", "deletionGracePeriodSeconds")


def site_objects(result_tree):
    """(apiVersion, kind, namespace, name) of every object the collection's modules report in a
    run's results (ansible.posix.json callback output)."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            resources = node.get("resources")
            for res in resources if isinstance(resources, list) else []:
                if isinstance(res, dict) and {"apiVersion", "kind", "name"} <= set(res) and res.get("action") != "deleted":
                    found.add((res["apiVersion"], res["kind"], res.get("namespace") or "", res["name"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(result_tree)
    return sorted(found)


def site_floor(client, refs, env, work):
    """The floor of knowing that nothing changed: one `kubectl apply --server-side
    --dry-run=server` of every object the site's modules manage (as the server holds it) plus one
    `helm get values` per release."""
    resolver = ResourceResolver(client)
    docs = []
    for api_version, kind, namespace, name in refs:
        try:
            obj = client.get(resolver.resolve(api_version, kind).item_path(name, namespace or None))
        except ApiError as exc:
            if exc.status == 404:
                continue
            raise
        obj.pop("status", None)
        for key in SERVER_META:
            obj["metadata"].pop(key, None)
        docs.append(obj)
    path = os.path.join(work, "site-objects.yaml")
    with open(path, "w") as handle:
        yaml.safe_dump_all(docs, handle, sort_keys=False)
    kubectl = shutil.which("kubectl", path=env["PATH"]) or "kubectl"
    helm = shutil.which("helm", path=env["PATH"]) or "helm"
    releases = json.loads(subprocess.run([helm, "list", "-A", "-o", "json"], env=env, stdout=subprocess.PIPE, check=True).stdout or b"[]")
    commands = [[kubectl, "apply", "--server-side", "--dry-run=server", "--force-conflicts", "--field-manager=aiinfra.cluster", "-f", path]]
    commands += [[helm, "get", "values", rel["name"], "-n", rel["namespace"], "-o", "json"] for rel in releases]
    started = time.monotonic()
    for cmd in commands:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            raise RuntimeError("%s failed:\n%s" % (" ".join(cmd), proc.stdout.decode()[-2000:]))
    seconds = time.monotonic() - started
    log("site floor: kubectl dry-run apply of %d objects + helm get values of %d releases: %.1fs" % (len(docs), len(releases), seconds))
    return {"seconds": round(seconds, 2), "objects": len(docs), "releases": len(releases)}


def site_phase(work, env, state_dir):
    """site.yml from the checkout with inventories/local, on a control plane of its own (its
    DaemonSets must not meet the 1000 nodes of gpu_node_info): first run, the no-op re-run,
    one more re-run through the json callback to learn which objects it manages, then the floor."""
    launcher = [sys.executable, os.path.join(ROOT, "tools", "local_cluster.py")]
    subprocess.run(launcher + ["up", "--state-dir", state_dir], check=True, stdout=subprocess.DEVNULL)
    kubeconfig = os.path.join(state_dir, "kubeconfig")
    # The post-renderer points the charts' webhooks at the controllers of this control plane's
    # state directory (AIINFRA_LOCAL_CLUSTER_DIR), not at the workload phases' one.
    senv = dict(env, K8S_AUTH_KUBECONFIG=kubeconfig, KUBECONFIG=kubeconfig, AIINFRA_LOCAL_CLUSTER_DIR=state_dir)
    senv.pop("AIINFRA_REPO_DIR", None)
    client = KubeClient(config_from_params({"kubeconfig": kubeconfig}), timeout=120)
    site = os.path.join(ROOT, "site.yml")
    result = {"key": "site", "label": SITE_LABEL}
    try:
        scrapes = {}
        for run in ("first", "rerun"):
            before = scrape(client)
            elapsed, changed = run_tool("site", site, senv, ROOT)
            scrapes[run] = (before, scrape(client))
            result[run] = {"seconds": round(elapsed, 2), "tasks_changed": changed}
            log("%-40s %-5s %6.1fs  changed tasks %s" % (SITE_LABEL, run, elapsed, changed))
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", "local"), site]
        proc = subprocess.run(cmd, cwd=ROOT, env=dict(senv, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"), stdout=subprocess.PIPE, check=True)
        refs = site_objects(json.loads(proc.stdout.decode()))
        plurals = set(ResourceResolver(client).resolve(a, k).plural for a, k, _n, _m in refs)
        for run, (before, after) in scrapes.items():
            requests = classify(before, after, plurals)
            result[run]["requests"] = requests
            result[run]["writes_per_object"] = round(float(requests["writes"]) / max(len(refs), 1), 2)
        result["objects"] = len(refs)
        result["floor"] = site_floor(client, refs, senv, work)
        result["ratio_rerun_floor"] = round(result["rerun"]["seconds"] / result["floor"]["seconds"], 2)
        log("%s: re-run %.1fs = %.1fx the floor" % (SITE_LABEL, result["rerun"]["seconds"], result["ratio_rerun_floor"]))
    finally:
        client.close()
        subprocess.run(launcher + ["down", "--state-dir", state_dir], check=False, stdout=subprocess.DEVNULL)
    return result


# Report -----------------------------------------------------------------------------------------
def versions(env):
    def out(cmd):
        try:
            return subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False).stdout.decode().strip()
        except OSError:
            return "n/a"

    kubectl = shutil.which("kubectl", path=env["PATH"]) or "kubectl"
    client_version = json.loads(out([kubectl, "version", "--client", "-o", "json"]) or "{}").get("clientVersion", {}).get("gitVersion")
    galaxy = {}
    for coll in ("kubernetes/core",):
        for base in sys.path:
            manifest = os.path.join(base, "ansible_collections", coll, "MANIFEST.json")
            if os.path.exists(manifest):
                with open(manifest) as handle:
                    galaxy[coll.replace("/", ".")] = json.load(handle)["collection_info"]["version"]
                break
    import ansible
    import kubernetes

    return {
        "kubectl": client_version,
        "ansible-core": ansible.__version__,
        "kubernetes.core": galaxy.get("kubernetes.core"),
        "kubernetes (python)": kubernetes.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", help="local control plane state dir (to grow it to --gpu-nodes); default: use K8S_AUTH_KUBECONFIG as is")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs"))
    parser.add_argument("--gpu-nodes", type=int, default=1000)
    parser.add_argument("--skip", action="append", default=[], choices=[p[0] for p in PHASES] + ["gpu_node_info", "queue", "site"])
    opts = parser.parse_args(argv)
    kubeconfig = os.environ.get("K8S_AUTH_KUBECONFIG")
    if not kubeconfig or not os.path.exists(kubeconfig):
        parser.error("K8S_AUTH_KUBECONFIG must point at the control plane's kubeconfig")
    client = KubeClient(config_from_params({"kubeconfig": kubeconfig}), timeout=120)
    work = tempfile.mkdtemp(prefix="aiinfra-bench-")
    env = tool_env(work, kubeconfig)
    report = {"started": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()), "versions": versions(env), "phases": []}
    report["load_average"] = {"start": round(os.getloadavg()[0], 1)}
    started = time.monotonic()
    created = []
    try:
        report["ansible_floor_seconds"] = ansible_floor(work, env)
        nvidia_runtime_class(client)
        created.append(warm_up(work, env))
        for key, label, fname, prefix, kind in PHASES:
            if key in opts.skip:
                continue
            result, objects = run_phase(client, key, label, fname, prefix, kind, work, env)
            report["phases"].append(result)
            created.append((objects, prefix))
        cleanup(client, created)
        created = []
        if "gpu_node_info" not in opts.skip:
            if opts.state_dir:
                grow_nodes(opts.state_dir, opts.gpu_nodes)
            report["gpu_node_info"] = gpu_node_info_at_scale(client, env)
            if "queue" not in opts.skip and opts.state_dir:
                report["queue"] = queue_phase(client, env, opts.state_dir, opts.gpu_nodes, work)
        if "site" not in opts.skip:
            report["site"] = site_phase(work, env, os.path.join(work, "site-cluster"))
    finally:
        if created:
            cleanup(client, created)
        shutil.rmtree(work, ignore_errors=True)
    report["seconds"] = round(time.monotonic() - started, 1)
    report["load_average"]["end"] = round(os.getloadavg()[0], 1)
    os.makedirs(opts.out, exist_ok=True)
    with open(os.path.join(HERE, "results.json"), "w") as handle:
        json.dump(report, handle, indent=1, sort_keys=True)
    import report as render

    render.write(report, opts.out)
    log("done in %.0fs; results in %s and %s" % (report["seconds"], os.path.join(HERE, "results.json"), opts.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
