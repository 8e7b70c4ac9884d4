import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils import waiters
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import WaitFailed


def test_condition_check():
    obj = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Pending", "message": "m"}]}}
    done, why = waiters.check_condition(obj, {"condition": "Ready"})
    assert not done and "Pending" in why
    obj["status"]["conditions"][0]["status"] = "True"
    assert waiters.check_condition(obj, {"condition": "Ready"}) == (True, None)


def test_field_check_and_failure_values():
    assert waiters.check_field({"status": {"phase": "Bound"}}, {"path": "status.phase", "value": "Bound"})[0]
    assert not waiters.check_field({"status": {}}, {"path": "status.phase", "value": "Bound"})[0]
    with pytest.raises(WaitFailed):
        waiters.check_field({"status": {"phase": "Failed"}}, {"path": "status.phase", "value": "Bound", "fail_values": ["Failed"]})


def test_rollout_needs_observed_generation_and_available_replicas():
    dep = {"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": {"observedGeneration": 1}}
    assert not waiters.check_rollout(dep)[0]
    dep["status"] = {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}
    assert not waiters.check_rollout(dep)[0]
    dep["status"]["availableReplicas"] = 2
    assert waiters.check_rollout(dep)[0]
    ds = {
        "kind": "DaemonSet", "metadata": {"generation": 1},
        "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3},
    }
    assert waiters.check_rollout(ds)[0]


def test_job_fails_fast():
    job = {
        "metadata": {"name": "j", "namespace": "n"},
        "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "m"}]},
    }
    with pytest.raises(WaitFailed, match="BackoffLimitExceeded"):
        waiters.check_job(job)
    job["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
    assert waiters.check_job(job) == (True, None)


def test_get_path_reads_lists():
    assert waiters.get_path({"a": [{"b": 1}]}, "a.0.b") == 1
    assert waiters.get_path({"a": []}, "a.0.b") is None


def test_not_ready_reports_the_operators_other_conditions():
    # KServe's Ready says only "Predictor ingress not created"; PredictorReady says why.
    isvc = {"status": {"conditions": [
        {"type": "IngressReady", "status": "False", "reason": "Predictor ingress not created"},
        {"type": "PredictorReady", "status": "False", "reason": "FailedCreate", "message": 'serviceaccount "models-s3" not found'},
        {"type": "Ready", "status": "False", "reason": "Predictor ingress not created"},
        {"type": "Stopped", "status": "False"},
    ]}}
    done, why = waiters.check_condition(isvc, {"condition": "Ready"})
    assert not done
    assert why == ('condition Ready is False (Predictor ingress not created: None); '
                   'PredictorReady False (FailedCreate: serviceaccount "models-s3" not found)')
    condition = {"type": "Ready", "status": "False", "reason": "RuntimeNotReady", "message": "master not ready"}
    dataset = {"status": {"phase": "NotBound", "conditions": [condition]}}
    done, why = waiters.check_field(dataset, {"path": "status.phase", "value": "Bound"})
    assert why == "status.phase is 'NotBound', waiting for 'Bound'; Ready False (RuntimeNotReady: master not ready)"
