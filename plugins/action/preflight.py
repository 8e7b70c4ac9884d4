# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The preflight: on the controller, validate the variables of every role the run includes and
build the plan from them (plugin_utils/preflight_plan); then run the preflight module, in
process where it can (plugin_utils/in_process), which checks the plan against the cluster."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time

from ansible.errors import AnsibleActionFail

from ansible_collections.aiinfra.cluster.plugins.plugin_utils.in_process import InProcessModuleAction
from ansible_collections.aiinfra.cluster.plugins.plugin_utils.preflight_plan import (
    TIER_OF,
    TIERS,
    RunVariables,
    build_plan,
    compatibility_data,
    included_roles,
    role_spec,
    validate_role,
)


class ActionModule(InProcessModuleAction):
    def run(self, tmp=None, task_vars=None):
        started = time.monotonic()
        task_vars = task_vars or {}
        args = dict(self._task.args)
        tiers = args.pop("tiers", None) or [tier for tier, _roles in TIERS]
        unknown = sorted(set(tiers) - set(t for t, _r in TIERS))
        if unknown:
            raise AnsibleActionFail("option tiers: unknown tier(s) %s (use nodes, platform, workloads)" % ", ".join(unknown))
        if not args.get("plan"):
            groups = task_vars.get("groups") or {}
            probe = RunVariables(self._templar, self._loader, task_vars, [])
            roles = included_roles(probe, tiers, groups)
            cluster_roles = [r for r in roles if TIER_OF[r] != "nodes"]
            variables = RunVariables(self._templar, self._loader, task_vars, cluster_roles)
            findings = list(args.get("findings") or [])
            for role in cluster_roles:
                findings += validate_role(role, variables, variables.provided)
            findings += self._validate_node_roles([r for r in roles if TIER_OF[r] == "nodes"], task_vars, groups.get("gpu_nodes") or [])
            plan, more = build_plan(variables, cluster_roles, compatibility_data())
            findings += more
            if not [f for f in findings if f.get("verdict") == "fail"]:
                findings.append({"check": "variables", "object": "%d roles" % len(roles), "verdict": "ok",
                                 "why": "valid against their argument specs: %s" % (", ".join(roles) or "none"), "fix": ""})
            args["findings"], args["plan"] = findings, plan
        self._task.args = args
        result = super(ActionModule, self).run(tmp, task_vars)
        result["duration_s"] = round(time.monotonic() - started, 3)
        return result

    def _validate_node_roles(self, roles, task_vars, hosts):
        """The node tier's roles with each GPU host's own variables; hosts whose variables for
        those roles are the same are validated once."""
        if not roles or not hosts:
            return []
        names = set()
        for role in roles:
            names.update(role_spec(role).get("options") or {})
        hostvars = task_vars.get("hostvars")
        seen, findings = {}, []
        for host in hosts:
            raw = dict(hostvars.raw_get(host)) if hostvars is not None else {}
            key = json.dumps(dict((k, raw[k]) for k in sorted(names) if k in raw), sort_keys=True, default=str)
            if key in seen:
                seen[key].append(host)
                continue
            seen[key] = [host]
            variables = RunVariables(self._templar, self._loader, raw, roles)
            for role in roles:
                rows = validate_role(role, variables, set(k for k in raw if k in names), host_label=" on %s" % host)
                findings.extend(rows)
        return findings
