"""GPUs through DRA: the claim template, its CEL selector and what the training pods claim."""

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils import dra
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError
from ansible_collections.aiinfra.cluster.plugins.module_utils.training_builder import build_training_job

BASE = {"name": "llm", "namespace": "ml", "script": "/t.py", "nodes": 2, "gpus_per_node": 8}


def test_selector_expression_terms():
    expr = dra.selector_expression({"product": "NVIDIA-H200", "min_memory": "140Gi", "architecture": "Hopper", "min_compute_capability": "9.0"})
    assert expr == (
        "device.attributes['gpu.nvidia.com'].productName.replace(' ', '-') == 'NVIDIA-H200'"
        " && device.capacity['gpu.nvidia.com'].memory.compareTo(quantity('140Gi')) >= 0"
        " && device.attributes['gpu.nvidia.com'].architecture.lowerAscii() == 'hopper'"
        " && device.attributes['gpu.nvidia.com'].cudaComputeCapability.compareTo(semver('9.0.0')) >= 0"
    )
    assert dra.selector_expression({}) is None
    # Quotes cannot break out of the CEL string.
    assert dra.selector_expression({"product": "x' || true || '"}).endswith("== 'x\\'-||-true-||-\\''")
    with pytest.raises(InputError, match="gpu_selector.min_memory"):
        dra.selector_expression({"min_memory": "lots"})
    with pytest.raises(InputError, match="min_compute_capability"):
        dra.selector_expression({"min_compute_capability": "hopper"})


def test_training_pods_claim_gpus_from_one_template():
    objs = build_training_job(dict(BASE, gpu_allocation="dra", gpu_selector={"product": "NVIDIA-H200", "min_memory": "140Gi"}))
    template, job = objs[0], objs[-1]
    assert template["kind"] == "ResourceClaimTemplate" and template["metadata"]["name"] == "llm-gpus"
    request = template["spec"]["spec"]["devices"]["requests"][0]
    assert request["name"] == "gpus" and request["exactly"]["deviceClassName"] == "gpu.nvidia.com"
    assert request["exactly"]["count"] == 8 and request["exactly"]["allocationMode"] == "ExactCount"
    assert "NVIDIA-H200" in request["exactly"]["selectors"][0]["cel"]["expression"]
    pod = job["spec"]["template"]["spec"]
    assert pod["resourceClaims"] == [{"name": "gpus", "resourceClaimTemplateName": "llm-gpus"}]
    container = pod["containers"][0]
    assert container["resources"]["claims"] == [{"name": "gpus"}]
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {}) and "nodeSelector" not in pod


def test_gpu_product_becomes_the_selector_product_under_dra():
    objs = build_training_job(dict(BASE, gpu_allocation="dra", gpu_product="NVIDIA-H100-80GB-HBM3"))
    assert "== 'NVIDIA-H100-80GB-HBM3'" in objs[0]["spec"]["spec"]["devices"]["requests"][0]["exactly"]["selectors"][0]["cel"]["expression"]
    # The device plugin path is unchanged: limits and the GFD node label.
    plain = build_training_job(dict(BASE, gpu_product="NVIDIA-H100-80GB-HBM3"))
    assert [o["kind"] for o in plain] == ["Service", "Job"]
    assert plain[-1]["spec"]["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}


@pytest.mark.parametrize("extra, words", [
    ({"gpu_selector": {"product": "NVIDIA-H200"}}, "set gpu_allocation=dra"),
    ({"gpu_allocation": "dra", "gpus_per_node": 0}, "set gpus_per_node to 1 or more"),
    ({"gpu_allocation": "dra", "backend": "trainjob"}, "use backend job or jobset"),
    ({"gpu_allocation": "dra", "gpu_selector": {"min_memory": "-"}}, "not a Kubernetes quantity"),
])
def test_bad_dra_options(extra, words):
    with pytest.raises(InputError, match=words):
        build_training_job(dict(BASE, **extra))
