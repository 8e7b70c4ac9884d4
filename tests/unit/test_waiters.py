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


def test_an_earlier_generations_ready_does_not_count():
    # After an UPDATE (generation 3) the controller still shows Ready=True for generation 2.
    isvc = {"metadata": {"generation": 3}, "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]}}
    done, why = waiters.check_condition(isvc, {"condition": "Ready"})
    assert not done and "generation 2, not 3" in why
    isvc["status"]["observedGeneration"] = 3
    assert waiters.check_condition(isvc, {"condition": "Ready"}) == (True, None)
    # metav1.Condition carries its own observedGeneration.
    cond_stale = {"metadata": {"generation": 5}, "status": {"conditions": [{"type": "Ready", "status": "True", "observedGeneration": 4}]}}
    assert not waiters.check_condition(cond_stale, {"condition": "Ready"})[0]
    field = {"metadata": {"generation": 2}, "status": {"observedGeneration": 1, "phase": "Bound"}}
    assert not waiters.check_field(field, {"path": "status.phase", "value": "Bound"})[0]
    # Kinds that report no observedGeneration are judged on their status alone.
    assert waiters.check_field({"metadata": {"generation": 2}, "status": {"state": "ready"}}, {"path": "status.state", "value": "ready"})[0]


def test_deployment_fails_fast_on_progress_deadline():
    dep = {
        "kind": "Deployment", "metadata": {"name": "d", "namespace": "n", "generation": 1}, "spec": {"replicas": 1},
        "status": {"observedGeneration": 1, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": 'ReplicaSet "d-1" has timed out progressing.'}
        ]},
    }
    with pytest.raises(WaitFailed, match="ProgressDeadlineExceeded"):
        waiters.check_rollout(dep)


def statefulset(strategy, replicas=3, **status):
    base = {"observedGeneration": 2, "replicas": replicas, "readyReplicas": replicas, "currentRevision": "r1", "updateRevision": "r2"}
    base.update(status)
    return {"kind": "StatefulSet", "metadata": {"generation": 2}, "spec": {"replicas": replicas, "updateStrategy": strategy}, "status": base}


def test_statefulset_partition_and_on_delete_are_done_when_kubectl_says_so():
    # partition 2 of 3: only ordinal 2 takes the new revision; currentRevision never catches up.
    partitioned = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    assert not waiters.check_rollout(statefulset(partitioned, updatedReplicas=0))[0]
    assert waiters.check_rollout(statefulset(partitioned, updatedReplicas=1)) == (True, None)
    assert not waiters.check_rollout(statefulset(partitioned, updatedReplicas=1, readyReplicas=2))[0]
    # OnDelete: pods change only when deleted; ready replicas are the end state.
    assert waiters.check_rollout(statefulset({"type": "OnDelete"}, updatedReplicas=0)) == (True, None)
    assert not waiters.check_rollout(statefulset({"type": "OnDelete"}, readyReplicas=1))[0]
    rolling = {"type": "RollingUpdate"}
    assert not waiters.check_rollout(statefulset(rolling, updatedReplicas=3))[0]
    assert waiters.check_rollout(statefulset(rolling, updatedReplicas=3, currentRevision="r2"))[0]


class _NeverReady:
    """A client whose object never becomes ready (the wait's deadline alone ends it)."""

    def __init__(self):
        self.gets = 0

    def get(self, path, query=None):
        self.gets += 1
        return {"kind": "ConfigMap", "metadata": {"name": "x"}, "status": {"phase": "Pending"}}


class _Rt:
    kind = "ConfigMap"

    @staticmethod
    def item_path(name, namespace):
        return "/x"


def test_wait_deadline_uses_the_monotonic_clock(monkeypatch):
    # The wall clock steps an hour forward at every reading (an NTP correction, a suspended VM):
    # a deadline on time.time() would end a 30 s wait at its first poll.
    wall = [1000000.0]

    def stepping_time():
        wall[0] += 3600
        return wall[0]

    monkeypatch.setattr(waiters.time, "time", stepping_time)
    client, slept = _NeverReady(), []
    spec = {"type": "field", "path": "status.phase", "value": "Ready"}
    with pytest.raises(waiters.WaitTimeout):
        waiters.wait_for(client, _Rt, "x", None, spec, timeout=0.3, sleep=lambda s: (slept.append(s), waiters.time.sleep(s)))
    assert client.gets >= 3 and len(slept) >= 2


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
