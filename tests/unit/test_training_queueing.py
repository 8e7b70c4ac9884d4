"""training_job's Kueue options: the queue and priority labels on the job, the topology on its pods."""

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError
from ansible_collections.aiinfra.cluster.plugins.module_utils.training_builder import build_training_job, main_object, pod_templates

BASE = {"name": "llm", "namespace": "team-a", "script": "train.py", "nodes": 8, "gpus_per_node": 8}


@pytest.mark.parametrize("extra", [
    {"backend": "job"},
    {"backend": "pytorchjob"},
    {"framework": "tensorflow", "backend": "jobset", "strategy": "parameter_server", "ps_replicas": 2},
    {"framework": "tensorflow", "backend": "tfjob"},
])
def test_queue_priority_and_topology_reach_the_job_and_every_pod_set(extra):
    objects = build_training_job(dict(BASE, queue_name="gpu", workload_priority_class="gpu-training", topology={"required": "block"},
                                      pod_annotations={"example.com/owner": "research"}, **extra))
    main = main_object(objects)
    assert main["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu"
    assert main["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "gpu-training"
    templates = pod_templates(main)
    assert templates, main["kind"]
    for template in templates:
        annotations = template["metadata"]["annotations"]
        assert annotations["kueue.x-k8s.io/podset-required-topology"] == "aiinfra.cluster/topology-block"
        assert annotations["example.com/owner"] == "research"
    # Only the job carries the queue label: Kueue manages it, not its Service.
    assert [o["kind"] for o in objects if "kueue.x-k8s.io/queue-name" in o["metadata"].get("labels", {})] == [main["kind"]]


def test_preferred_level_and_a_label_of_its_own():
    job = main_object(build_training_job(dict(BASE, queue_name="gpu", topology={"preferred": "example.com/pod-domain"})))
    annotations = pod_templates(job)[0]["metadata"]["annotations"]
    assert annotations == {"kueue.x-k8s.io/podset-preferred-topology": "example.com/pod-domain"}


def test_trainjob_takes_the_queue_label():
    job = main_object(build_training_job(dict(BASE, backend="trainjob", queue_name="gpu")))
    assert job["kind"] == "TrainJob" and job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu"


def test_without_kueue_options_nothing_changes():
    job = main_object(build_training_job(dict(BASE)))
    assert not any(k.startswith("kueue.x-k8s.io/") for k in job["metadata"]["labels"])
    assert "annotations" not in job["spec"]["template"]["metadata"]


@pytest.mark.parametrize("extra, message", [
    ({"topology": {"required": "block"}}, "set queue_name"),
    ({"queue_name": "gpu", "topology": {"required": "block", "preferred": "rack"}}, "exactly one of"),
    ({"queue_name": "gpu", "topology": {}}, None),
    ({"queue_name": "Bad_Queue"}, "option queue_name 'Bad_Queue'"),
    ({"queue_name": "gpu", "backend": "trainjob", "topology": {"required": "block"}}, "TrainJob"),
    ({"backend": "trainjob", "pod_annotations": {"a": "b"}}, "TrainJob"),
    ({"queue_name": "gpu", "gpu_allocation": "dra", "topology": {"required": "rack"}}, "gpu_allocation=dra"),
])
def test_bad_queueing_options_fail_before_anything_is_built(extra, message):
    if message is None:
        build_training_job(dict(BASE, **extra))
        return
    with pytest.raises(InputError, match=message):
        build_training_job(dict(BASE, **extra))


@pytest.mark.parametrize("backend", ["job", "pytorchjob", "trainjob"])
def test_gpus_are_requested_as_well_as_limited(backend):
    """A pod template is not defaulted: Kueue counts its requests (after a LimitRange's
    defaultRequest, 0 GPUs in the team namespaces), so the GPU request is set beside the limit."""
    main = main_object(build_training_job(dict(BASE, backend=backend)))
    if backend == "trainjob":
        resources = main["spec"]["trainer"]["resourcesPerNode"]
    else:
        resources = pod_templates(main)[0]["spec"]["containers"][0]["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == "8"
