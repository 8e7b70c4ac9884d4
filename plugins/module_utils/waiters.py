# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Readiness waits that understand each resource: named conditions, field values
(status.phase, status.state), workload rollouts and Job completion (failing fast on Failed).
A timeout reports the last status and the object's recent Events, never a bare "timed out".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError, WaitFailed, WaitTimeout
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import path_quote


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
    if cond is not None and str(cond.get("status")) == want:
        return True, None
    others = other_conditions(obj, spec["condition"])
    if cond is None:
        why = "condition %s not reported yet" % spec["condition"]
    else:
        why = "condition %s is %s (%s: %s)" % (spec["condition"], cond.get("status"), cond.get("reason"), cond.get("message"))
    return False, why + ("; " + others if others else "")


def check_field(obj, spec):
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
        if updated >= want and available >= want:
            return True, None
        return False, "%d/%d pods updated, %d available" % (updated, want, available)
    want = (obj.get("spec") or {}).get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    ready_key = "readyReplicas" if kind == "StatefulSet" else "availableReplicas"
    ready = status.get(ready_key, 0)
    if kind == "StatefulSet" and status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
        return False, "revision %s still rolling out" % status.get("updateRevision")
    if updated >= want and ready >= want and status.get("replicas", 0) <= want:
        return True, None
    return False, "%d/%d replicas updated, %d %s" % (updated, want, ready, "ready" if kind == "StatefulSet" else "available")


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


def recent_events(client, obj, limit=8):
    """The object's newest Events as short lines, best effort."""
    meta = obj.get("metadata") or {}
    selector = "involvedObject.name=%s,involvedObject.kind=%s" % (meta.get("name"), obj.get("kind"))
    path = "/api/v1/namespaces/%s/events" % path_quote(meta["namespace"]) if meta.get("namespace") else "/api/v1/events"
    try:
        items = (client.get(path, query={"fieldSelector": selector}) or {}).get("items") or []
    except ApiError:
        return []
    items.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return ["%s %s: %s" % (e.get("type"), e.get("reason"), e.get("message")) for e in items[-limit:]]


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


def stuck_pod_summary(client, obj):
    """For a workload that did not roll out: why its first unready pod is stuck (unschedulable,
    image pull, crash), which the workload's own Events never say."""
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels")
    namespace = (obj.get("metadata") or {}).get("namespace")
    if not selector or not namespace:
        return None
    query = {"labelSelector": ",".join("%s=%s" % kv for kv in sorted(selector.items())), "limit": 50}
    try:
        pods = (client.get("/api/v1/namespaces/%s/pods" % path_quote(namespace), query=query) or {}).get("items") or []
    except ApiError:
        return None
    for pod in pods:
        status = pod.get("status") or {}
        for cond in status.get("conditions") or []:
            if cond.get("type") in ("PodScheduled", "Ready") and cond.get("status") != "True" and cond.get("message"):
                return "pod %s %s: %s" % (pod["metadata"]["name"], cond.get("reason") or cond["type"], cond["message"])
        for cs in status.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting")
            if waiting:
                return "pod %s container %s %s: %s" % (pod["metadata"]["name"], cs.get("name"), waiting.get("reason"), waiting.get("message") or "")
    return None


def wait_for(client, rt, name, namespace, spec, timeout=300, sleep=None):
    """Poll until `spec` holds; returns the last object. Raises WaitTimeout / WaitFailed."""
    deadline = time.time() + timeout
    interval, last, why = 0.1, None, None
    kind_check = CHECKS[spec["type"]] if spec["type"] != "deleted" else None
    path = rt.item_path(name, namespace)
    while True:
        try:
            last = client.get(path)
        except ApiError as exc:
            if exc.status != 404:
                raise
            if kind_check is None:
                return None
            last, why = None, "object does not exist"
        if last is not None:
            if kind_check is None:
                why = "still exists (deletionTimestamp %s)" % (last.get("metadata") or {}).get("deletionTimestamp")
            else:
                try:
                    done, why = kind_check(last, spec)
                except WaitFailed as exc:
                    if last.get("kind") == "Job":
                        exc.details["failed_pod"] = pod_failure_summary(client, namespace, "batch.kubernetes.io/job-name=%s" % name)
                        pod = exc.details["failed_pod"]
                        if pod:
                            exc.msg += "; pod %s: %s" % (pod["pod"], pod["reason"])
                            if pod.get("log_tail"):
                                exc.msg += "; log tail:\n" + pod["log_tail"]
                    exc.details.setdefault("events", recent_events(client, last))
                    raise
                if done:
                    return last
        if time.time() >= deadline:
            ref = "%s %s%s" % (rt.kind, (namespace + "/") if namespace else "", name)
            events = recent_events(client, last) if last else []
            msg = "%s not ready after %ss: %s" % (ref, timeout, why)
            stuck = stuck_pod_summary(client, last) if last and spec["type"] == "rollout" else None
            if stuck:
                msg += "; " + stuck
            if events:
                msg += "; recent events: " + " | ".join(events)
            raise WaitTimeout(msg, last_status=(last or {}).get("status"), events=events)
        (sleep or time.sleep)(interval)
        interval = min(interval * 2, 2.0)
