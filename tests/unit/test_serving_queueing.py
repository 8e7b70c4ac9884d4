"""inference_service and triton_server's Kueue options: where the queue and priority labels go."""

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError
from ansible_collections.aiinfra.cluster.plugins.module_utils.serving_builder import build_inference_service, build_triton_server

QUEUE = {"queue_name": "gpu", "workload_priority_class": "gpu-serving"}
KUEUE_LABELS = {"kueue.x-k8s.io/queue-name": "gpu", "kueue.x-k8s.io/priority-class": "gpu-serving"}


def isvc(**extra):
    return dict({"name": "llm", "namespace": "team-serving", "model_format": {"name": "huggingface"}, "gpus": 1}, **extra)


def triton(**extra):
    return dict({"name": "tr", "namespace": "team-serving", "model_repository": "s3://models/triton", "gpus": 1}, **extra)


def test_the_inference_service_carries_the_queue_for_kserve_to_copy():
    obj = build_inference_service(isvc(labels={"team": "serving"}, **QUEUE))[-1]
    labels = obj["metadata"]["labels"]
    assert dict((k, labels[k]) for k in KUEUE_LABELS) == KUEUE_LABELS
    assert labels["team"] == "serving"


def test_triton_deployment_and_pods_carry_the_queue_but_not_its_selectors():
    objects = build_triton_server(triton(**QUEUE))
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    for labels in (deployment["metadata"]["labels"], deployment["spec"]["template"]["metadata"]["labels"]):
        assert dict((k, labels.get(k)) for k in KUEUE_LABELS) == KUEUE_LABELS
    # Selectors stay the workload's own: a changed queue must not orphan pods or the Service.
    service = next(o for o in objects if o["kind"] == "Service")
    for selector in (deployment["spec"]["selector"]["matchLabels"], service["spec"]["selector"]):
        assert not set(selector) & set(KUEUE_LABELS), selector
    assert not set(service["metadata"]["labels"]) & set(KUEUE_LABELS)


def test_no_queue_no_kueue_label():
    for obj in build_inference_service(isvc()) + build_triton_server(triton()):
        assert not set(obj["metadata"].get("labels") or {}) & set(KUEUE_LABELS), obj["kind"]


@pytest.mark.parametrize("builder,params", [(build_inference_service, isvc), (build_triton_server, triton)])
@pytest.mark.parametrize("option,value,kind", [("queue_name", "GPU Queue", "LocalQueue"), ("workload_priority_class", "x" * 254, "WorkloadPriorityClass")])
def test_names_kueue_cannot_hold_are_refused(builder, params, option, value, kind):
    with pytest.raises(InputError) as err:
        builder(params(**{option: value}))
    assert option in str(err.value) and kind in str(err.value)
