"""The module_calls filter, and the workload roles' lists turned into module calls with it."""

import json
import os
import subprocess
import sys

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiinfra.cluster.plugins.filter.module_calls import module_calls

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = {"state": "present", "wait": True, "wait_timeout": 600}


def test_one_call_for_entries_that_share_everything():
    calls = module_calls([{"name": "a", "namespace": "x"}, {"name": "b", "namespace": "y", "image": "own"}], SHARED, {"image": "default"})
    assert calls == [
        {
            "shared": SHARED,
            "batch": [{"name": "a", "namespace": "x", "image": "default"}, {"name": "b", "namespace": "y", "image": "own"}],
            "names": "a, b",
        }
    ]


def test_an_entry_with_its_own_shared_option_gets_its_own_call_in_order():
    calls = module_calls([{"name": "a"}, {"name": "gone", "state": "absent"}, {"name": "b", "wait": True}], SHARED)
    assert [(c["shared"]["state"], c["names"]) for c in calls] == [("present", "a, b"), ("absent", "gone")]
    # shared options are options of the call, never of a batch element
    assert all("state" not in element and "wait" not in element for c in calls for element in c["batch"])


def test_empty_and_bad_input():
    assert module_calls([], SHARED) == [] and module_calls(None, SHARED) == []
    with pytest.raises(AnsibleFilterError, match="entry 1 is a str"):
        module_calls([{"name": "a"}, "b"], SHARED)
    with pytest.raises(AnsibleFilterError, match="expected a list"):
        module_calls("abc", SHARED)
    with pytest.raises(AnsibleFilterError, match="'shared' must be a mapping"):
        module_calls([{"name": "a"}], ["state"])


ROLE_PLAY = """
- hosts: localhost
  gather_facts: false
  vars_files:
    - {root}/roles/model_serving/defaults/main.yml
    - {root}/roles/model_serving/vars/main.yml
    - {root}/roles/training/defaults/main.yml
    - {root}/roles/training/vars/main.yml
    - {inventory}
  tasks:
    - ansible.builtin.copy:
        dest: "{out}"
        content: "{{{{ {{'serving': model_serving_inference_service_calls, 'training': training_calls}} | to_json }}}}"
"""

# group_vars as a user writes them (a vars file after the roles' own: it wins, as inventory does over role defaults)
INVENTORY = """
model_serving_gpu_product: NVIDIA-H100-80GB-HBM3
model_serving_kserve_triton_runtime_version: 26.07-py3
model_serving_inference_services:
  - {name: llm, namespace: s, runtime: kserve-tritonserver, gpus: 1}
  - {name: cpu, namespace: s, gpu_product: own, state: absent}
  - {name: sk, namespace: s, model_format: sklearn}
training_jobs:
  - {name: tf, framework: tensorflow, script: t.py}
  - {name: pt, script: p.py, wait: false}
"""


def test_roles_turn_their_lists_into_calls_with_the_role_defaults(tmp_path):
    out = tmp_path / "calls.json"
    play = tmp_path / "play.yml"
    inventory = tmp_path / "group_vars.yml"
    inventory.write_text(INVENTORY)
    play.write_text(ROLE_PLAY.format(root=ROOT, out=out, inventory=inventory))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False, env=dict(os.environ, ANSIBLE_PYTHON_INTERPRETER=sys.executable))
    assert proc.returncode == 0, proc.stdout.decode()[-3000:]
    calls = json.loads(out.read_text())

    serving = calls["serving"]
    assert [(c["shared"]["state"], c["names"]) for c in serving] == [("present", "llm, sk"), ("absent", "cpu")]
    llm, sk = serving[0]["batch"]
    # conditional defaults: the Triton runtime version only on that runtime, the product only with GPUs
    assert llm["runtime_version"] == "26.07-py3" and llm["gpu_product"] == "NVIDIA-H100-80GB-HBM3"
    assert "runtime_version" not in sk and "gpu_product" not in sk
    assert llm["deployment_mode"] == sk["deployment_mode"] == "Standard"
    assert serving[1]["batch"][0]["gpu_product"] == "own"

    training = calls["training"]
    assert [(c["shared"]["wait"], c["names"]) for c in training] == [(True, "tf"), (False, "pt")]
    assert "tensorflow" in training[0]["batch"][0]["image"] and "pytorch" in training[1]["batch"][0]["image"]
    assert training[1]["batch"][0]["namespace"] == "ml-training"
