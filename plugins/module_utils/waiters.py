# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Readiness waits that understand each resource: named conditions, field values
(status.phase, status.state), workload rollouts and Job completion (failing fast on Failed).
A status counts only once its controller has observed the object's current generation.
A timeout reports the last status and the object's recent Events, never a bare "timed out".
Deadlines use the monotonic clock: a wall-clock step (NTP) neither ends nor stretches a wait.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import threading
import time

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError, WaitFailed, WaitTimeout
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import path_quote
from ansible_collections.aiinfra.cluster.plugins.module_utils.queueing import ADMISSION_GATE, QUEUE_LABEL


def get_path(obj, dotted):
    """Read `a.b.c` (list indexes allowed: `a.0.b`) from nested dicts; None when missing."""
    cur = obj
    for part in dotted.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur


def find_condition(obj, cond_type):
    for cond in get_path(obj, "status.conditions") or []:
        if cond.get("type") == cond_type:
            return cond
    return None


def stale_generation(obj, cond=None):
    """Why the status (or one condition) describes an earlier spec, or None. Only kinds whose
    controller reports observedGeneration can be told; after an UPDATE their previous Ready=True
    must not count."""
    generation = (obj.get("metadata") or {}).get("generation")
    if not isinstance(generation, int):
        return None
    for where, observed in (("status", (obj.get("status") or {}).get("observedGeneration")), ("condition", (cond or {}).get("observedGeneration"))):
        if isinstance(observed, int) and observed < generation:
            return "controller has observed generation %d, not %d yet (%s is from before the last change)" % (observed, generation, where)
    return None


def other_conditions(obj, skip=None):
    """The operator's own account of what is not done yet: its other conditions that are not True
    and say why (KServe's PredictorReady, Fluid's runtime conditions, ...)."""
    out = []
    for cond in get_path(obj, "status.conditions") or []:
        if cond.get("type") != skip and str(cond.get("status")) != "True" and cond.get("message"):
            out.append("%s %s (%s: %s)" % (cond.get("type"), cond.get("status"), cond.get("reason"), cond.get("message")))
    return "; ".join(out)


# Each check returns (done, why_not); terminal failures raise WaitFailed.
def check_condition(obj, spec):
    cond = find_condition(obj, spec["condition"])
    want = str(spec.get("status", "True"))
    stale = stale_generation(obj, cond)
    others = other_conditions(obj, spec["condition"])
    if stale:
        # Some controllers (KServe) advance observedGeneration only once reconciled: their
        # conditions still say why not.
        return False, stale + ("; " + others if others else "")
    if cond is not None and str(cond.get("status")) == want:
        return True, None
    if cond is None:
        why = "condition %s not reported yet" % spec["condition"]
    else:
        why = "condition %s is %s (%s: %s)" % (spec["condition"], cond.get("status"), cond.get("reason"), cond.get("message"))
    return False, why + ("; " + others if others else "")


def check_field(obj, spec):
    stale = stale_generation(obj)
    if stale:
        return False, stale
    value = get_path(obj, spec["path"])
    if value is not None and str(value) == str(spec["value"]):
        return True, None
    failed_values = [str(v) for v in spec.get("fail_values") or []]
    others = other_conditions(obj)
    if value is not None and str(value) in failed_values:
        raise WaitFailed("%s is %s" % (spec["path"], value) + ("; " + others if others else ""), last_status=obj.get("status"))
    return False, "%s is %r, waiting for %r" % (spec["path"], value, spec["value"]) + ("; " + others if others else "")


def check_rollout(obj, spec=None):
    kind = obj.get("kind")
    status = obj.get("status") or {}
    meta = obj.get("metadata") or {}
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return False, "controller has not observed generation %s yet" % meta.get("generation")
    if kind == "DaemonSet":
        want = status.get("desiredNumberScheduled", 0)
        updated, available = status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0)
        if ((obj.get("spec") or {}).get("updateStrategy") or {}).get("type") == "OnDelete":
            updated = want  # pods take a new template only when deleted: available is the end state
        if updated >= want and available >= want:
            return True, None
        return False, "%d/%d pods updated, %d available" % (updated, want, available)
    if kind == "StatefulSet":
        return check_statefulset(obj)
    want = (obj.get("spec") or {}).get("replicas", 1)
    updated, ready = status.get("updatedReplicas", 0), status.get("availableReplicas", 0)
    progressing = find_condition(obj, "Progressing") or {}
    if progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded":
        # The controller itself gave up (spec.progressDeadlineSeconds): waiting on cannot help.
        raise WaitFailed(
            "%s %s/%s: ProgressDeadlineExceeded: %s" % (kind, meta.get("namespace"), meta.get("name"), progressing.get("message")),
            last_status=status,
        )
    if updated >= want and ready >= want and status.get("replicas", 0) <= want:
        return True, None
    return False, "%d/%d replicas updated, %d available" % (updated, want, ready)


def check_statefulset(obj):
    """As `kubectl rollout status`: every replica ready, and then: RollingUpdate with a partition
    is done once the pods at or above the partition run the new revision (those below keep the
    old one by design); OnDelete is done when the replicas are ready, because pods take the new
    template only when someone deletes them."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = spec.get("replicas", 1)
    ready, updated = status.get("readyReplicas", 0), status.get("updatedReplicas", 0)
    if ready < want:
        return False, "%d/%d replicas ready" % (ready, want)
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") == "OnDelete":
        return True, None
    partition = (strategy.get("rollingUpdate") or {}).get("partition") or 0
    if partition:
        need = max(want - partition, 0)
        if updated >= need:
            return True, None
        return False, "%d/%d pods at or above partition %d updated" % (updated, need, partition)
    if status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
        return False, "revision %s still rolling out (%d/%d replicas updated)" % (status.get("updateRevision"), updated, want)
    if updated < want:
        return False, "%d/%d replicas updated" % (updated, want)
    return True, None


def check_job(obj, spec=None):
    for cond in get_path(obj, "status.conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return True, None
        if cond.get("type") == "Failed":
            raise WaitFailed(
                "Job %s/%s failed: %s: %s" % (obj["metadata"].get("namespace"), obj["metadata"]["name"], cond.get("reason"), cond.get("message")),
                last_status=obj.get("status"),
            )
    status = obj.get("status") or {}
    return False, "%s active, %s succeeded, %s failed" % (status.get("active", 0), status.get("succeeded", 0), status.get("failed", 0))


CHECKS = {"condition": check_condition, "field": check_field, "rollout": check_rollout, "job": check_job}

# What "ready" means for kinds this collection creates, when the caller does not say.
DEFAULT_WAITS = {
    "Deployment": {"type": "rollout"},
    "DaemonSet": {"type": "rollout"},
    "StatefulSet": {"type": "rollout"},
    "Job": {"type": "job"},
    "InferenceService": {"type": "condition", "condition": "Ready"},
    "Dataset": {"type": "field", "path": "status.phase", "value": "Bound", "fail_values": ["Failed"]},
    "ClusterPolicy": {"type": "field", "path": "status.state", "value": "ready"},
    "CustomResourceDefinition": {"type": "condition", "condition": "Established"},
}


def operands_rolled_out(client, policy):
    """The GPU Operator's ClusterPolicy reports no observedGeneration, so its `ready` may still
    describe the spec before a `helm upgrade`: also require every DaemonSet it owns (in the
    operator namespace it reports) to have rolled out its current generation."""
    namespace = (policy.get("status") or {}).get("namespace")
    uid = (policy.get("metadata") or {}).get("uid")
    path = "/apis/apps/v1/namespaces/%s/daemonsets" % path_quote(namespace) if namespace else "/apis/apps/v1/daemonsets"
    try:
        items = (client.get(path) or {}).get("items") or []
    except ApiError as exc:
        return False, "cannot list the operand DaemonSets: %s" % exc.msg
    for ds in items:
        if not any(ref.get("uid") == uid for ref in (ds.get("metadata") or {}).get("ownerReferences") or []):
            continue
        ds.setdefault("kind", "DaemonSet")
        done, why = check_rollout(ds)
        if not done:
            return False, "operand DaemonSet %s/%s: %s" % (ds["metadata"].get("namespace"), ds["metadata"]["name"], why)
    return True, None


EXTRA_CHECKS = {"ClusterPolicy": operands_rolled_out}


def _event_time(event):
    series = event.get("series") or {}
    return (
        series.get("lastObservedTime") or event.get("lastTimestamp") or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp") or ""
    )


def recent_events(client, obj, limit=8):
    """This object's newest Events (by uid: not those of an earlier object of the same name),
    newest first, as short lines; best effort."""
    meta = obj.get("metadata") or {}
    if meta.get("uid"):
        selector = "involvedObject.uid=%s" % meta["uid"]
    else:
        selector = "involvedObject.name=%s,involvedObject.kind=%s" % (meta.get("name"), obj.get("kind"))
    path = "/api/v1/namespaces/%s/events" % path_quote(meta["namespace"]) if meta.get("namespace") else "/api/v1/events"
    try:
        # The list limit bounds the response for an object with a storm of Events.
        items = (client.get(path, query={"fieldSelector": selector, "limit": 500}) or {}).get("items") or []
    except ApiError:
        return []
    items.sort(key=_event_time, reverse=True)
    return ["%s %s: %s" % (e.get("type"), e.get("reason"), e.get("message")) for e in items[:limit]]


def pod_failure_summary(client, namespace, selector, tail_lines=20):
    """For failed Jobs: the first failed pod's reason and its log tail (if the kubelet serves logs)."""
    try:
        pods = (client.get("/api/v1/namespaces/%s/pods" % path_quote(namespace), query={"labelSelector": selector}) or {}).get("items") or []
    except ApiError:
        return None
    for pod in pods:
        if (pod.get("status") or {}).get("phase") != "Failed":
            continue
        reasons = []
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
            if term:
                reasons.append("%s: %s exit %s %s" % (cs.get("name"), term.get("reason"), term.get("exitCode"), term.get("message") or ""))
        summary = {"pod": pod["metadata"]["name"], "reason": "; ".join(reasons) or (pod.get("status") or {}).get("reason")}
        try:
            log = client.request(
                "GET", "/api/v1/namespaces/%s/pods/%s/log" % (path_quote(namespace), path_quote(pod["metadata"]["name"])), query={"tailLines": tail_lines}
            )
            summary["log_tail"] = log if isinstance(log, str) else json.dumps(log)
        except Exception:  # pylint: disable=broad-except
            summary["log_tail"] = None  # logs need a kubelet; simulated nodes have none
        return summary
    return None


# Kinds whose pods carry a label naming them rather than a spec.selector (a TrainJob's JobSet has
# the TrainJob's name).
POD_LABEL_BY_KIND = {"JobSet": "jobset.sigs.k8s.io/jobset-name", "TrainJob": "jobset.sigs.k8s.io/jobset-name",
                     "InferenceService": "serving.kserve.io/inferenceservice"}


def workload_pods(client, obj, limit=50):
    """The pods of a workload (its spec.selector, or the label naming it), first page; None when
    they cannot be told or read."""
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels")
    namespace = (obj.get("metadata") or {}).get("namespace")
    if not selector and obj.get("kind") in POD_LABEL_BY_KIND:
        selector = {POD_LABEL_BY_KIND[obj["kind"]]: (obj.get("metadata") or {}).get("name")}
    if not selector or not namespace:
        return None
    query = {"labelSelector": ",".join("%s=%s" % kv for kv in sorted(selector.items())), "limit": limit}
    try:
        return (client.get("/api/v1/namespaces/%s/pods" % path_quote(namespace), query=query) or {}).get("items") or []
    except ApiError:
        return None


def stuck_pod_summary(client, obj):
    """For a workload that did not roll out or finish: why its first unready pod is stuck
    (unschedulable with the scheduler's reason, image pull, crash), which the workload's own
    Events never say."""
    pods = workload_pods(client, obj)
    if pods is None:
        return None
    for pod in pods:
        if any(g.get("name") == ADMISSION_GATE for g in (pod.get("spec") or {}).get("schedulingGates") or []):
            # A serving pod Kueue holds until it admits the pod's own Workload.
            queued = queued_workload_summary(client, dict(pod, kind="Pod"))  # list items carry no kind
            if queued:
                return "pod %s %s" % (pod["metadata"]["name"], queued)
        status = pod.get("status") or {}
        for cond in status.get("conditions") or []:
            if cond.get("type") in ("PodScheduled", "Ready") and cond.get("status") != "True" and cond.get("message"):
                return "pod %s %s: %s" % (pod["metadata"]["name"], cond.get("reason") or cond["type"], cond["message"])
        for cs in status.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting")
            if waiting:
                return "pod %s container %s %s: %s" % (pod["metadata"]["name"], cs.get("name"), waiting.get("reason"), waiting.get("message") or "")
    return None


# Kinds Kueue admits pod by pod (its pod and deployment integrations): their waits report the
# Workload of a pod still gated (stuck_pod_summary), not one of their own.
QUEUED_BY_POD = ("Deployment", "InferenceService")


def queued_workload_summary(client, obj):
    """For a job or pod that names a Kueue queue and is not admitted: where it waits and why (its
    Workload's conditions: no quota, no topology domain with room, preempted), which neither the
    suspended job nor its events say. None when it is admitted or names no queue."""
    meta = obj.get("metadata") or {}
    queue = (meta.get("labels") or {}).get(QUEUE_LABEL)
    if not queue or not meta.get("uid") or obj.get("kind") in QUEUED_BY_POD:
        return None
    path = "/apis/kueue.x-k8s.io/v1beta2/namespaces/%s/workloads" % path_quote(meta.get("namespace") or "default")
    try:
        items = (client.get(path, query={"labelSelector": "kueue.x-k8s.io/job-uid=%s" % meta["uid"]}) or {}).get("items") or []
    except ApiError:
        return None
    if not items:
        return "queued in LocalQueue %s, but Kueue made no Workload for it (is Kueue running, and does it manage %s?)" % (queue, obj.get("kind"))
    workload = items[0]
    if (find_condition(workload, "Admitted") or {}).get("status") == "True":
        return None
    where = ((workload.get("status") or {}).get("admission") or {}).get("clusterQueue")
    for cond_type in ("Evicted", "Preempted"):
        cond = find_condition(workload, cond_type) or {}
        if cond.get("status") == "True":
            return "not admitted by Kueue (LocalQueue %s): %s %s: %s" % (queue, cond_type, cond.get("reason"), cond.get("message"))
    cond = find_condition(workload, "QuotaReserved") or {}
    return "queued in LocalQueue %s%s, not admitted: %s" % (
        queue, " (ClusterQueue %s)" % where if where else "", cond.get("message") or "waiting for Kueue to consider it")


# Seconds a workload may wait before a pod naming a missing PVC or Secret fails the wait: long
# enough for objects applied in the same run (or by an operator) to appear. Environment
# AIINFRA_WAIT_REFERENCE_GRACE or a wait spec's `reference_grace` sets another value.
REFERENCE_GRACE = 30.0


def reference_grace(spec):
    value = spec.get("reference_grace", os.environ.get("AIINFRA_WAIT_REFERENCE_GRACE"))
    try:
        return float(value) if value not in (None, "") else REFERENCE_GRACE
    except ValueError:
        return REFERENCE_GRACE


def _pod_references(pod):
    """(kind, name) of the PVCs and Secrets a pod cannot start without (optional ones left out)."""
    spec = pod.get("spec") or {}
    refs = []
    for volume in spec.get("volumes") or []:
        if (volume.get("persistentVolumeClaim") or {}).get("claimName"):
            refs.append(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
        secret = volume.get("secret") or {}
        if secret.get("secretName") and not secret.get("optional"):
            refs.append(("Secret", secret["secretName"]))
        for source in (volume.get("projected") or {}).get("sources") or []:
            projected = source.get("secret") or {}
            if projected.get("name") and not projected.get("optional"):
                refs.append(("Secret", projected["name"]))
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        for env in container.get("env") or []:
            key_ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
            if key_ref.get("name") and not key_ref.get("optional"):
                refs.append(("Secret", key_ref["name"]))
        for source in container.get("envFrom") or []:
            ref = source.get("secretRef") or {}
            if ref.get("name") and not ref.get("optional"):
                refs.append(("Secret", ref["name"]))
    return refs


def missing_pod_reference(client, obj):
    """For a workload that is not ready: 'pod P needs KIND NS/NAME, which does not exist' for the
    first PVC or Secret one of its unready pods names that is missing; None when there is none.
    Such a pod can never start, so waiting out the timeout would only delay the same answer."""
    pods = workload_pods(client, obj)
    namespace = (obj.get("metadata") or {}).get("namespace")
    checked = {}
    for pod in pods or []:
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed") or any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []):
            continue
        for kind, name in _pod_references(pod):
            if kind == "Secret" and not (pod.get("spec") or {}).get("nodeName"):
                continue  # a kubelet reads Secrets once the pod is bound; an unscheduled pod may still get it in time
            if (kind, name) not in checked:
                plural = "persistentvolumeclaims" if kind == "PersistentVolumeClaim" else "secrets"
                try:
                    client.get("/api/v1/namespaces/%s/%s/%s" % (path_quote(namespace), plural, path_quote(name)))
                    checked[(kind, name)] = True
                except ApiError as exc:
                    checked[(kind, name)] = exc.status != 404  # a forbidden read says nothing
            if not checked[(kind, name)]:
                return "pod %s needs %s %s/%s, which does not exist" % (pod["metadata"]["name"], kind, namespace, name)
    return None


# A `batch` run installs its scheduler here, per element thread (see runner._Batch): a wait then
# gives way to the other elements while it sleeps, and its deadline counts from the batch's
# common start of waiting.
_batch = threading.local()


def set_batch(scheduler):
    _batch.scheduler = scheduler


def _scheduler():
    return getattr(_batch, "scheduler", None)


def checkpoint(applied=None):
    """Where an element's waiting begins: in a batch, it stops here until every element has been
    applied. `applied` is what the element has applied so far (for the report if another fails)."""
    scheduler = _scheduler()
    if scheduler is not None:
        scheduler.checkpoint(applied)


def pause(seconds):
    """Sleep between polls; in a batch, the other elements' waits poll meanwhile."""
    scheduler = _scheduler()
    if scheduler is not None:
        scheduler.pause(seconds)
    else:
        time.sleep(seconds)


def wait_deadline(timeout):
    """The monotonic deadline of a wait of `timeout` seconds starting now; in a batch, counted
    from the moment every element had been applied, so all elements share one deadline."""
    scheduler = _scheduler()
    start = scheduler.wait_start if scheduler is not None and scheduler.wait_start is not None else time.monotonic()
    return start + timeout


def wait_for(client, rt, name, namespace, spec, timeout=300, sleep=None, deadline=None):
    """Poll until `spec` holds; returns the last object. Raises WaitTimeout / WaitFailed.
    `deadline` (monotonic) lets waits in sequence share one wait_timeout."""
    checkpoint()
    if deadline is None:
        deadline = wait_deadline(timeout)
    interval, last, why = 0.1, None, None
    kind_check = CHECKS[spec["type"]] if spec["type"] != "deleted" else None
    path = rt.item_path(name, namespace)
    next_reference_check = time.monotonic() + reference_grace(spec)
    while True:
        try:
            last = client.get(path)
        except ApiError as exc:
            if exc.status != 404:
                raise
            if kind_check is None:
                return None
            last, why = None, "object does not exist"
        if last is not None and kind_check is None and spec.get("uid") and (last.get("metadata") or {}).get("uid") != spec["uid"]:
            return None  # gone, and another object of that name already took its place
        if last is not None:
            if kind_check is None:
                why = "still exists (deletionTimestamp %s)" % (last.get("metadata") or {}).get("deletionTimestamp")
            else:
                try:
                    done, why = kind_check(last, spec)
                    extra = EXTRA_CHECKS.get(last.get("kind"))
                    if done and extra is not None:
                        done, why = extra(client, last)
                except WaitFailed as exc:
                    if last.get("kind") == "Job":
                        exc.details["failed_pod"] = pod_failure_summary(client, namespace, "batch.kubernetes.io/job-name=%s" % name)
                        pod = exc.details["failed_pod"]
                        if pod:
                            exc.msg += "; pod %s: %s" % (pod["pod"], pod["reason"])
                            if pod.get("log_tail"):
                                exc.msg += "; log tail:\n" + pod["log_tail"]
                    elif spec["type"] == "rollout":
                        stuck = stuck_pod_summary(client, last)
                        if stuck:
                            exc.msg += "; " + stuck
                    exc.details.setdefault("events", recent_events(client, last))
                    raise
                if done:
                    return last
                if time.monotonic() >= next_reference_check and (spec["type"] in ("rollout", "job") or last.get("kind") in POD_LABEL_BY_KIND):
                    missing = missing_pod_reference(client, last)
                    if missing:
                        raise WaitFailed("%s %s/%s cannot become ready: %s (checked after %gs of the %ss wait; create it, or fix the "
                                         "workload's reference)" % (rt.kind, namespace, name, missing, reference_grace(spec), timeout),
                                         last_status=last.get("status"), events=recent_events(client, last))
                    next_reference_check = time.monotonic() + 10
        if time.monotonic() >= deadline:
            ref = "%s %s%s" % (rt.kind, (namespace + "/") if namespace else "", name)
            events = recent_events(client, last) if last else []
            msg = "%s not ready after %ss: %s" % (ref, timeout, why)
            extra = EXTRA_CHECKS.get((last or {}).get("kind"))
            if extra is not None and kind_check is not None:
                # The kind's own signal failed first: say too what its extra check finds (the
                # ClusterPolicy operands that have not rolled out), once.
                extra_done, extra_why = extra(client, last)
                if not extra_done and extra_why not in msg:
                    msg += "; " + extra_why
            queued = queued_workload_summary(client, last) if last else None
            if queued:
                msg += "; " + queued
            stuck = stuck_pod_summary(client, last) if last and (spec["type"] in ("rollout", "job") or last.get("kind") in POD_LABEL_BY_KIND) else None
            if stuck:
                msg += "; " + stuck
            if events:
                msg += "; recent events (newest first): " + " | ".join(events)
            raise WaitTimeout(msg, last_status=(last or {}).get("status"), events=events)
        (sleep or pause)(min(interval, max(deadline - time.monotonic(), 0.01)))
        interval = min(interval * 2, 2.0)
