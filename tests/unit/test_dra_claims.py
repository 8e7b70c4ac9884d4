"""GPUs through DRA: the claim template, its CEL selector and what the training and serving pods claim."""

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils import dra
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError, KubeError
from ansible_collections.aiinfra.cluster.plugins.module_utils.serving_builder import build_inference_service, build_triton_server, inference_service_ref
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


# Serving: inference_service and triton_server claim their GPUs from the same kind of template.
ISVC = {"name": "llm", "namespace": "models", "model_format": {"name": "huggingface"}, "storage_uri": "hf://org/model", "gpus": 1}
TRITON = {"name": "triton", "namespace": "inf", "model_repository": "pvc://models/triton", "gpus": 2}


def test_inference_service_predictor_claims_gpus_from_its_template():
    template, obj = build_inference_service(dict(ISVC, gpu_allocation="dra", gpu_selector={"product": "NVIDIA-H200", "min_memory": "140Gi"}))
    assert template["kind"] == "ResourceClaimTemplate" and template["metadata"]["name"] == "llm-gpus"
    assert template["metadata"]["namespace"] == "models" and template["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "aiinfra.cluster"
    request = template["spec"]["spec"]["devices"]["requests"][0]["exactly"]
    assert request["count"] == 1 and request["deviceClassName"] == "gpu.nvidia.com"
    assert request["selectors"][0]["cel"]["expression"] == dra.selector_expression({"product": "NVIDIA-H200", "min_memory": "140Gi"})
    predictor = obj["spec"]["predictor"]
    assert predictor["resourceClaims"] == [{"name": "gpus", "resourceClaimTemplateName": "llm-gpus"}]
    assert predictor["model"]["resources"] == {"claims": [{"name": "gpus"}]}
    assert "nodeSelector" not in predictor
    # GPU nodes stay tainted under DRA: the predictor still tolerates the taint.
    assert predictor["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_inference_service_gpu_product_is_the_selector_product_under_dra():
    template, obj = build_inference_service(dict(ISVC, gpu_allocation="dra", gpu_product="NVIDIA-H100-80GB-HBM3", node_selector={"zone": "a"},
                                                 resources={"limits": {"memory": "16Gi"}}))
    assert "== 'NVIDIA-H100-80GB-HBM3'" in template["spec"]["spec"]["devices"]["requests"][0]["exactly"]["selectors"][0]["cel"]["expression"]
    # The user's own node labels stay; the GFD product label does not.
    assert obj["spec"]["predictor"]["nodeSelector"] == {"zone": "a"}
    assert obj["spec"]["predictor"]["model"]["resources"] == {"limits": {"memory": "16Gi"}, "claims": [{"name": "gpus"}]}
    # The device plugin path is unchanged.
    [plain] = build_inference_service(dict(ISVC, gpu_product="NVIDIA-H100-80GB-HBM3"))
    assert plain["spec"]["predictor"]["model"]["resources"] == {"limits": {"nvidia.com/gpu": "1"}}
    assert plain["spec"]["predictor"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert "resourceClaims" not in plain["spec"]["predictor"]


def test_triton_pods_claim_gpus_from_its_template():
    template, dep, svc = build_triton_server(dict(TRITON, gpu_allocation="dra", gpu_selector={"product": "NVIDIA-H200"}))
    assert template["metadata"]["name"] == "triton-gpus" and svc["kind"] == "Service"
    assert template["metadata"]["labels"]["app.kubernetes.io/instance"] == "triton"
    assert template["spec"]["spec"]["devices"]["requests"][0]["exactly"]["count"] == 2
    pod = dep["spec"]["template"]["spec"]
    assert pod["resourceClaims"] == [{"name": "gpus", "resourceClaimTemplateName": "triton-gpus"}]
    assert pod["containers"][0]["resources"] == {"claims": [{"name": "gpus"}]}
    assert "nodeSelector" not in pod
    plain_dep = build_triton_server(dict(TRITON, gpu_product="NVIDIA-L40S"))[0]
    assert plain_dep["spec"]["template"]["spec"]["containers"][0]["resources"] == {"limits": {"nvidia.com/gpu": "2"}}


def test_absent_refs_include_the_template_only_under_dra():
    assert [o["kind"] for o in inference_service_ref("llm", "models")] == ["InferenceService"]
    refs = inference_service_ref("llm", "models", "dra")
    assert [(o["kind"], o["metadata"]["name"]) for o in refs] == [("ResourceClaimTemplate", "llm-gpus"), ("InferenceService", "llm")]


@pytest.mark.parametrize("builder, base", [(build_inference_service, ISVC), (build_triton_server, TRITON)])
@pytest.mark.parametrize("extra, words", [
    ({"gpu_selector": {"product": "NVIDIA-H200"}}, "set gpu_allocation=dra"),
    ({"gpu_allocation": "dra", "gpus": 0}, "set gpus to 1 or more"),
    ({"gpu_allocation": "dra", "gpu_resource_name": "nvidia.com/mig-1g.10gb"}, "leave gpu_resource_name at nvidia.com/gpu"),
    ({"gpu_allocation": "dra", "resources": {"limits": {"nvidia.com/gpu": "1"}}}, "drop nvidia.com/gpu from resources"),
    ({"gpu_allocation": "dra", "gpu_selector": {"min_memory": "-"}}, "not a Kubernetes quantity"),
    ({"gpu_allocation": "dra", "gpu_selector": {"min_compute_capability": "hopper"}}, "min_compute_capability"),
    ({"gpu_allocation": "mig"}, "gpu_allocation must be device_plugin or dra"),
])
def test_bad_serving_dra_options(builder, base, extra, words):
    with pytest.raises(InputError, match=words):
        builder(dict(base, **extra))


def test_empty_selector_terms_are_not_a_selector():
    # Ansible fills unset suboptions with None: that is no selector, under either allocation.
    empty = {"product": None, "min_memory": None, "architecture": None, "min_compute_capability": None}
    assert len(build_triton_server(dict(TRITON, gpu_selector=empty))) == 2
    template = build_triton_server(dict(TRITON, gpu_allocation="dra", gpu_selector=empty))[0]
    assert "selectors" not in template["spec"]["spec"]["devices"]["requests"][0]["exactly"]
    assert dra.selector_with_product(dict(empty, architecture="Hopper"), "NVIDIA-H200") == {"architecture": "Hopper", "product": "NVIDIA-H200"}


def test_immutable_template_error_names_the_options_and_the_way_out():
    exc = KubeError("ResourceClaimTemplate inf/triton-gpus rejected by the API server (Invalid): spec: Invalid value: {...}: field is immutable", status=422)
    assert dra.explain_immutable_template(exc, "triton", "inf").msg.startswith(
        "ResourceClaimTemplate inf/triton-gpus: gpus and gpu_selector cannot change once it exists")
    other = KubeError("Deployment inf/triton rejected by the API server (Invalid): spec.selector: field is immutable", status=422)
    assert dra.explain_immutable_template(other, "triton", "inf").msg.startswith("Deployment inf/triton")
