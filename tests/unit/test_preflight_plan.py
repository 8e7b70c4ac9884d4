"""The controller half of the preflight: every bad variable of every included role in one report,
roles switched off left out, and the plan read from the roles' own variables."""

import pytest

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.aiinfra.cluster.plugins.plugin_utils import preflight_plan as plan_mod

GROUPS = {"k8s_control": ["localhost"], "gpu_nodes": []}


def variables(inventory, roles):
    loader = DataLoader()
    templar = Templar(loader=loader, variables={})
    task_vars = dict(inventory, groups=GROUPS)
    return plan_mod.RunVariables(templar, loader, task_vars, roles)


def test_included_roles_follow_switches_and_groups():
    probe = variables({"aiinfra_fluid_enabled": False}, [])
    roles = plan_mod.included_roles(probe, ["nodes", "platform", "workloads"], GROUPS)
    assert "fluid" not in roles and "kserve" in roles and "training" in roles
    assert "nvidia_driver" not in roles  # gpu_nodes is empty
    assert plan_mod.included_roles(probe, ["workloads"], GROUPS)[0] == "mesh_security"
    with_nodes = plan_mod.included_roles(probe, ["nodes"], dict(GROUPS, gpu_nodes=["gpu-1"]))
    assert with_nodes == ["nvidia_driver", "nvidia_container_toolkit", "gpu_node_tuning"]


def test_every_bad_variable_in_one_report():
    bad = {"observability_state": "maybe", "training_wait_timeout": "soon", "kserve_deployment_mode": "Serverless"}
    roles = ["kserve", "observability", "training"]
    run = variables(bad, roles)
    rows = []
    for role in roles:
        rows += plan_mod.validate_role(role, run, run.provided)
    text = "\n".join(r["why"] for r in rows)
    assert len(rows) == 3, rows
    assert "observability_state must be one of" in text and "training_wait_timeout" in text and "kserve_deployment_mode" in text
    good = variables({}, roles)
    assert [r for role in roles for r in plan_mod.validate_role(role, good, good.provided)] == []


def test_plan_from_the_roles_variables():
    """The platform part of the plan (the workload entries, rendered through the roles' batch_elements
    filter, are covered where ansible-playbook loads the collection: tests/integration/test_preflight.py)."""
    inventory = {
        "gpu_scheduling_teams": [{"name": "team-a", "gpu_quota": 8}],
        "training_platform_jobset_enabled": True,
        "kserve_cert_manager_enabled": False,
        "gpu_scheduling_kueue_enabled": False,
    }
    roles = ["gpu_operator", "gpu_scheduling", "kserve", "training_platform"]
    plan, findings = plan_mod.build_plan(variables(inventory, roles), roles, plan_mod.compatibility_data())
    assert findings == []
    assert [c["name"] for c in plan["components"]] == ["NVIDIA GPU Operator", "KServe", "Kubeflow Trainer", "JobSet"]
    assert plan["components"][0]["version"] == "v26.7.0" and plan["components"][0]["kubernetes_min"] == "1.29"
    assert "trainer.kubeflow.org" in plan["crd_groups_installed"] and "data.fluid.io" not in plan["crd_groups_installed"]
    assert plan["created"]["priority_classes"] == ["gpu-inference", "gpu-training", "gpu-preemptible"]
    assert plan["teams"] == [{"name": "team-a", "gpu_quota": 8}]
    assert plan["gpu_operator"] == {"in_run": True, "mig_strategy": "single", "mig_configs": {}}
    scopes = dict((s["source"], s) for s in plan["permissions"])
    assert list(scopes) == ["rbac/platform.yml"]
    assert set(["team-a", "kserve", "gpu-operator", "aiinfra-system"]) <= set(scopes["rbac/platform.yml"]["namespaces"])
    assert plan["cuda"]["min_driver"]["13"] == 580
    # Kueue comes with gpu_scheduling's queueing layer.
    inventory["gpu_scheduling_kueue_enabled"] = True
    plan, findings = plan_mod.build_plan(variables(inventory, roles), roles, plan_mod.compatibility_data())
    assert "Kueue" in [c["name"] for c in plan["components"]] and "kueue.x-k8s.io" in plan["crd_groups_installed"]
    assert plan["created"]["local_queues"] == ["team-a/gpu"]  # the LocalQueue the queueing layer gives each team


@pytest.mark.parametrize("value", ["not a list", [{"namespace": "x"}]])
def test_a_broken_workload_list_is_reported_not_crashed(value):
    roles = ["training"]
    run = variables({"training_jobs": value}, roles)
    rows = plan_mod.validate_role("training", run, run.provided)
    assert rows and all(r["verdict"] == "fail" for r in rows), rows
