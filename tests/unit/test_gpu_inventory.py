from ansible_collections.aiinfra.cluster.plugins.module_utils import gpu_inventory
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


def dra_slice(node, products, driver="gpu.nvidia.com"):
    devices = [{"name": "gpu-%d" % i, "attributes": {"type": {"string": "gpu"}, "productName": {"string": p}},
                "capacity": {"memory": {"value": "141Gi"}}} for i, p in enumerate(products)]
    devices.append({"name": "gpu-0-mig-1g10gb-19-0", "attributes": {"type": {"string": "mig"}, "productName": {"string": products[0]}}})
    return {"spec": {"driver": driver, "nodeName": node, "pool": {"name": node}, "devices": devices}}


def claim(*allocated):
    return {"status": {"allocation": {"devices": {"results": [
        {"driver": driver, "pool": pool, "device": device, "request": "gpu"} for driver, pool, device in allocated]}}}}


def test_dra_devices_per_node_and_product_with_claims():
    slices = [dra_slice("dra-0", ["NVIDIA H200"] * 2), dra_slice("dra-1", ["NVIDIA H100 80GB HBM3"]),
              dra_slice("other", ["x"], driver="example.com")]
    claims = [claim(("gpu.nvidia.com", "dra-0", "gpu-1")), claim(("example.com", "dra-1", "gpu-0")), {"status": {}}]
    per_node = gpu_inventory.summarize_dra(slices, claims)
    # MIG devices and other drivers are not full GPUs of this driver.
    assert per_node == {
        "dra-0": {"devices": 2, "allocated": 1, "free": 1, "products": {"NVIDIA H200": {"devices": 2, "allocated": 1, "free": 1}}},
        "dra-1": {"devices": 1, "allocated": 0, "free": 1, "products": {"NVIDIA H100 80GB HBM3": {"devices": 1, "allocated": 0, "free": 1}}},
    }
    # A node without device-plugin GPUs but with DRA devices is a GPU node; totals cover the report.
    ready = {"capacity": {}, "allocatable": {}, "conditions": [{"type": "Ready", "status": "True"}]}
    nodes = [{"metadata": {"name": n, "labels": {}}, "status": ready} for n in ("dra-0", "dra-1", "cpu")]
    report = gpu_inventory.summarize_inventory(nodes, [], dra_nodes=per_node)
    assert [n["name"] for n in report["nodes"]] == ["dra-0", "dra-1"]
    assert report["dra"] == {"driver": "gpu.nvidia.com", "nodes": 2, "devices": 3, "allocated": 1, "free": 2,
                             "products": {"NVIDIA H200": {"devices": 2, "allocated": 1, "free": 1},
                                          "NVIDIA H100 80GB HBM3": {"devices": 1, "allocated": 0, "free": 1}}}
    assert "dra" not in gpu_inventory.summarize_inventory(nodes, [])
