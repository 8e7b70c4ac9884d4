"""A workload role's inventory entries are checked against the module they are handed to: the
role's argument spec points at the module (it does not repeat the module's options, which drifted:
model_serving once refused gpu_allocation, gpu_selector and queue_name), and the preflight checks
every entry against the module's own options before any tier runs."""

import os

import pytest
import yaml

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.aiinfra.cluster.plugins.plugin_utils import preflight_plan as plan_mod

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKLOAD_ROLES = dict(plan_mod.TIERS)["workloads"]


def role_options(role):
    with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")) as handle:
        return yaml.safe_load(handle)["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("role", WORKLOAD_ROLES)
def test_every_entry_list_names_its_module(role):
    lists = sorted(name for name, opt in role_options(role).items() if opt.get("type") == "list" and opt.get("elements") == "dict")
    mapped = dict(plan_mod.ROLE_ENTRY_MODULES.get(role, ()))
    assert sorted(mapped) == lists
    for name, module in mapped.items():
        option = role_options(role)[name]
        # The role accepts whatever the module accepts: no option list of its own to drift.
        assert "options" not in option
        assert "M(aiinfra.cluster.%s)" % module in " ".join(option["description"])


def check(role, inventory):
    loader = DataLoader()
    run = plan_mod.RunVariables(Templar(loader=loader, variables={}), loader, dict(inventory, groups={"k8s_control": ["localhost"]}), [role])
    return [row["why"] for row in plan_mod.validate_role(role, run, run.provided)]


def test_every_module_option_is_taken_and_a_typo_is_named_with_its_fix():
    for role, lists in plan_mod.ROLE_ENTRY_MODULES.items():
        for name, module in lists:
            every = dict((option, None) for option in plan_mod.module_entry_spec(module))
            assert [why for why in check(role, {name: [every]}) if "is not an option" in why] == []
    entry = {"name": "llm", "namespace": "serving", "model_format": {"name": "onnx"}, "gpu_allocation": "dra", "gpu_selector": {"product": "H100"},
             "queue_name": "gpu", "state": "absent", "wait": False, "wait_timeout": 30}
    assert check("model_serving", {"model_serving_inference_services": [entry]}) == []

    rows = check("model_serving", {
        "model_serving_inference_services": [{"name": "llm", "namespace": "s", "gpu": 1, "model_format": {"name": "onnx", "vers": "1"}}],
        "model_serving_triton_servers": [{"name": "t", "namespace": "s", "gpu_allocation": "mig"}],
    })
    assert len(rows) == 3, rows
    assert rows[0] == "model_serving_inference_services[0] (llm): gpu is not an option of aiinfra.cluster.inference_service (did you mean gpus?)"
    # a nested option is named by its path, with the closest option beside it
    assert rows[1] == ("model_serving_inference_services[0] (llm): model_format.vers is not an option of aiinfra.cluster.inference_service"
                       " (did you mean model_format.version?)")
    assert rows[2].startswith("model_serving_triton_servers[0] (t): value of gpu_allocation must be one of: device_plugin, dra")


def test_per_entry_apply_options_are_typed():
    rows = check("training", {"training_jobs": [{"name": "a", "script": "t.py", "wait_timeout": "soon"}]})
    assert len(rows) == 1 and "training_jobs[0] (a)" in rows[0] and "wait_timeout" in rows[0], rows
