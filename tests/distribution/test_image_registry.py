"""The air-gapped image path: with only `aiinfra_image_registry` set, every image the roles' charts
and modules would run comes from that registry. The roles' own values (their defaults and vars,
templated by ansible-playbook) are rendered with the real charts by helm, and every container
image, serving runtime image and GPU Operator repository is checked."""

import json
import os
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHARTS = os.environ.get("AIINFRA_CHARTS_DIR", os.path.join(os.path.dirname(ROOT), "shared", "charts"))
REGISTRY = "mirror.example.internal:5000"
ROLES = ["gpu_operator", "kserve", "training_platform", "gpu_scheduling", "fluid", "observability", "training", "datasets",
         "model_serving"]

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    aiinfra_image_registry: %(registry)s
    training_platform_trainer_enabled: true
  tasks:
    - ansible.builtin.include_vars: {file: "%(root)s/roles/{{ item }}/defaults/main.yml"}
      loop: %(roles)s
    - ansible.builtin.include_vars: {file: "%(root)s/roles/{{ item }}/vars/main.yml"}
      loop: %(roles)s
      when: ("%(root)s/roles/" ~ item ~ "/vars/main.yml") is file
    - ansible.builtin.copy:
        dest: "{{ out }}"
        content: >-
          {{ {'charts': {'gpu-operator': gpu_operator_chart_values, 'kserve-resources': kserve_resources_values,
                         'kserve-runtime-configs': kserve_runtime_values,
                         'kubeflow-trainer': (training_platform_releases | selectattr('name', 'equalto', 'kubeflow-trainer') | first).chart_values,
                         'kueue': gpu_scheduling_kueue_values, 'fluid': fluid_chart_values},
              'images': [observability_tensorboard_image, observability_dcgm_image, training_pytorch_image,
                         training_tensorflow_image, datasets_dvc_image, model_serving_triton_image]} | to_json }}
"""


def role_values(tmp_path):
    playbook = tmp_path / "values.yml"
    playbook.write_text(PLAYBOOK % {"registry": REGISTRY, "root": ROOT, "roles": json.dumps(ROLES)})
    out = tmp_path / "values.json"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"), ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    run = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), str(playbook), "-e", "out=%s" % out],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(out.read_text())


def images_in(doc):
    """Every `image` string under the object, and the ClusterPolicy's `repository` fields."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "image" and isinstance(value, str) and doc.get("kind") != "ClusterPolicy":
                    found.append(value)
                elif key == "repository" and isinstance(value, str) and doc.get("kind") == "ClusterPolicy":
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(doc.get("spec") or {})
    return found


@pytest.mark.upstream
def test_every_image_comes_from_the_mirror_registry(tmp_path):
    helm = os.path.join(subprocess.check_output(["bash", os.path.join(ROOT, "tools", "gobuild", "build.sh"), "--print-only"], text=True).strip(),
                        "helm")
    values = role_values(tmp_path)
    elsewhere, counted = [], 0
    for chart, chart_values in sorted(values["charts"].items()):
        path = tmp_path / ("%s.json" % chart)
        path.write_text(json.dumps(chart_values))
        rendered = subprocess.run([helm, "template", chart, os.path.join(CHARTS, chart), "-n", "ns", "-f", str(path)],
                                  capture_output=True, text=True, check=True).stdout
        for doc in yaml.safe_load_all(rendered):
            for image in images_in(doc or {}):
                counted += 1
                if not image.startswith(REGISTRY + "/"):
                    elsewhere.append("%s %s/%s: %s" % (chart, doc["kind"], doc["metadata"]["name"], image))
    for image in values["images"]:
        counted += 1
        if not image.startswith(REGISTRY + "/"):
            elsewhere.append("role default: %s" % image)
    assert elsewhere == [], "\n".join(elsewhere)
    assert counted > 40, counted
