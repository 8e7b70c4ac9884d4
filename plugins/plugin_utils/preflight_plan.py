# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The controller half of the preflight: which roles the run includes, their variables checked
against each role's meta/argument_specs.yml (every error, not the first), and the plan the
preflight module checks against the cluster, read from the same role variables the roles use
(their defaults, the inventory, their vars/main.yml), so the plan is what the modules will get."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import importlib
import json
import os

import yaml

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

from ansible_collections.aiinfra.cluster.plugins.module_utils.runner import ELEMENT_APPLY_OPTIONS

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# site.yml's roles, tier by tier, in the order the tiers run them.
TIERS = (
    ("nodes", ("nvidia_driver", "nvidia_container_toolkit", "gpu_node_tuning")),
    ("platform", ("gpu_operator", "gpu_scheduling", "kserve", "fluid", "training_platform")),
    ("workloads", ("mesh_security", "datasets", "model_serving", "observability", "training")),
)
TIER_OF = dict((role, tier) for tier, roles in TIERS for role in roles)
# Workload entries as their role hands them to the modules: plan key -> (role, variable of the
# module call's batch built in the role's vars/main.yml, the role's state an entry inherits).
WORKLOAD_BATCHES = (
    ("training_jobs", "training", "training_batch", "training_state"),
    ("inference_services", "model_serving", "model_serving_inference_service_batch", "model_serving_state"),
    ("triton_servers", "model_serving", "model_serving_triton_batch", "model_serving_state"),
    ("tensorboards", "observability", "observability_tensorboard_batch", "observability_state"),
    ("fluid_datasets", "datasets", "datasets_fluid", "datasets_state"),
    ("dvc_data", "datasets", "datasets_dvc_batch", "datasets_state"),
)
# The module each workload list's entries go to (one batch element per entry).
ROLE_ENTRY_MODULES = {
    "mesh_security": (("mesh_security_policies", "istio_policy"),),
    "datasets": (("datasets_fluid", "fluid_dataset"), ("datasets_dvc", "data_version")),
    "model_serving": (("model_serving_inference_services", "inference_service"), ("model_serving_triton_servers", "triton_server")),
    "observability": (("observability_tensorboards", "tensorboard"),),
    "training": (("training_jobs", "training_job"),),
}
_ENTRY_SPECS = {}
# Namespaces the platform roles install into (the permission reviews ask there).
PLATFORM_NAMESPACES = {
    "gpu_operator": ("gpu_operator_namespace",),
    "kserve": ("kserve_namespace", "kserve_cert_manager_namespace"),
    "fluid": ("fluid_namespace",),
    "training_platform": ("training_platform_trainer_namespace", "training_platform_jobset_namespace"),
}
RBAC_FILES = {"platform": "rbac/platform.yml", "workloads": "rbac/workloads.yml"}
FIX_VARIABLE = "fix it in the inventory (the role's options: roles/%s/meta/argument_specs.yml)"
FIX_ENTRY = "fix the entry in the inventory (its options: ansible-doc aiinfra.cluster.%s)"


def finding(obj, why, fix, verdict="fail"):
    return {"check": "variables", "object": obj, "verdict": verdict, "why": why, "fix": fix}


def read_yaml(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def compatibility_data():
    return read_yaml(os.path.join(COLLECTION_ROOT, "meta", "compatibility.yml"))


def role_spec(role):
    path = os.path.join(COLLECTION_ROOT, "roles", role, "meta", "argument_specs.yml")
    return ((read_yaml(path) or {}).get("argument_specs") or {}).get("main") or {}


def rbac_rules(relative):
    """The rules of the ClusterRoles/Roles in one rbac/ file."""
    rules = []
    for item in (read_yaml(os.path.join(COLLECTION_ROOT, relative)) or {}).get("items") or []:
        if item.get("kind") in ("ClusterRole", "Role"):
            rules.extend(item.get("rules") or [])
    return rules


class RunVariables:
    """The variables a role sees: its defaults, under the play's variables (inventory, extra vars),
    under its vars/main.yml; rendered on demand with the play's templar."""

    def __init__(self, templar, loader, task_vars, roles):
        self.merged = {}
        for role in roles:
            self.merged.update(self._load(loader, role, "defaults"))
        self.provided = set(task_vars)
        self.merged.update(task_vars)
        for role in roles:
            self.merged.update(self._load(loader, role, "vars"))
        self.templar = templar.copy_with_new_env(available_variables=self.merged)

    @staticmethod
    def _load(loader, role, folder):
        path = os.path.join(COLLECTION_ROOT, "roles", role, folder, "main.yml")
        if not os.path.exists(path):
            return {}
        try:  # ansible-core 2.19+: the role's own files are trusted templates, as when the role runs
            data = loader.load_from_file(path, trusted_as_template=True)
        except TypeError:
            data = loader.load_from_file(path)
        return dict(data or {})

    def has(self, name):
        return name in self.merged

    def get(self, name, default=None):
        """The rendered value; `default` when the variable is not set. Rendering errors propagate."""
        if name not in self.merged:
            return default
        return self.templar.template(self.merged[name])


def _jsonable(value):
    """Rendered values as plain data (the module arguments and the validator want no tagged types)."""
    return json.loads(json.dumps(value, default=str))


def validate_role(role, variables, names_provided, host_label=""):
    """Every error of the role's variables against its argument spec, as rows."""
    spec = role_spec(role)
    options = spec.get("options") or {}
    values, rows = {}, []
    obj = "role %s%s" % (role, host_label)
    for name in options:
        if not variables.has(name):
            continue
        try:
            values[name] = _jsonable(variables.get(name))
        except Exception as exc:  # pylint: disable=broad-except
            if name in names_provided:
                rows.append(finding(obj, "%s cannot be rendered: %s" % (name, exc), FIX_VARIABLE % role))
    result = ArgumentSpecValidator(options).validate(values, validate_role_argument_spec=True)
    rows.extend(finding(obj, message, FIX_VARIABLE % role) for message in result.error_messages)
    for name, module in ROLE_ENTRY_MODULES.get(role, ()):
        if isinstance(values.get(name), list):
            rows.extend(finding(obj, message, FIX_ENTRY % module) for message in entry_errors(name, values[name], module))
    return rows


def entry_errors(name, entries, module):
    """What the module would refuse in each entry of a role's list: unknown options (with the
    closest known one), wrong types and choices. The role's argument spec does not repeat the
    module's options, so this is where a typo in an entry is caught before any tier runs."""
    spec = module_entry_spec(module)
    messages = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue  # the role's spec (elements: dict) reports it
        label = "%s[%d]%s" % (name, index, " (%s)" % entry["name"] if isinstance(entry.get("name"), str) else "")
        result = ArgumentSpecValidator(spec).validate(dict(entry))
        # Unknown options, nested ones as (parent, ..., name): each with the closest sibling.
        paths = [[str(part) for part in (key if isinstance(key, tuple) else (key,))] for key in result.unsupported_parameters]
        for path in sorted(paths):
            siblings = spec
            for part in path[:-1]:
                siblings = (siblings.get(part) or {}).get("options") or {}
            close = difflib.get_close_matches(path[-1], list(siblings), n=1)
            messages.append("%s: %s is not an option of aiinfra.cluster.%s%s"
                            % (label, ".".join(path), module, " (did you mean %s?)" % ".".join(path[:-1] + close) if close else ""))
        messages.extend("%s: %s" % (label, error.msg) for error in result.errors.errors if not isinstance(error, UnsupportedError))
    return messages


def module_entry_spec(module):
    """The options a batch element of `module` takes (its own, and state/wait/wait_timeout)."""
    if module not in _ENTRY_SPECS:
        imported = importlib.import_module("ansible_collections.aiinfra.cluster.plugins.modules.%s" % module)
        _ENTRY_SPECS[module] = dict(imported.ARGUMENT_SPEC, **ELEMENT_APPLY_OPTIONS)
    return _ENTRY_SPECS[module]


def _truthy(value):
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y")
    return bool(value)


def included_roles(variables, tiers, groups):
    """The roles the run includes: the asked tiers, the tier's host group not empty, and
    aiinfra_<role>_enabled not false (node roles have no switch)."""
    roles = []
    for tier, names in TIERS:
        if tier not in tiers:
            continue
        group = "gpu_nodes" if tier == "nodes" else "k8s_control"
        if not (groups.get(group) or []):
            continue
        for role in names:
            if tier == "nodes" or _truthy(variables.get("aiinfra_%s_enabled" % role, True)):
                roles.append(role)
    return roles


def component_installed(comp, variables, roles):
    if comp["role"] not in roles or variables.get("%s_state" % comp["role"], "present") != "present":
        return False
    for name in comp.get("enabled") or []:
        # The aiinfra_<role>_enabled switches default to true; role options must be set.
        default = name.startswith("aiinfra_") and name.endswith("_enabled")
        if not _truthy(variables.get(name, default)):
            return False
    return True


def _batch_entries(elements, state):
    """The elements of a role's batch, each with the state it runs with (its own or the role's)."""
    return [dict(element, state=element.get("state") or state) for element in elements or []]


def build_plan(variables, roles, data):
    """The preflight module's `plan` for a run of `roles`. Rendering errors of a role's variables
    are returned as findings (its workloads are then left out of the plan)."""
    findings = []
    components, groups_installed = [], set()
    for comp in data.get("components") or []:
        if not component_installed(comp, variables, roles):
            continue
        kube = comp.get("kubernetes") or {}
        components.append({"name": comp["name"], "version": str(variables.get(comp["version_var"], "") or ""),
                           "kubernetes_min": kube.get("min"), "kubernetes_max": kube.get("max"),
                           "validated": kube.get("validated"), "source": comp.get("source")})
        groups_installed.update(comp.get("crd_groups") or [])

    workloads = {}
    for key, role, name, state in WORKLOAD_BATCHES:
        if role not in roles:
            continue
        try:
            workloads[key] = _jsonable(_batch_entries(variables.get(name), variables.get(state, "present")))
        except Exception as exc:  # pylint: disable=broad-except
            findings.append(finding("role %s" % role, "%s cannot be rendered, its workloads are not checked: %s" % (name, exc), FIX_VARIABLE % role))
    istio_required = False
    if "mesh_security" in roles and variables.get("mesh_security_state", "present") == "present":
        workloads["istio_policies"] = _jsonable(variables.get("mesh_security_policies", []) or [])
        workloads["istio_policies"] += [{"name": "default", "namespace": ns} for ns in variables.get("mesh_security_strict_mtls_namespaces", []) or []]
        istio_required = _truthy(variables.get("mesh_security_require_istio", False))

    created, teams = {"priority_classes": []}, []
    scheduling = "gpu_scheduling" in roles and variables.get("gpu_scheduling_state", "present") == "present"
    if scheduling:
        created["priority_classes"] = [pc.get("name") for pc in variables.get("gpu_scheduling_priority_classes", []) or [] if isinstance(pc, dict)]
        teams = _jsonable([t for t in variables.get("gpu_scheduling_teams", []) or [] if isinstance(t, dict)])
        if _truthy(variables.get("gpu_scheduling_kueue_enabled", False)):
            # The queueing layer gives every team namespace its LocalQueue.
            queue = str(variables.get("gpu_scheduling_local_queue_name", "gpu"))
            created["local_queues"] = ["%s/%s" % (t.get("name"), queue) for t in teams if t.get("name")]

    operator = {"in_run": "gpu_operator" in roles and variables.get("gpu_operator_state", "present") == "present"}
    if operator["in_run"]:
        operator["mig_strategy"] = variables.get("gpu_operator_mig_strategy")
        operator["mig_configs"] = _jsonable(variables.get("gpu_operator_mig_configs", {}) or {})

    plan = {
        "components": components,
        "crd_groups_installed": sorted(groups_installed),
        "permissions": permission_scopes(variables, roles, workloads, teams),
        "workloads": workloads,
        "created": created,
        "teams": teams,
        "quota_resource": str(variables.get("gpu_scheduling_gpu_resource", "nvidia.com/gpu")) if scheduling else "nvidia.com/gpu",
        "gpu_operator": operator,
        "cuda": {"min_driver": dict((str(k), int(v)) for k, v in ((data.get("cuda_min_driver") or {}).get("branches") or {}).items()),
                 "images": [dict((k, v) for k, v in rule.items() if k in ("tag", "ngc_from", "cuda")) for rule in data.get("cuda_images") or []]},
        "istio_required": istio_required,
    }
    return plan, findings


def permission_scopes(variables, roles, workloads, teams):
    """What the run needs, from rbac/: the platform account's rules where a platform role runs,
    the workload account's where a workload role runs, each in the namespaces it works in."""
    scopes = []
    tiers = set(TIER_OF[r] for r in roles)
    if "platform" in tiers:
        namespaces = {str(variables.get("aiinfra_system_namespace", "aiinfra-system"))}
        for role in roles:
            for name in PLATFORM_NAMESPACES.get(role, ()):
                if variables.has(name):
                    namespaces.add(str(variables.get(name)))
        namespaces.update(str(t.get("name")) for t in teams if t.get("name"))
        scopes.append({"source": RBAC_FILES["platform"], "namespaces": sorted(namespaces), "rules": rbac_rules(RBAC_FILES["platform"])})
    if "workloads" in tiers:
        namespaces = set()
        for entries in workloads.values():
            namespaces.update(str(e.get("namespace") or "default") for e in entries)
        if "observability" in roles and _truthy(variables.get("observability_dcgm_exporter_enabled", False)):
            namespaces.add(str(variables.get("observability_namespace", "gpu-monitoring")))
        if namespaces:
            scopes.append({"source": RBAC_FILES["workloads"], "namespaces": sorted(namespaces), "rules": rbac_rules(RBAC_FILES["workloads"])})
    return scopes
