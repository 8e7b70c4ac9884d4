#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: helm_release_info
short_description: Tell which Helm releases a helm task would change, without running helm
version_added: 0.1.0
author: aiinfra.cluster contributors (@aiinfra)
description:
  - Reads the record Helm keeps of each release in the cluster (its storage Secrets, Helm's default
    C(secret) driver) and reports whether the release already is what a
    M(kubernetes.core.helm) task with the same chart, version and values would make it.
  - The test is the one M(kubernetes.core.helm) makes without the helm-diff plugin. The latest
    revision must be C(deployed). Its chart name, version and appVersion must be the wanted
    chart's. Its user-supplied values must equal the wanted values. Post-renderers and Helm flags
    are not compared, as there.
  - The roles of this collection run their helm task only for the releases this reports out of
    date, so a no-op re-run reads a few objects instead of starting helm several times per
    release.
  - Reads only; one metadata-only list per namespace, then one read per deployed release.
options:
  releases:
    description: The releases a play would install (or remove).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Release name.
        type: str
        required: true
      namespace:
        description: Release namespace.
        type: str
        required: true
      chart_ref:
        description:
          - The chart as the helm task names it. A chart directory or packaged C(.tgz) is read
            for its name, version and appVersion. A repository chart (C(repo/chart), a chart
            name with a repository URL, or C(oci://)) is known by its last path segment and
            O(releases[].chart_version).
        type: str
        required: true
      chart_version:
        description:
          - The pinned chart version. A chart directory that holds another version is an error.
            Without it a repository chart always counts as out of date.
        type: str
      values:
        description: The values the helm task passes (its C(release_values)).
        type: dict
        default: {}
      state:
        description: V(absent) means up to date when no release is installed.
        type: str
        choices: [present, absent]
        default: present
extends_documentation_fragment:
  - aiinfra.cluster.auth
attributes:
  check_mode:
    support: full
    details: Reads only, the same in check mode.
  diff_mode:
    support: none
notes:
  - Releases stored with another Helm storage driver (C(HELM_DRIVER=configmap) or C(sql)) are
    reported as not installed, so the helm task runs and decides.
"""

EXAMPLES = r"""
- name: Which GPU Operator releases need helm
  aiinfra.cluster.helm_release_info:
    releases:
      - name: gpu-operator
        namespace: gpu-operator
        chart_ref: /srv/charts/gpu-operator
        chart_version: v26.7.0
        values: "{{ gpu_operator_chart_values }}"
  register: gpu_operator_releases

- name: GPU Operator chart
  kubernetes.core.helm:
    release_name: gpu-operator
    release_namespace: gpu-operator
    chart_ref: /srv/charts/gpu-operator
    chart_version: v26.7.0
    release_values: "{{ gpu_operator_chart_values }}"
  when: "'gpu-operator/gpu-operator' in gpu_operator_releases.out_of_date"
"""

RETURN = r"""
releases:
  description: One entry per wanted release, in the order given.
  returned: always
  type: list
  elements: dict
  sample:
    - name: gpu-operator
      namespace: gpu-operator
      installed: true
      status: deployed
      revision: 3
      chart: gpu-operator-v26.7.0
      app_version: v26.7.0
      up_to_date: false
      reasons: [values differ]
out_of_date:
  description: C(namespace/name) of each release a helm task would change.
  returned: always
  type: list
  elements: str
  sample: [gpu-operator/gpu-operator]
not_deployed:
  description:
    - C(namespace/name) of each wanted release whose latest revision did not deploy (V(failed), V(pending-install), ...).
    - Comparing its values says nothing, so a helm task must redo it (C(force)); kubernetes.core.helm would report it unchanged.
  returned: always
  type: list
  elements: str
  sample: [kserve/kserve-runtime-configs]
installed:
  description: C(namespace/name) of each wanted release that is installed (any status but uninstalled).
  returned: always
  type: list
  elements: str
  sample: [kserve/kserve-crd]
api_requests:
  description: API requests sent, by HTTP verb.
  returned: always
  type: dict
  sample: {GET: 3}
"""

from ansible_collections.aiinfra.cluster.plugins.module_utils.helm_releases import release_states
from ansible_collections.aiinfra.cluster.plugins.module_utils.runner import execute, kube_module


def main():
    module = kube_module(
        {
            "releases": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "name": {"type": "str", "required": True},
                    "namespace": {"type": "str", "required": True},
                    "chart_ref": {"type": "str", "required": True},
                    "chart_version": {"type": "str"},
                    "values": {"type": "dict", "default": {}},
                    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
                },
            },
        },
        with_apply=False,
    )

    def body(client):
        states = release_states(client, module.params["releases"])
        order = dict(((rel["namespace"], rel["name"]), i) for i, rel in enumerate(module.params["releases"]))
        states.sort(key=lambda s: order[(s["namespace"], s["name"])])
        key = "%(namespace)s/%(name)s"
        return {
            "changed": False,
            "releases": states,
            "out_of_date": [key % s for s in states if not s["up_to_date"]],
            "installed": [key % s for s in states if s["installed"]],
            "not_deployed": [key % s for s in states if s["installed"] and s["status"] != "deployed"],
        }

    execute(module, body)


if __name__ == "__main__":
    main()
