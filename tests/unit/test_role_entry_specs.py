"""A workload role's inventory entries take every option of the module they are handed to: the
role's argument spec lists each entry option, and Ansible refuses an entry option it does not list
(before this test, model_serving refused gpu_allocation, gpu_selector and queue_name)."""

import importlib
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# (role, inventory list) -> the module its entries go to. Entries also take the role's shared
# options (state, wait, wait_timeout), which the modules have as common options.
ENTRIES = {
    ("model_serving", "model_serving_inference_services"): "inference_service",
    ("model_serving", "model_serving_triton_servers"): "triton_server",
    ("training", "training_jobs"): "training_job",
    ("datasets", "datasets_fluid"): "fluid_dataset",
    ("datasets", "datasets_dvc"): "data_version",
    ("mesh_security", "mesh_security_policies"): "istio_policy",
}


@pytest.mark.parametrize("role,variable", sorted(ENTRIES))
def test_entries_take_every_module_option(role, variable):
    with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")) as handle:
        entry = yaml.safe_load(handle)["argument_specs"]["main"]["options"][variable]
    module = importlib.import_module("ansible_collections.aiinfra.cluster.plugins.modules.%s" % ENTRIES[(role, variable)])
    missing = sorted(set(module.ARGUMENT_SPEC) - set(entry.get("options") or {}))
    assert not missing, "roles/%s: %s entries do not take %s" % (role, variable, ", ".join(missing))
