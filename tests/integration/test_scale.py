"""Request budgets that keep the collection fast at scale, checked against the real control plane.

The gpu_node_info check at scale starts its own control plane with AIINFRA_SCALE_NODES (default
1000) simulated GPU nodes and no CRDs, about 50 s on 2 cores, and brings it down afterwards;
AIINFRA_SCALE_NODES=0 skips it. tools/benchmark/run.sh measures the same on the benchmark's cluster."""

import math
import os
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    count = int(os.environ.get("AIINFRA_SCALE_NODES", "1000") or 0)
    if not count:
        pytest.skip("AIINFRA_SCALE_NODES=0: no separate control plane with many GPU nodes")
    with control_plane("aiinfra-scale-", "--gpu-nodes", str(count), "--crds-dir", "", "--no-operators") as state:
        yield count, os.path.join(state, "kubeconfig")


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
