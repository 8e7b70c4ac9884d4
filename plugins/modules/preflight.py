#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: preflight
short_description: Says, read-only and in seconds, whether a site run will work and whether it would hurt anything
version_added: 0.1.0
author: aiinfra.cluster contributors (@aiinfra)
description:
  - Checks a planned run of the collection against the cluster and reports one table (check, object,
    verdict, why, how to fix) - the first play of C(playbooks/site.yml), also run alone as
    C(aiinfra.cluster.preflight).
  - "Checks: the API server is reachable with the given credentials; its version is inside the range of every
    component the run installs (C(meta/compatibility.yml)); the account holds the permissions of C(rbac/) the run
    needs (one SelfSubjectRulesReview per namespace); the CRDs of the workloads' kinds are served or installed by the
    run; GPU workloads fit a node of their product, the cluster and the team quota; the nodes' driver branch runs
    the CUDA version of the images; the MIG strategy matches the nodes; every PVC, Secret, ServiceAccount,
    PriorityClass, LocalQueue and Dataset the workloads name exists or is created by the run."
  - Sends no write request. The permission reviews are POSTs the API server answers without storing anything.
    Every other request is a list (metadata only where names suffice), paginated, so the requests grow with
    pages, not nodes or workloads.
  - Used through its action plugin, which validates the variables of every role of the run against the roles'
    argument specs first and builds O(plan) from the inventory; called directly, O(plan) is given by hand.
options:
  mode:
    description:
      - V(enforce) fails when a check fails; V(warn) reports the same table and succeeds.
    type: str
    choices: [enforce, warn]
    default: enforce
  tiers:
    description:
      - The tiers of C(site.yml) the run includes; the action plugin validates the variables of their roles and
        builds O(plan) from them (a tier whose host group is empty, and a role switched off with
        C(aiinfra_<role>_enabled=false), are left out). Not used when O(plan) is given.
    type: list
    elements: str
    choices: [nodes, platform, workloads]
    default: [nodes, platform, workloads]
  findings:
    description:
      - Rows found before the cluster was asked (the action plugin's variable validation), put in the same table.
    type: list
    elements: dict
    default: []
  plan:
    description:
      - What the run will do. The action plugin builds it from the roles and the inventory.
    type: dict
    default: {}
    suboptions:
      components:
        description:
          - Components the run installs, with their Kubernetes range (C(name), C(version), C(kubernetes_min),
            C(kubernetes_max), C(validated), C(source)).
        type: list
        elements: dict
      crd_groups_installed:
        description: API groups whose CRDs a component of this run installs.
        type: list
        elements: str
      permissions:
        description:
          - What the run needs, as RBAC rules (C(apiGroups), C(resources), C(verbs)) with the namespaces they are
            needed in (C(namespaces)) and where they come from (C(source), for example C(rbac/platform.yml)).
        type: list
        elements: dict
      workloads:
        description:
          - The workload entries as the modules get them, by key C(training_jobs), C(inference_services),
            C(triton_servers), C(tensorboards), C(fluid_datasets), C(dvc_data), C(istio_policies).
        type: dict
      created:
        description:
          - Objects the run creates before its workloads need them, by key C(priority_classes) (names) and
            C(pvcs), C(secrets), C(service_accounts), C(local_queues), C(datasets) (C(namespace/name)).
        type: dict
      teams:
        description: Team namespaces with C(gpu_quota) and C(max_gpus_per_pod) the run applies (gpu_scheduling_teams).
        type: list
        elements: dict
      quota_resource:
        description: The extended resource team quotas count.
        type: str
      gpu_operator:
        description: C(in_run) (the run installs the GPU Operator), C(mig_strategy), C(mig_configs).
        type: dict
      driver_branch_after_run:
        description: The driver branch the node tier of this run installs on the GPU nodes, when it runs.
        type: int
      cuda:
        description: C(min_driver) (CUDA major -> lowest driver branch) and C(images) (image -> CUDA rules) from C(meta/compatibility.yml).
        type: dict
      istio_required:
        description: Missing Istio CRDs fail the mesh policies instead of a warning (mesh_security_require_istio).
        type: bool
  page_size:
    description: Items per list request.
    type: int
    default: 500
extends_documentation_fragment:
  - aiinfra.cluster.auth
attributes:
  check_mode:
    support: full
    details: The module never changes anything; check mode runs every check.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
# Normally the first play of site.yml (playbooks/preflight.yml) runs it with a plan built from the
# inventory. Called directly:
- name: Will a 9-GPU job fit?
  aiinfra.cluster.preflight:
    mode: warn
    plan:
      workloads:
        training_jobs:
          - {name: big, namespace: team-a, nodes: 1, gpus_per_node: 9, gpu_product: NVIDIA-H100-80GB-HBM3}
  register: preflight

- name: Show the table
  ansible.builtin.debug:
    msg: "{{ preflight.table }}"
"""

RETURN = r"""
verdict:
  description: The worst verdict of all rows (C(fail), C(warn) or C(ok); C(skip) rows do not count).
  returned: always
  type: str
  sample: ok
checks:
  description: One entry per row (on failure the same rows are in RV(table)).
  returned: success
  type: list
  elements: dict
  sample:
    - {check: gpu capacity, object: training_job team-a/big, verdict: fail,
       why: asks 9 nvidia.com/gpu per pod; the largest of the 4 NVIDIA-H100-80GB-HBM3 nodes has 8 allocatable,
       fix: ask at most 8 per pod (spread the work over more pods/nodes)}
table:
  description: The rows as text lines (check | object | verdict | why | fix).
  returned: always
  type: list
  elements: str
summary:
  description: Rows per verdict.
  returned: always
  type: dict
  sample: {fail: 1, warn: 0, ok: 9, skip: 2}
api_requests:
  description: API requests sent, by HTTP verb (the POSTs are access reviews, which store nothing).
  returned: always
  type: dict
  sample: {GET: 9, POST: 6}
"""

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ConfigError, ConnectionFailed, KubeError
from ansible_collections.aiinfra.cluster.plugins.module_utils.preflight import VERDICTS, overall, render_table, row, run_preflight
from ansible_collections.aiinfra.cluster.plugins.module_utils.runner import execute, kube_module

PLAN_SPEC = {
    "components": {"type": "list", "elements": "dict"},
    "crd_groups_installed": {"type": "list", "elements": "str"},
    "permissions": {"type": "list", "elements": "dict"},
    "workloads": {"type": "dict"},
    "created": {"type": "dict"},
    "teams": {"type": "list", "elements": "dict"},
    "quota_resource": {"type": "str"},
    "gpu_operator": {"type": "dict"},
    "driver_branch_after_run": {"type": "int"},
    "cuda": {"type": "dict"},
    "istio_required": {"type": "bool"},
}


def main():
    module = kube_module(
        {
            "mode": {"type": "str", "default": "enforce", "choices": ["enforce", "warn"]},
            "tiers": {"type": "list", "elements": "str", "choices": ["nodes", "platform", "workloads"], "default": ["nodes", "platform", "workloads"]},
            "findings": {"type": "list", "elements": "dict", "default": []},
            "plan": {"type": "dict", "default": {}, "options": PLAN_SPEC},
            "page_size": {"type": "int", "default": 500},
        },
        with_apply=False,
    )
    params = module.params
    if params["page_size"] < 1:
        module.fail_json(msg="page_size must be a positive number, got %d" % params["page_size"])

    def body(client):
        rows = [dict((k, f.get(k, "")) for k in ("check", "object", "verdict", "why", "fix")) for f in params["findings"]]
        try:
            rows += run_preflight(client, dict((k, v) for k, v in (params["plan"] or {}).items() if v is not None), params["page_size"])
        except (ConnectionFailed, ConfigError) as exc:
            rows.append(row("api", client.config.server if client is not None else "", "fail", exc.msg,
                            "check the connection options (kubeconfig, context, host) or module_defaults group/aiinfra.cluster.k8s"))
        order = dict((v, i) for i, v in enumerate(VERDICTS))
        rows.sort(key=lambda r: order.get(r["verdict"], len(order)))
        verdict = overall(rows)
        result = {
            "changed": False,
            "verdict": verdict,
            "checks": rows,
            "table": render_table(rows),
            "summary": dict((v, sum(1 for r in rows if r["verdict"] == v)) for v in VERDICTS),
        }
        if verdict == "fail" and params["mode"] == "enforce":
            failed = [r for r in rows if r["verdict"] == "fail"]
            # The table says it all (the playbook shows it); the rows as data only on success.
            details = dict((k, v) for k, v in result.items() if k != "checks")
            raise KubeError("preflight refused the run before any change: %d check(s) failed: %s" % (
                len(failed), "; ".join("%s %s: %s" % (r["check"], r["object"], r["why"]) for r in failed[:10])), **details)
        return result

    execute(module, body)


if __name__ == "__main__":
    main()
