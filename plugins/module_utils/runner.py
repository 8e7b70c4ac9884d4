# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Module -> runner glue: build the client once, apply or delete a bundle of manifests, wait,
and turn every engine error into one fail_json."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import threading
import time
import traceback

from ansible.module_utils import basic
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.validation import check_required_if

from ansible_collections.aiinfra.cluster.plugins.module_utils.apply import FIELD_MANAGER, ApplyEngine, strip_server_fields, validate_manifest
from ansible_collections.aiinfra.cluster.plugins.module_utils.args_common import (
    APPLY_ARG_SPEC,
    AUTH_ARG_SPEC,
    AUTH_PARAM_NAMES,
    merge_specs,
)
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError, KubeError, WaitTimeout
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params
from ansible_collections.aiinfra.cluster.plugins.module_utils.resources import ResourceResolver
from ansible_collections.aiinfra.cluster.plugins.module_utils.serving_builder import MANAGED_BY
from ansible_collections.aiinfra.cluster.plugins.module_utils.waiters import DEFAULT_WAITS, checkpoint, pause, set_batch, wait_deadline, wait_for

BATCH_CONSTRAINTS = ("mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")
# Apply options an element of `batch` may set for itself (unset: the top-level value), so one
# call can hold a role's whole list, entries with another state or timeout included.
ELEMENT_APPLY_OPTIONS = dict((name, dict((k, v) for k, v in APPLY_ARG_SPEC[name].items() if k != "default")) for name in ("state", "wait", "wait_timeout"))
# Namespaces `create_namespaces` ensures keep their own field manager, the one the roles used
# for them, so a module applying a workload never removes a namespace's labels.
NAMESPACE_FIELD_MANAGER = "aiinfra.cluster.namespaces"


def kube_module(argument_spec, with_apply=True, creates_namespaces=False, shared_spec=None, **kwargs):
    """An AnsibleModule with the shared auth (and apply/wait) options.

    Resource modules also get `batch`: a list of option sets, each validated like the module's own
    options (and taking its own state, wait and wait_timeout). One run then applies them all over
    one connection, where a loop would start a new module process (and connection) per item.
    Modules whose objects live in their `namespace` option may offer `create_namespaces`;
    `shared_spec` holds other options of the whole run, never set per element."""
    kwargs.setdefault("supports_check_mode", True)
    if not with_apply:
        return AnsibleModule(argument_spec=merge_specs(AUTH_ARG_SPEC, argument_spec), **kwargs)
    constraints = dict((k, kwargs.pop(k)) for k in BATCH_CONSTRAINTS if kwargs.get(k))
    element_spec = merge_specs(copy.deepcopy(argument_spec), copy.deepcopy(ELEMENT_APPLY_OPTIONS))
    batch_spec = dict({"type": "list", "elements": "dict", "options": element_spec}, **_element_constraints(constraints, argument_spec))
    top = argument_spec
    if "batch" in (basic._load_params() or {}):
        # The module's own options then come from each element, where required ones are checked.
        top = dict((name, dict((k, v) for k, v in opt.items() if k != "required")) for name, opt in argument_spec.items())
    else:
        kwargs.update(constraints)
    if creates_namespaces:
        top = merge_specs(top, {"create_namespaces": {"type": "bool", "default": False}})
    top = merge_specs(top, shared_spec or {})
    module = AnsibleModule(argument_spec=merge_specs(AUTH_ARG_SPEC, APPLY_ARG_SPEC, top, {"batch": batch_spec}), **kwargs)
    module.batch_option_names = tuple(argument_spec)
    # Rules keyed on a shared option (required_if state=present) are checked per element in
    # _run_batch, against the shared options and that element together.
    module.batch_shared_rules = [rule for rule in constraints.get("required_if") or [] if rule[0] not in argument_spec]
    if module.params.get("batch") is not None:
        beside = sorted(set(basic._load_params() or {}) & set(argument_spec))
        if beside:
            module.fail_json(msg="option batch: set %s in each element of batch, not next to it" % ", ".join(beside))
    return module


def _element_constraints(constraints, argument_spec):
    """The constraints for each element of `batch`: a required_if keyed on a shared option (state)
    can never apply to an element, which does not hold that option, so it is left out there."""
    out = dict(constraints)
    if "required_if" in out:
        out["required_if"] = [rule for rule in out["required_if"] if rule[0] in argument_spec]
        if not out["required_if"]:
            del out["required_if"]
    return out


def client_from_module(module):
    params = dict((k, module.params.get(k)) for k in AUTH_PARAM_NAMES)
    return KubeClient(config_from_params(params), timeout=module.params.get("request_timeout") or 30)


def run_bundle(module, client, objects, waits=None, only_wait=False):
    """Apply (state=present) or delete (state=absent) `objects` as one bundle.

    `waits` maps an object's index to a wait spec; by default each kind's DEFAULT_WAITS is used.
    The bundle's waits share one wait_timeout. With `only_wait`, nothing is written: each object
    (created by something else, a chart say) is read and waited for. Returns the result dict
    (changed, resources, diff)."""
    params = module.params
    timeout = params.get("wait_timeout", 300)
    if only_wait:
        return _wait_only(module, client, objects, waits, timeout)
    engine = ApplyEngine(
        client,
        field_manager=params.get("field_manager") or FIELD_MANAGER,
        force_conflicts=params.get("force_conflicts", False),
        check_mode=module.check_mode,
        read_cache=getattr(module, "batch_read_cache", None),
        terminating_timeout=timeout if params.get("wait") else 0,
    )
    want_diff = bool(module._diff)
    absent = params.get("state", "present") == "absent"
    if absent:
        results, diffs = engine.delete_all(objects, propagation_policy=params.get("delete_propagation", "Foreground"), want_diff=want_diff)
    else:
        results, diffs = engine.apply_all(objects, want_diff=want_diff)
    result = {"changed": any(r["changed"] for r in results), "resources": results}
    if want_diff:
        result["diff"] = diffs
    if not params.get("wait") or module.check_mode:
        return result
    checkpoint(result)
    deadline = wait_deadline(timeout)
    for index, res in enumerate(results):
        if absent:
            spec = {"type": "deleted"} if res["action"] in ("deleted", "terminating") else None
        else:
            spec = (waits or {}).get(index, DEFAULT_WAITS.get(res["kind"]))
        if not spec:
            continue
        rt = engine.resolver.resolve(res["apiVersion"], res["kind"])
        waited = wait_for(client, rt, res["name"], res["namespace"], spec, timeout=timeout, deadline=deadline)
        if not absent:
            res["object"] = strip_server_fields(waited)
    return result


def _wait_only(module, client, objects, waits, timeout):
    """Wait for objects this run does not write, with the same readiness checks as after an apply
    (a ClusterPolicy's operands, an earlier generation's status not counted). Check mode reports
    the wait it would make: what it waits for may be created by a task check mode did not run.

    An object given by metadata.labels instead of metadata.name stands for every object of its
    kind (and namespace) with those labels, such as a chart's Deployments: at least one must
    appear, and each one found is waited for."""
    results, specs = [], []
    for index, obj in enumerate(objects):
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        selector = None
        if isinstance(meta, dict) and not meta.get("name") and isinstance(meta.get("labels"), dict) and meta["labels"]:
            selector = ",".join("%s=%s" % item for item in sorted(meta["labels"].items()))
            obj = dict(obj, metadata=dict(meta, name="(labels %s)" % selector))
        validate_manifest(obj, index)
        specs.append((waits or {}).get(index, DEFAULT_WAITS.get(obj["kind"])))
        if not specs[-1]:
            raise InputError("%s %s: no readiness check is known for this kind; set wait_for" % (obj["kind"], obj["metadata"]["name"]))
        results.append({"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
                        "namespace": obj["metadata"].get("namespace"), "changed": False,
                        "action": "would wait" if module.check_mode else "waited"})
        if selector:
            results[-1]["selector"] = selector
    if module.check_mode:
        return {"changed": False, "resources": results}
    checkpoint({"changed": False, "resources": results})
    resolver = ResourceResolver(client)
    deadline = wait_deadline(timeout)
    waited = []
    for res, spec in zip(results, specs):
        rt = resolver.resolve(res["apiVersion"], res["kind"])
        if not rt.namespaced:
            res["namespace"] = None
        names = _labelled_names(client, rt, res, deadline, timeout) if "selector" in res else [res["name"]]
        for name in names:
            one = dict(res, name=name)
            one["object"] = strip_server_fields(wait_for(client, rt, name, one["namespace"], spec, timeout=timeout, deadline=deadline))
            waited.append(one)
    return {"changed": False, "resources": waited}


def _labelled_names(client, rt, res, deadline, timeout):
    """Names of the objects a label-selected only_wait entry stands for, once at least one exists."""
    while True:
        items = (client.get(rt.collection_path(res["namespace"]), query={"labelSelector": res["selector"]}) or {}).get("items") or []
        if items:
            return sorted(item["metadata"]["name"] for item in items)
        if time.monotonic() >= deadline:
            raise WaitTimeout("no %s labelled %s in namespace %s after %ss" % (res["kind"], res["selector"], res["namespace"], timeout),
                              kind=res["kind"], selector=res["selector"], namespace=res["namespace"])
        pause(1.0)


def execute(module, body):
    """Run `body(client)` (which returns the result dict) and report KubeErrors as one clear failure."""
    client = None
    try:
        client = client_from_module(module)
        shared, runs = _run_params(module)
        if module.params.get("batch") is not None:
            _check_elements(module, runs)  # before anything is sent, the namespaces included
        namespaces = _ensure_namespaces(module, client, runs) if module.params.get("create_namespaces") else None
        if module.params.get("batch") is None:
            result = body(client)
        else:
            result = _run_batch(module, client, body, shared, runs)
        if namespaces is not None:
            result["namespaces"] = namespaces[0]
            result["changed"] = result.get("changed") or any(r["changed"] for r in namespaces[0])
            if module._diff:
                result["diff"] = namespaces[1] + (result.get("diff") or [])
    except KubeError as exc:
        module.fail_json(msg=exc.msg, api_requests=_stats(client), **_details(exc))
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="unexpected error: %s" % exc, exception=traceback.format_exc(), api_requests=_stats(client))
    finally:
        if client is not None:
            client.close()
    result.setdefault("api_requests", _stats(client))
    module.exit_json(**result)


def _ensure_namespaces(module, client, runs):
    """Apply, once each, the namespace of the run or of every batch element with state=present,
    before anything is applied in them (what a role's own namespace task did, in the same call).
    Returns (results, diffs)."""
    names = []
    for params in runs:
        if params.get("state") == "present" and params.get("namespace") and params["namespace"] not in names:
            names.append(params["namespace"])
    engine = ApplyEngine(
        client, field_manager=NAMESPACE_FIELD_MANAGER, force_conflicts=module.params.get("force_conflicts", False), check_mode=module.check_mode
    )
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(MANAGED_BY)}} for name in names]
    return engine.apply_all(namespaces, want_diff=bool(module._diff))


def _run_params(module):
    """(shared options, the options of each run): the module's own, or one set per batch element."""
    if module.params.get("batch") is None:
        return module.params, [module.params]
    shared = dict((k, v) for k, v in module.params.items() if k not in module.batch_option_names and k != "batch")
    return shared, [element_options(shared, element) for element in module.params["batch"]]


def _check_elements(module, runs):
    """The rules keyed on a shared option (required_if state=present), for every element with
    the state it runs with."""
    for index, params in enumerate(runs):
        try:
            # Elements carry every option, unset ones as None; "required" means set.
            check_required_if(module.batch_shared_rules, dict((k, v) for k, v in params.items() if v is not None))
        except TypeError as exc:
            raise InputError("batch[%d] %s: %s (nothing was applied)" % (index, params.get("name") or "", exc))


def _run_batch(module, client, body, shared, element_params):
    """Run `body` once per element of `batch` on the shared client (`element_params`: each
    element's options over the `shared` ones): every element is applied before any of them
    waits, then all wait together against one deadline (see _Batch)."""
    elements = module.params["batch"]
    module.batch_read_cache = {}
    try:
        results = _Batch(module, client, body, element_params).run()
    finally:
        module.batch_read_cache = None
        module.params.clear()
        module.params.update(shared)
        module.params["batch"] = elements
    diffs = []
    for result in results:
        diffs.extend(result.pop("diff", None) or [])
    out = {"changed": any(r.get("changed") for r in results), "batch": results}
    if module._diff:
        out["diff"] = diffs
    return out


def element_options(shared, element):
    """One element's options: its own, over the shared ones; an apply option it leaves unset
    (state, wait, wait_timeout) is the top-level one."""
    params = dict(shared, batch=None)
    params.update((k, v) for k, v in element.items() if v is not None or k not in ELEMENT_APPLY_OPTIONS)
    return params


class _Abandoned(BaseException):
    """Ends an element's thread when another element failed (not an Exception: module code
    that catches errors must not swallow it)."""


class _Batch:
    """Runs each element's body in a thread of its own, but only one thread at a time (it holds
    the turn), so module code stays sequential and module.params holds the running element's
    options. An element gives up its turn where it starts waiting (waiters.checkpoint) and
    whenever a wait sleeps (waiters.pause). First every element runs up to its first wait, so
    all are applied (and read, from the shared list cache) before any waits; then the waiting
    elements take turns at their polls, all against one deadline counted from that moment, and
    every body finishes with its own result (waited objects, summaries) as if run alone."""

    MAIN = -1

    def __init__(self, module, client, body, element_params):
        self.module, self.client, self.body = module, client, body
        self.params = element_params
        self.count = len(element_params)
        self.turn = self.MAIN
        self.cond = threading.Condition()
        self.local = threading.local()
        self.results = [None] * self.count
        self.applied = [None] * self.count
        self.errors = [None] * self.count
        self.done = [False] * self.count
        self.wake = [None] * self.count  # monotonic time to resume a sleeping element
        self.waiting = False  # False while elements are being applied
        self.wait_start = None
        self.abandon = False
        self.threads = []

    # Called from element threads (through waiters) -------------------------------------
    def checkpoint(self, applied=None):
        if applied is not None:
            self.applied[self.local.index] = applied
        if not self.waiting:
            self._give_turn(time.monotonic())

    def pause(self, seconds):
        self._give_turn(time.monotonic() + seconds)

    def _give_turn(self, wake):
        index = self.local.index
        with self.cond:
            self.wake[index] = wake
            self.params[index] = dict(self.module.params)
            self.turn = self.MAIN
            self.cond.notify_all()
            self._await_turn(index)

    def _await_turn(self, index):
        while self.turn != index:
            self.cond.wait()
        if self.abandon:
            raise _Abandoned()

    def _thread(self, index):
        self.local.index = index
        set_batch(self)
        with self.cond:
            try:
                self._await_turn(index)
            except _Abandoned:
                self.done[index] = True
                self.turn = self.MAIN
                self.cond.notify_all()
                return
        try:
            self.results[index] = self.body(self.client)
        except BaseException as exc:  # pylint: disable=broad-except
            self.errors[index] = exc  # raised again from the main thread
        with self.cond:
            self.done[index] = True
            self.turn = self.MAIN
            self.cond.notify_all()

    # Main thread ----------------------------------------------------------------------
    def _run_element(self, index):
        """Give `index` the turn until it gives it back (or finishes); raise its error."""
        with self.cond:
            self.module.params.clear()
            self.module.params.update(self.params[index])
            self.turn = index
            self.cond.notify_all()
            while self.turn != self.MAIN:
                self.cond.wait()
        error = self.errors[index]
        if error is None or isinstance(error, _Abandoned):
            return
        if isinstance(error, KubeError):
            label = self.params[index].get("name") or "#%d" % index
            if self.waiting:
                done = " (all %d elements were applied)" % self.count if self.count > 1 else ""
            else:
                done = " (elements before it were applied)" if index else ""
            error.msg = "batch[%d] %s: %s%s" % (index, label, error.msg, done)
            error.details["batch"] = [self.results[i] or self.applied[i] for i in range(self.count) if i != index and (self.results[i] or self.applied[i])]
        raise error

    def run(self):
        try:
            for index in range(self.count):
                thread = threading.Thread(target=self._thread, args=(index,), name="batch-%d" % index)
                thread.daemon = True
                thread.start()
                self.threads.append(thread)
                self._run_element(index)
            # Everything is applied: reads from here on must be fresh, and the waits start.
            if self.module.batch_read_cache is not None:
                self.module.batch_read_cache.clear()
            self.module.batch_read_cache = None
            self.waiting = True
            self.wait_start = time.monotonic()
            while not all(self.done):
                index = min((i for i in range(self.count) if not self.done[i]), key=lambda i: self.wake[i] or 0)
                delay = (self.wake[index] or 0) - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self._run_element(index)
        finally:
            self._abandon_all()
        return self.results

    def _abandon_all(self):
        """Let every element still parked end its thread (after a failure, or normally none)."""
        self.abandon = True
        for index in range(len(self.threads)):
            if not self.done[index]:
                with self.cond:
                    self.turn = index
                    self.cond.notify_all()
                    while self.turn != self.MAIN:
                        self.cond.wait()
        for thread in self.threads:
            thread.join(5)


def _stats(client):
    return dict(client.stats) if client is not None else {}


def _details(exc):
    keep_none = ("last_status",)  # "no status yet" is itself the news on a timeout
    return dict(
        (k, v) for k, v in exc.details.items() if (v is not None or k in keep_none) and k not in ("msg", "changed", "failed", "api_requests")
    )
