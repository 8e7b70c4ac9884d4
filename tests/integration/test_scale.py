"""Request budgets that keep the collection fast at scale, checked against the real control plane.

The checks at scale start their own control plane with AIINFRA_SCALE_NODES (default 1000)
simulated GPU nodes in topology blocks, no third-party CRDs and Kueue's controller, about 50 s on
2 cores, and bring it down afterwards; AIINFRA_SCALE_NODES=0 skips them. gpu_node_info's request
budget is checked there, and Kueue's all-or-nothing, topology-aware admission and its reclaim of
borrowed GPUs, through gpu_scheduling's queues and training_job. tools/benchmark/run.sh measures
the same on the benchmark's cluster."""

import json
import math
import os
import subprocess
import sys
import time

import pytest
import yaml

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params
from polling import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UPSTREAM_CHARTS = os.environ.get("AIINFRA_CHARTS_DIR", os.path.join(os.path.dirname(ROOT), "shared", "charts"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import local_cluster  # noqa: E402  pylint: disable=wrong-import-position

# The big cluster's fabric: 4 nodes per rack, 4 racks per block (a block: 16 nodes, 128 GPUs).
RACK_NODES, BLOCK_RACKS = 4, 4


def configmaps(ns, count, value="1"):
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-%d" % i, "namespace": ns}, "data": {"v": value}} for i in range(count)]


def test_rerun_of_listed_objects_sends_no_write(module_runner, namespace, getter):
    """Objects of one kind in one namespace are read with one list; list items carry no
    apiVersion/kind, which once made every re-run re-apply them."""
    objs = configmaps(namespace, 6) + [
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "%s-%s" % (namespace, n)}, "value": v}
        for n, v in (("high", 1000), ("low", 10))
    ]
    try:
        first = module_runner("resources", {"definitions": objs, "wait": False})
        assert first["changed"] and all(r["action"] == "created" for r in first["resources"]), first
        # One write per object; the dry-run of the bundle comes first and stores nothing.
        assert first["api_requests"]["PATCH"] == 2 * len(objs), first["api_requests"]

        again = module_runner("resources", {"definitions": objs, "wait": False})
        assert not again["changed"], again
        # Two lists (ConfigMaps in the namespace, PriorityClasses), no write.
        assert again["api_requests"] == {"GET": 2}, again["api_requests"]
        assert getter("v1", "ConfigMap", "cm-5", namespace)["data"] == {"v": "1"}
    finally:
        module_runner("resources", {"definitions": objs[-2:], "state": "absent", "wait": False})


@pytest.mark.upstream
def test_batch_is_one_module_run(module_runner, namespace, getter):
    items = [{"name": "svc-%d" % i, "namespace": namespace, "peer_authentication": {"mode": "STRICT"}, "selector": {"app": "svc-%d" % i}} for i in range(5)]
    first = module_runner("istio_policy", {"batch": items, "wait": False})
    assert first["changed"] and len(first["batch"]) == 5, first
    assert [r["resources"][0]["action"] for r in first["batch"]] == ["created"] * 5
    # One run, one connection: the elements share one list of the namespace's PeerAuthentications,
    # then one write per object.
    assert first["api_requests"] == {"GET": 1, "PATCH": 5}, first["api_requests"]
    assert getter("security.istio.io/v1", "PeerAuthentication", "svc-4", namespace)["spec"]["mtls"] == {"mode": "STRICT"}

    again = module_runner("istio_policy", {"batch": items, "wait": False})
    assert not again["changed"] and again["api_requests"] == {"GET": 1}, again

    # Every element is validated like the module's own options before anything is sent.
    fresh = dict(items[0], name="fresh")
    bad = module_runner("istio_policy", {"batch": [fresh, {"name": "broken", "namespace": namespace}], "wait": False})
    assert bad["failed"] and "one of the following is required" in bad["msg"] and "found in batch" in bad["msg"], bad
    assert getter("security.istio.io/v1", "PeerAuthentication", "fresh", namespace) is None

    beside = module_runner("istio_policy", {"batch": items, "name": "x", "wait": False})
    assert beside["failed"] and "option batch: set name in each element" in beside["msg"], beside

    gone = module_runner("istio_policy", {"batch": items, "state": "absent", "wait": False})
    assert gone["changed"] and all(r["resources"][0]["action"] == "deleted" for r in gone["batch"]), gone
    left = getter("security.istio.io/v1", "PeerAuthentication", "svc-0", namespace)
    # Foreground deletion without waiting: the object may still be there, marked for deletion.
    assert left is None or left["metadata"].get("deletionTimestamp"), left


def test_gpu_node_info_pages_not_per_node(module_runner, kube):
    """Requests grow with pages, not nodes: a page size of 2 over N nodes is ceil(N/2) node
    lists, ceil(S/2) lists of the S DRA ResourceSlices, one claim list and one pod list."""
    nodes = len(kube.get("/api/v1/nodes")["items"])
    slices = len(kube.get("/apis/resource.k8s.io/v1/resourceslices", query={"fieldSelector": "spec.driver=gpu.nvidia.com"})["items"])
    assert slices, "the local control plane publishes a ResourceSlice per simulated GPU node"
    result = module_runner("gpu_node_info", {"page_size": 2, "only_gpu_nodes": False})
    assert result["totals"]["nodes"] == nodes
    assert result["api_requests"] == {"GET": int(math.ceil(nodes / 2.0)) + int(math.ceil(slices / 2.0)) + 2}, result["api_requests"]
    assert result["dra"]["devices"] == 8 * slices, result["dra"]


@pytest.fixture(scope="module")
def big_cluster(control_plane):
    """AIINFRA_SCALE_NODES (default 1000) simulated 8-GPU nodes in topology blocks of 16 (4 racks
    of 4 nodes), no third-party CRDs, no controllers yet (the `queues` fixture starts Kueue on it
    after the timed gpu_node_info check)."""
    count = int(os.environ.get("AIINFRA_SCALE_NODES", "1000") or 0)
    if not count:
        pytest.skip("AIINFRA_SCALE_NODES=0: no separate control plane with many GPU nodes")
    with control_plane("aiinfra-scale-", *(big_cluster_args(count) + ["--no-operators"])) as state:
        yield count, os.path.join(state, "kubeconfig")


def big_cluster_args(count):
    return ["--gpu-nodes", str(count), "--nodes-per-rack", str(RACK_NODES), "--racks-per-block", str(BLOCK_RACKS), "--crds-dir", ""]


def test_gpu_node_info_1000_nodes(module_runner, big_cluster):
    count, kubeconfig = big_cluster
    module_runner("gpu_node_info", {"kubeconfig": kubeconfig, "count_requests": False})  # warm the API server's caches
    started = time.monotonic()
    result = module_runner("gpu_node_info", {"kubeconfig": kubeconfig})
    elapsed = time.monotonic() - started
    assert result["totals"]["nodes"] == count and result["totals"]["gpu_capacity"] == 8 * count, result["totals"]
    # Every GPU also published as a DRA device (one ResourceSlice per node).
    assert result["dra"]["devices"] == 8 * count and result["dra"]["nodes"] == count, result["dra"]
    # At most one list per 500 objects of each kind: node pages (count + the CPU node), ResourceSlice
    # pages (one per GPU node), one ResourceClaim list and one pod list.
    assert result["api_requests"]["GET"] <= int(math.ceil((count + 1) / 500.0)) + int(math.ceil(count / 500.0)) + 2, result["api_requests"]
    assert elapsed < 2.0, "gpu_node_info over %d nodes took %.2fs" % (count, elapsed)


# The preflight over the big cluster (before Kueue starts there), with the helpers of test_preflight_cluster.
from test_preflight_cluster import PREFLIGHT_LISTS, REVIEWS, WRITES, delta, preflight, rows, scrape  # noqa: E402  pylint: disable=wrong-import-position


def test_preflight_1000_nodes_benchmark_workload(big_cluster, tmp_path):
    """The benchmark's workload inventory (tools/benchmark/workload.py: ~150 objects through the
    workload roles) on 1000 simulated 8-GPU nodes: seconds, and a few list requests per kind."""
    count, kubeconfig = big_cluster
    sys.path.insert(0, os.path.join(ROOT, "tools", "benchmark"))
    import workload  # pylint: disable=import-outside-toplevel

    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {
        "k8s_control": {"hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}))
    (inventory / "group_vars" / "k8s_control.yml").write_text(yaml.safe_dump(workload.roles_inventory("pf")))
    from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params

    big = KubeClient(config_from_params({"kubeconfig": kubeconfig}))
    preflight(kubeconfig, "-e", "aiinfra_preflight=warn", inventory=str(inventory), tmp_path=tmp_path)  # warm the caches
    before = scrape(big)
    started = time.monotonic()
    rc, _data, report = preflight(kubeconfig, "-e", "aiinfra_preflight=warn", inventory=str(inventory), tmp_path=tmp_path)
    wall = time.monotonic() - started
    requests = delta(before, scrape(big))
    big.close()
    assert rc == 0, report
    print("\n".join(report["table"]))
    print("preflight over %d nodes: %.2fs in the task, %.2fs for ansible-playbook; %s" % (count, report["duration_s"], wall, report["api_requests"]))
    assert report["duration_s"] < 5.0, report["duration_s"]
    capacity = rows(report, "gpu capacity")
    assert capacity and all(r[2] == "ok" and "%d NVIDIA-H100-80GB-HBM3 nodes" % count in r[3] for r in capacity), capacity
    # No CRDs on this control plane: the workloads' kinds pass only because the run installs them;
    # Istio, which no role installs, is missing (a warning: mesh_security_require_istio is false).
    assert rows(report, "crds", "ok") and all("installed by this run" in r[3] for r in rows(report, "crds", "ok")), report["table"]
    assert [r[1] for r in rows(report, "crds", "warn")] == ["authorizationpolicies.security.istio.io"], report["table"]
    # The kinds the preflight reads (the counters also hold the controllers' own lists, of pods say).
    lists = dict((k[1], v) for k, v in requests.items() if k[0] == "LIST" and k[1] in PREFLIGHT_LISTS)
    print("list requests per kind: %s" % lists)
    assert lists.get("nodes", 0) <= (count + 1) // 500 + 1, lists
    assert all(v <= 3 for k, v in lists.items() if k != "nodes"), lists
    assert report["api_requests"]["GET"] <= len(PREFLIGHT_LISTS) + (count + 1) // 500 + 2, report["api_requests"]
    # KWOK keeps patching 1000 nodes meanwhile (their status and heartbeats); anything else written is not background.
    writes = dict((k, v) for k, v in requests.items() if k[0] in WRITES and k[1] not in REVIEWS + ("leases", "events") and not k[2]
                  and k != ("PATCH", "nodes", ""))
    assert writes == {}, writes
    assert set(report["api_requests"]) == {"GET", "POST"} and report["api_requests"]["POST"] == sum(
        v for k, v in requests.items() if k[1] == "selfsubjectrulesreviews"), (report["api_requests"], requests)


# Kueue at scale: gpu_scheduling's queues on the big cluster, jobs through training_job ------------
QUEUE_PRODUCT = "NVIDIA-H200"  # the flavor's nodes: 2 blocks added beside the 1000 H100 nodes
QUEUE_NODES = 2 * RACK_NODES * BLOCK_RACKS
TEAMS = [{"name": "kq-a", "gpu_quota": 128, "borrowing_limit": 64}, {"name": "kq-b", "gpu_quota": 128}]
# A Job's simulated pods keep their GPUs this long (tools/kwok-stages/pod-complete.yaml).
HOLD = {"pod-complete.stage.kwok.x-k8s.io/delay": "1h"}


def _play(kubeconfig, extra_vars, *args):
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=kubeconfig, AIINFRA_LOCAL_CLUSTER_DIR=os.path.dirname(kubeconfig), ANSIBLE_NOCOLOR="1")
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", "local"),
           os.path.join(ROOT, "playbooks", "platform.yml"), "--tags", "gpu_scheduling", "-e", json.dumps(extra_vars)] + list(args)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=900, check=False)
    return proc.returncode, proc.stdout.decode()


@pytest.fixture(scope="module")
def queues(big_cluster):
    """Two blocks of H200 nodes (built by the launcher's own function) beside the 1000 H100 nodes,
    and gpu_scheduling with Kueue: an H200 flavor with a block/rack/host Topology, two teams'
    ClusterQueues in one cohort (kq-a may borrow 64 GPUs), LocalQueues `gpu`."""
    count, kubeconfig = big_cluster
    if not os.path.isdir(UPSTREAM_CHARTS):
        pytest.skip("needs the Kueue chart (../shared/charts) to run Kueue")
    # Kueue's real controller on the running cluster (`up` again starts what is missing); without
    # third-party CRDs the launcher applies the chart's Kueue CRDs first.
    state = os.path.dirname(kubeconfig)
    up = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "local_cluster.py"), "up", "--state-dir", state] + big_cluster_args(count)
                        + ["--operators", "kueue"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ, AIINFRA_LOCAL_CLUSTER_DIR=state),
                        timeout=600, check=False)
    assert up.returncode == 0 and b"controller kueue healthy" in up.stdout, up.stdout.decode()[-3000:]
    kube = KubeClient(config_from_params({"kubeconfig": kubeconfig}))
    names = []
    for index in range(QUEUE_NODES):
        name = "h200-%d" % index
        # Indices on whole blocks, far above the H100 nodes' racks and blocks.
        node = local_cluster.LocalCluster.node_manifest(name, 8, QUEUE_PRODUCT, False, 4096 + index, topology=(RACK_NODES, BLOCK_RACKS))
        kube.request("POST", "/api/v1/nodes", body=node)
        names.append(name)
    _wait("the H200 nodes ready and untainted", lambda: all(_ready(kube, n) for n in names), 180)
    extra = {"gpu_scheduling_teams": TEAMS, "gpu_scheduling_cohort": "kq", "gpu_scheduling_flavors": [{"name": "h200", "product": QUEUE_PRODUCT}],
             "gpu_scheduling_topology_levels": ["aiinfra.cluster/topology-block", "aiinfra.cluster/topology-rack", "kubernetes.io/hostname"]}
    rc, out = _play(kubeconfig, extra)
    assert rc == 0, out[-4000:]
    # The queues as the role left them, reconciled by the real controller.
    for team in TEAMS:
        cq = kube.get("/apis/kueue.x-k8s.io/v1beta2/clusterqueues/%s" % team["name"])
        active = [c for c in (cq.get("status") or {}).get("conditions") or [] if c["type"] == "Active"]
        assert active and active[0]["status"] == "True", cq.get("status")
    rc, again = _play(kubeconfig, extra)
    recap = [line for line in again.splitlines() if line.startswith("localhost")][-1]
    assert rc == 0 and "changed=0" in recap, again[-3000:]
    yield kube, kubeconfig
    kube.close()


def _ready(kube, name):
    """Ready, and the not-ready taint a new node is created with lifted (the scheduler and Kueue's
    topology-aware scheduling leave a tainted node out)."""
    try:
        node = kube.get("/api/v1/nodes/%s" % name)
    except ApiError:
        return False
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions") or [])
    return ready and not any(t["key"] == "node.kubernetes.io/not-ready" for t in node["spec"].get("taints") or [])


def _job(kubeconfig, name, team, nodes, **extra):
    args = {"kubeconfig": kubeconfig, "name": name, "namespace": team, "script": "/train.py", "nodes": nodes, "gpus_per_node": 8,
            "queue_name": "gpu", "wait": False}
    args.update(extra)
    return args


def _workload(kube, team, job):
    uid = kube.get("/apis/batch/v1/namespaces/%s/jobs/%s" % (team, job))["metadata"]["uid"]
    items = kube.get("/apis/kueue.x-k8s.io/v1beta2/namespaces/%s/workloads" % team, query={"labelSelector": "kueue.x-k8s.io/job-uid=" + uid})["items"]
    return items[0] if items else None


def _condition(obj, kind):
    return next((c for c in ((obj or {}).get("status") or {}).get("conditions") or [] if c["type"] == kind), {})


def _wait(what, check, timeout=90):
    return wait_until(what, check, timeout, interval=1)


def _pods(kube, team, job):
    return kube.get("/api/v1/namespaces/%s/pods" % team, query={"labelSelector": "batch.kubernetes.io/job-name=" + job})["items"]


def _blocks_of(kube, pods):
    listed = kube.get("/api/v1/nodes", query={"labelSelector": "nvidia.com/gpu.product=" + QUEUE_PRODUCT})["items"]
    nodes = dict((n["metadata"]["name"], n["metadata"]["labels"]) for n in listed)
    return set(nodes[p["spec"]["nodeName"]]["aiinfra.cluster/topology-block"] for p in pods if p["spec"].get("nodeName"))


def _delete_jobs(kube, team, *jobs):
    for job in jobs:
        for path in ("/apis/batch/v1/namespaces/%s/jobs/%s" % (team, job), "/api/v1/namespaces/%s/configmaps/%s-training-record" % (team, job)):
            try:
                kube.delete(path, body={"propagationPolicy": "Background"})
            except ApiError:
                pass


@pytest.mark.upstream
def test_topology_required_block_admits_all_or_nothing(module_runner, queues):
    """8 pods x 8 GPUs with topology {required: block}: admitted only when one block has 64 free
    GPUs, every pod then in that block; until then the Job is suspended with no pod (no GPU
    held), though the flavor has 64 free GPUs spread over two blocks."""
    kube, kubeconfig = queues
    try:
        # 96 GPUs in each block (12 pods each, held): 32 free in each block, 64 in all.
        for name, team in (("fill-a", "kq-a"), ("fill-b", "kq-b")):
            result = module_runner("training_job", _job(kubeconfig, name, team, 12, topology={"required": "block"}, pod_annotations=HOLD))
            assert result["changed"], result

        def running(name, team):
            pods = _pods(kube, team, name)
            return pods if len([p for p in pods if p["status"].get("phase") == "Running"]) == 12 else None

        filled = [_wait("%s running" % n, lambda n=n, t=t: running(n, t)) for n, t in (("fill-a", "kq-a"), ("fill-b", "kq-b"))]
        assert [len(_blocks_of(kube, pods)) for pods in filled] == [1, 1]
        assert _blocks_of(kube, filled[0]) != _blocks_of(kube, filled[1])

        # 64 GPUs in one block: no block has them. Queued, nothing created; the wait says why.
        waited = module_runner("training_job", _job(kubeconfig, "big", "kq-a", 8, topology={"required": "block"}, wait=True, wait_timeout=8))
        assert waited["failed"] and "queued in LocalQueue gpu" in waited["msg"], waited["msg"]
        workload = _workload(kube, "kq-a", "big")
        assert _condition(workload, "QuotaReserved").get("status") == "False", workload.get("status")
        assert "topology" in _condition(workload, "QuotaReserved").get("message", "").lower(), workload["status"]
        assert kube.get("/apis/batch/v1/namespaces/kq-a/jobs/big")["spec"]["suspend"] is True
        assert _pods(kube, "kq-a", "big") == []

        # Capacity frees in one block: admitted there, all 8 pods in that block.
        freed = _blocks_of(kube, filled[1])
        _delete_jobs(kube, "kq-b", "fill-b")
        _wait("big admitted", lambda: _condition(_workload(kube, "kq-a", "big"), "Admitted").get("status") == "True", 120)
        pods = _wait("big's 8 pods placed", lambda: [p for p in _pods(kube, "kq-a", "big") if p["spec"].get("nodeName")] if len(
            [p for p in _pods(kube, "kq-a", "big") if p["spec"].get("nodeName")]) == 8 else None)
        assert _blocks_of(kube, pods) == freed, [p["spec"]["nodeName"] for p in pods]
    finally:
        _delete_jobs(kube, "kq-a", "fill-a", "big")
        _delete_jobs(kube, "kq-b", "fill-b")


@pytest.mark.upstream
def test_borrowed_gpus_are_reclaimed_by_the_lending_team(module_runner, queues):
    """kq-a borrows idle GPUs of kq-b (160 of its 128 + 64); when kq-b submits a job for its own
    quota at a higher priority, Kueue preempts kq-a's job (visible in its Workload) and admits
    kq-b's."""
    kube, kubeconfig = queues
    _wait("no workloads left from other tests", lambda: not any(
        _condition(w, "Admitted").get("status") == "True"
        for team in ("kq-a", "kq-b") for w in kube.get("/apis/kueue.x-k8s.io/v1beta2/namespaces/%s/workloads" % team)["items"]), 120)
    try:
        assert module_runner("training_job", _job(kubeconfig, "borrow", "kq-a", 20, pod_annotations=HOLD, workload_priority_class="gpu-preemptible"))["changed"]
        _wait("borrow admitted", lambda: _condition(_workload(kube, "kq-a", "borrow"), "Admitted").get("status") == "True")

        def gpu_usage():  # the ClusterQueue's status follows the admission a moment later
            usage = kube.get("/apis/kueue.x-k8s.io/v1beta2/clusterqueues/kq-a").get("status", {}).get("flavorsUsage") or []
            found = [r for f in usage if f["name"] == "h200" for r in f["resources"] if r["name"] == "nvidia.com/gpu"]
            return found[0] if found and found[0]["total"] != "0" else None

        gpus = _wait("kq-a's usage reported", gpu_usage, 60)
        assert gpus["total"] == "160" and gpus["borrowed"] == "32", gpus

        assert module_runner("training_job", _job(kubeconfig, "reclaim", "kq-b", 16, pod_annotations=HOLD, workload_priority_class="gpu-training"))["changed"]
        _wait("reclaim admitted", lambda: _condition(_workload(kube, "kq-b", "reclaim"), "Admitted").get("status") == "True", 120)
        preempted = _workload(kube, "kq-a", "borrow")
        assert _condition(preempted, "Preempted").get("status") == "True", preempted["status"]
        assert _condition(preempted, "Preempted").get("reason") == "InCohortReclamation", preempted["status"]
        assert _condition(preempted, "Admitted").get("status") != "True"
        assert kube.get("/apis/batch/v1/namespaces/kq-a/jobs/borrow")["spec"]["suspend"] is True
    finally:
        _delete_jobs(kube, "kq-a", "borrow")
        _delete_jobs(kube, "kq-b", "reclaim")
