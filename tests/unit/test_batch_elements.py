"""The batch_elements filter, and the workload roles' lists turned into one module call's batch."""

import json
import os
import subprocess
import sys

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiinfra.cluster.plugins.filter.batch_elements import batch_elements

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_defaults_filled_in_and_the_entry_wins_in_order():
    elements = batch_elements([{"name": "a", "namespace": "x"}, {"name": "b", "namespace": "y", "image": "own"}], {"image": "default"})
    assert elements == [{"name": "a", "namespace": "x", "image": "default"}, {"name": "b", "namespace": "y", "image": "own"}]


def test_an_entry_keeps_its_own_state_wait_and_timeout():
    elements = batch_elements([{"name": "a"}, {"name": "gone", "state": "absent"}, {"name": "b", "wait": False, "wait_timeout": 5}])
    assert [e.get("state") for e in elements] == [None, "absent", None]
    assert elements[2] == {"name": "b", "wait": False, "wait_timeout": 5}


def test_empty_and_bad_input():
    assert batch_elements([]) == [] and batch_elements(None) == []
    with pytest.raises(AnsibleFilterError, match="entry 1 is a str"):
        batch_elements([{"name": "a"}, "b"])
    with pytest.raises(AnsibleFilterError, match="expected a list"):
        batch_elements("abc")
    with pytest.raises(AnsibleFilterError, match="'defaults' must be a mapping"):
        batch_elements([{"name": "a"}], ["state"])


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
        content: "{{{{ {{'serving': model_serving_inference_service_batch, 'training': training_batch}} | to_json }}}}"
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


def test_roles_turn_their_lists_into_one_batch_with_the_role_defaults(tmp_path):
    out = tmp_path / "calls.json"
    play = tmp_path / "play.yml"
    inventory = tmp_path / "group_vars.yml"
    inventory.write_text(INVENTORY)
    play.write_text(ROLE_PLAY.format(root=ROOT, out=out, inventory=inventory))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False, env=dict(os.environ, ANSIBLE_PYTHON_INTERPRETER=sys.executable))
    assert proc.returncode == 0, proc.stdout.decode()[-3000:]
    calls = json.loads(out.read_text())

    llm, cpu, sk = calls["serving"]
    # conditional defaults: the Triton runtime version only on that runtime, the product only with GPUs
    assert llm["runtime_version"] == "26.07-py3" and llm["gpu_product"] == "NVIDIA-H100-80GB-HBM3"
    assert "runtime_version" not in sk and "gpu_product" not in sk
    assert llm["deployment_mode"] == sk["deployment_mode"] == cpu["deployment_mode"] == "Standard"
    # an entry's own state stays with it, in the one call; the others take the task's
    assert cpu["gpu_product"] == "own" and cpu["state"] == "absent" and "state" not in llm

    tf, pt = calls["training"]
    assert "tensorflow" in tf["image"] and "pytorch" in pt["image"]
    assert pt["wait"] is False and "wait" not in tf
    assert pt["namespace"] == "ml-training"
