# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Module -> runner glue: build the client once, apply or delete a bundle of manifests, wait,
and turn every engine error into one fail_json."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import traceback

from ansible.module_utils import basic
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.validation import check_required_if

from ansible_collections.aiinfra.cluster.plugins.module_utils.apply import FIELD_MANAGER, ApplyEngine
from ansible_collections.aiinfra.cluster.plugins.module_utils.args_common import (
    APPLY_ARG_SPEC,
    AUTH_ARG_SPEC,
    AUTH_PARAM_NAMES,
    merge_specs,
)
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError, KubeError
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params
from ansible_collections.aiinfra.cluster.plugins.module_utils.waiters import DEFAULT_WAITS, wait_for

BATCH_CONSTRAINTS = ("mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")


def kube_module(argument_spec, with_apply=True, **kwargs):
    """An AnsibleModule with the shared auth (and apply/wait) options.

    Resource modules also get `batch`: a list of option sets, each validated like the module's own
    options. One run then applies them all over one connection, where a loop would start a new
    module process (and connection) per item."""
    kwargs.setdefault("supports_check_mode", True)
    if not with_apply:
        return AnsibleModule(argument_spec=merge_specs(AUTH_ARG_SPEC, argument_spec), **kwargs)
    constraints = dict((k, kwargs.pop(k)) for k in BATCH_CONSTRAINTS if kwargs.get(k))
    batch_spec = dict({"type": "list", "elements": "dict", "options": copy.deepcopy(argument_spec)}, **_element_constraints(constraints, argument_spec))
    top = argument_spec
    if "batch" in (basic._load_params() or {}):
        # The module's own options then come from each element, where required ones are checked.
        top = dict((name, dict((k, v) for k, v in opt.items() if k != "required")) for name, opt in argument_spec.items())
    else:
        kwargs.update(constraints)
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


def run_bundle(module, client, objects, waits=None):
    """Apply (state=present) or delete (state=absent) `objects` as one bundle.

    `waits` maps an object's index to a wait spec; by default each kind's DEFAULT_WAITS is used.
    Returns the result dict (changed, resources, diff)."""
    params = module.params
    engine = ApplyEngine(
        client,
        field_manager=params.get("field_manager") or FIELD_MANAGER,
        force_conflicts=params.get("force_conflicts", False),
        check_mode=module.check_mode,
        read_cache=getattr(module, "batch_read_cache", None),
    )
    want_diff = bool(module._diff)
    if params.get("state", "present") == "absent":
        results, diffs = engine.delete_all(objects, propagation_policy=params.get("delete_propagation", "Foreground"), want_diff=want_diff)
        if params.get("wait") and not module.check_mode:
            for res in results:
                if res["action"] == "deleted":
                    rt = engine.resolver.resolve(res["apiVersion"], res["kind"])
                    wait_for(client, rt, res["name"], res["namespace"], {"type": "deleted"}, timeout=params.get("wait_timeout", 300))
    else:
        results, diffs = engine.apply_all(objects, want_diff=want_diff)
        if params.get("wait") and not module.check_mode:
            for index, res in enumerate(results):
                spec = (waits or {}).get(index, DEFAULT_WAITS.get(res["kind"]))
                if not spec:
                    continue
                rt = engine.resolver.resolve(res["apiVersion"], res["kind"])
                res["object"] = wait_for(client, rt, res["name"], res["namespace"], spec, timeout=params.get("wait_timeout", 300))
    result = {"changed": any(r["changed"] for r in results), "resources": results}
    if want_diff:
        result["diff"] = diffs
    return result


def execute(module, body):
    """Run `body(client)` (which returns the result dict) and report KubeErrors as one clear failure."""
    client = None
    try:
        client = client_from_module(module)
        if module.params.get("batch") is None:
            result = body(client)
        else:
            result = _run_batch(module, client, body)
    except KubeError as exc:
        module.fail_json(msg=exc.msg, api_requests=_stats(client), **_details(exc))
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="unexpected error: %s" % exc, exception=traceback.format_exc(), api_requests=_stats(client))
    finally:
        if client is not None:
            client.close()
    result.setdefault("api_requests", _stats(client))
    module.exit_json(**result)


def _run_batch(module, client, body):
    """Run `body` once per element of `batch` on the shared client; module.params is updated in
    place because modules keep a reference to it."""
    shared = dict((k, v) for k, v in module.params.items() if k not in module.batch_option_names and k != "batch")
    elements = module.params["batch"]
    results, diffs = [], []
    for index, element in enumerate(elements):
        try:
            # Elements carry every option, unset ones as None; "required" means set.
            check_required_if(module.batch_shared_rules, dict((k, v) for k, v in dict(shared, **element).items() if v is not None))
        except TypeError as exc:
            raise InputError("batch[%d] %s: %s (nothing was applied)" % (index, element.get("name") or "", exc))
    module.batch_read_cache = {}
    for index, element in enumerate(elements):
        module.params.clear()
        module.params.update(shared)
        module.params.update(element)
        module.params["batch"] = None
        try:
            result = body(client)
        except KubeError as exc:
            label = element.get("name") or "#%d" % index
            done = " (elements before it were applied)" if index else ""
            exc.msg = "batch[%d] %s: %s%s" % (index, label, exc.msg, done)
            exc.details["batch"] = results
            raise
        diffs.extend(result.pop("diff", None) or [])
        results.append(result)
    module.params.clear()
    module.params.update(shared)
    module.params["batch"] = elements
    out = {"changed": any(r.get("changed") for r in results), "batch": results}
    if module._diff:
        out["diff"] = diffs
    return out


def _stats(client):
    return dict(client.stats) if client is not None else {}


def _details(exc):
    keep_none = ("last_status",)  # "no status yet" is itself the news on a timeout
    return dict(
        (k, v) for k, v in exc.details.items() if (v is not None or k in keep_none) and k not in ("msg", "changed", "failed", "api_requests")
    )
