from ansible_collections.aiinfra.cluster.plugins.module_utils.gpu_inventory import pod_gpu_requests, summarize_inventory


def node(name, gpus=0, product=None, ready=True, unschedulable=False, mig=None):
    labels = {"kubernetes.io/hostname": name}
    cap = {"cpu": "32"}
    if gpus:
        cap["nvidia.com/gpu"] = str(gpus)
        labels.update({"nvidia.com/gpu.product": product, "nvidia.com/gpu.memory": "81559", "nvidia.com/gpu.count": str(gpus)})
    cap.update(mig or {})
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {"capacity": cap, "allocatable": dict(cap), "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def pod(node_name, gpus, phase="Running", init_gpus=0, use_limits=False):
    res = {"limits": {"nvidia.com/gpu": str(gpus)}} if use_limits else {"requests": {"nvidia.com/gpu": str(gpus)}}
    spec = {"nodeName": node_name, "containers": [{"name": "c", "resources": res}, {"name": "sidecar"}]}
    if init_gpus:
        spec["initContainers"] = [{"name": "i", "resources": {"limits": {"nvidia.com/gpu": str(init_gpus)}}}]
    return {"spec": spec, "status": {"phase": phase}}


def test_pod_requests_follow_scheduler_rules():
    assert pod_gpu_requests(pod("n", 2)) == {"nvidia.com/gpu": 2}
    assert pod_gpu_requests(pod("n", 1, use_limits=True)) == {"nvidia.com/gpu": 1}
    # An init container needing more than all app containers together sets the request.
    assert pod_gpu_requests(pod("n", 1, init_gpus=4)) == {"nvidia.com/gpu": 4}


def test_summary_counts_requested_and_free_per_product():
    nodes = [node("g0", 8, "H100"), node("g1", 8, "H100"), node("a0", 4, "A100"), node("cpu", 0)]
    pods = [pod("g0", 2), pod("g0", 1), pod("a0", 4), pod("g1", 8, phase="Succeeded"), pod("cpu", 0)]
    out = summarize_inventory(nodes, pods)
    assert [n["name"] for n in out["nodes"]] == ["a0", "g0", "g1"]
    g0 = [n for n in out["nodes"] if n["name"] == "g0"][0]
    assert (g0["gpu_capacity"], g0["gpu_requested"], g0["gpu_free"]) == (8, 3, 5)
    assert out["totals"] == {"nodes": 3, "gpu_capacity": 20, "gpu_allocatable": 20, "gpu_requested": 7, "gpu_free": 13}
    assert out["products"]["H100"]["gpu_free"] == 13
    assert out["products"]["A100"]["gpu_free"] == 0


def test_filters_schedulable_and_cpu_nodes():
    nodes = [node("g0", 8, "H100"), node("g1", 8, "H100", unschedulable=True), node("g2", 8, "H100", ready=False), node("cpu")]
    out = summarize_inventory(nodes, [], only_schedulable=True)
    assert [n["name"] for n in out["nodes"]] == ["g0"]
    out = summarize_inventory(nodes, [], only_gpu_nodes=False)
    assert len(out["nodes"]) == 4
    assert [n["schedulable"] for n in out["nodes"]] == [True, True, False, False]


def test_mig_resources_are_reported():
    nodes = [node("m0", 0, mig={"nvidia.com/mig-1g.10gb": "7"})]
    nodes[0]["metadata"]["labels"]["nvidia.com/gpu.product"] = "NVIDIA-A100-SXM4-80GB-MIG-1g.10gb"
    p = {"spec": {"nodeName": "m0", "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/mig-1g.10gb": "2"}}}]}, "status": {"phase": "Running"}}
    out = summarize_inventory(nodes, [p])
    assert out["nodes"][0]["mig"] == {"nvidia.com/mig-1g.10gb": {"capacity": 7, "allocatable": 7, "requested": 2}}
