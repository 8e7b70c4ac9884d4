# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Module -> runner glue: build the client once, apply or delete a bundle of manifests, wait,
and turn every engine error into one fail_json."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiinfra.cluster.plugins.module_utils.apply import ApplyEngine
from ansible_collections.aiinfra.cluster.plugins.module_utils.args_common import (
    APPLY_ARG_SPEC,
    AUTH_ARG_SPEC,
    AUTH_PARAM_NAMES,
    merge_specs,
)
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import KubeError
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params
from ansible_collections.aiinfra.cluster.plugins.module_utils.waiters import DEFAULT_WAITS, wait_for


def kube_module(argument_spec, with_apply=True, **kwargs):
    """An AnsibleModule with the shared auth (and apply/wait) options."""
    specs = [AUTH_ARG_SPEC, APPLY_ARG_SPEC, argument_spec] if with_apply else [AUTH_ARG_SPEC, argument_spec]
    kwargs.setdefault("supports_check_mode", True)
    return AnsibleModule(argument_spec=merge_specs(*specs), **kwargs)


def client_from_module(module):
    params = dict((k, module.params.get(k)) for k in AUTH_PARAM_NAMES)
    return KubeClient(config_from_params(params), timeout=module.params.get("request_timeout") or 30)


def run_bundle(module, client, objects, waits=None):
    """Apply (state=present) or delete (state=absent) `objects` as one bundle.

    `waits` maps an object's index to a wait spec; by default each kind's DEFAULT_WAITS is used.
    Returns the result dict (changed, resources, diff)."""
    params = module.params
    engine = ApplyEngine(client, force_conflicts=params.get("force_conflicts", False), check_mode=module.check_mode)
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
        result = body(client)
    except KubeError as exc:
        module.fail_json(msg=exc.msg, api_requests=_stats(client), **_details(exc))
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="unexpected error: %s" % exc, exception=traceback.format_exc(), api_requests=_stats(client))
    finally:
        if client is not None:
            client.close()
    result.setdefault("api_requests", _stats(client))
    module.exit_json(**result)


def _stats(client):
    return dict(client.stats) if client is not None else {}


def _details(exc):
    return dict((k, v) for k, v in exc.details.items() if v is not None and k not in ("msg", "changed", "failed", "api_requests"))
