"""The local control plane really runs workloads: the real scheduler binds pods to simulated
GPU nodes (GPU requests, node selectors, taints) and KWOK runs them to Running / Succeeded."""

import time

from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import path_quote


def wait_until(check, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("condition not met in %ss" % timeout)


def pods(kube, ns, selector):
    return kube.get("/api/v1/namespaces/%s/pods" % ns, query={"labelSelector": selector})["items"]


def test_gpu_nodes_are_simulated_with_gfd_labels(kube):
    nodes = kube.get("/api/v1/nodes", query={"labelSelector": "nvidia.com/gpu.present=true"})["items"]
    assert len(nodes) >= 4
    for node in nodes:
        labels = node["metadata"]["labels"]
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == labels["nvidia.com/gpu.count"] == "8"
        assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        assert labels["nvidia.com/gpu.memory"] == "81559"
        assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


def test_daemonset_lands_only_on_selected_gpu_nodes(module_runner, kube, namespace):
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"nodeSelector": {"nvidia.com/gpu.present": "true"}, "containers": [{"name": "a", "image": "registry.local/agent:1"}]},
            },
        },
    }
    result = module_runner("resources", {"definitions": [ds]})
    assert not result.get("failed"), result
    placed = pods(kube, namespace, "app=agent")
    gpu_nodes = set(n["metadata"]["name"] for n in kube.get("/api/v1/nodes", query={"labelSelector": "nvidia.com/gpu.present=true"})["items"])
    assert set(p["spec"]["nodeName"] for p in placed) == gpu_nodes
    assert all(p["status"]["phase"] == "Running" for p in placed)


def test_job_completes(module_runner, namespace):
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once", "namespace": namespace},
        "spec": {
            "completions": 2,
            "parallelism": 2,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "registry.local/job:1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
                }
            },
        },
    }
    result = module_runner("resources", {"definitions": [job], "wait_timeout": 120})
    assert not result.get("failed"), result
    assert result["resources"][0]["object"]["status"]["succeeded"] == 2


def test_scheduler_respects_gpu_capacity_and_taints(module_runner, kube, namespace, gpu_pool):
    product, (free_node, tainted_node) = gpu_pool(2)
    taint = [{"key": "maintenance", "value": "true", "effect": "NoSchedule"}]
    kube.request("PATCH", "/api/v1/nodes/%s" % path_quote(tainted_node), body={"spec": {"taints": taint}}, content_type="application/merge-patch+json")
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "full", "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "full"}},
            "template": {
                "metadata": {"labels": {"app": "full"}},
                "spec": {
                    "nodeSelector": {"nvidia.com/gpu.product": product},
                    "containers": [{"name": "c", "image": "registry.local/train:1", "resources": {"limits": {"nvidia.com/gpu": "8"}}}],
                },
            },
        },
    }
    module_runner("resources", {"definitions": [dep], "wait": False})
    wait_until(lambda: len([p for p in pods(kube, namespace, "app=full") if p["spec"].get("nodeName")]) == 1)

    def unschedulable_reason():
        for pod in pods(kube, namespace, "app=full"):
            for cond in pod["status"].get("conditions", []):
                if cond["type"] == "PodScheduled" and cond["status"] == "False" and cond.get("message"):
                    return cond["message"]
        return None

    reason = wait_until(unschedulable_reason)
    placed = pods(kube, namespace, "app=full")
    # One pod fits on the free 8-GPU node; the other neither fits there (no GPU left) nor on the
    # tainted node, and the scheduler says both.
    assert [p["spec"]["nodeName"] for p in placed if p["spec"].get("nodeName")] == [free_node]
    assert "Insufficient nvidia.com/gpu" in reason and "untolerated taint" in reason, reason
