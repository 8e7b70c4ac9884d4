#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: resources
short_description: Apply or delete a bundle of Kubernetes objects with server-side apply
version_added: 0.1.0
author: aiinfra.cluster contributors (@aiinfra)
description:
  - Applies a list of Kubernetes objects in one module call through the collection's apply engine
    (one server-side apply request per object that changes, none for objects already in the
    desired state), optionally waiting for each to be ready.
  - The resource-family modules (for example M(aiinfra.cluster.gpu_node_info)) use the same engine;
    this module is for the plain objects roles need (namespaces, quotas, priority classes).
options:
  <<: &module_options
    definitions:
      description:
        - The objects, each a full manifest with C(apiVersion), C(kind) and C(metadata.name).
        - Namespaced objects without C(metadata.namespace) go to O(namespace).
      type: list
      elements: dict
      required: true
    namespace:
      description:
        - Namespace for namespaced objects that do not name one.
      type: str
      default: default
    wait_for:
      description:
        - Override the readiness check for every object (default is each kind's own signal,
          for example Deployment rollout, Job completion, CRD Established).
      type: dict
      suboptions:
        condition:
          description: Wait for this status condition type.
          type: str
        status:
          description: The condition status to wait for.
          type: str
          default: "True"
        field:
          description: Dotted path of a field, for example V(status.phase).
          type: str
        value:
          description: The value O(wait_for.field) must reach.
          type: str
    only_wait:
      description:
        - Write nothing; read each object of O(definitions) (only C(apiVersion), C(kind) and
          C(metadata) are used) and wait for it with the same readiness checks as after an apply.
          For objects another tool creates, for example the ClusterPolicy the GPU Operator chart
          installs.
        - An object given by C(metadata.labels) instead of C(metadata.name) stands for every object
          of its kind (and C(metadata.namespace)) carrying those labels, for example a chart's
          Deployments. At least one must appear before O(wait_timeout), and each one found is waited for.
        - Needs a known readiness check for the kind (see O(wait_for)). O(state) and O(wait) are
          then not used. In check mode the wait is reported (action C(would wait)), not made.
      type: bool
      default: false
      version_added: 1.1.0
  batch:
    suboptions:
      <<: *module_options
      state:
        description: This element's O(state); the top-level O(state) when not set.
        type: str
        choices: [present, absent]
      wait:
        description: This element's O(wait); the top-level O(wait) when not set.
        type: bool
      wait_timeout:
        description: This element's O(wait_timeout), counted from the same moment; the top-level O(wait_timeout) when not set.
        type: int
extends_documentation_fragment:
  - aiinfra.cluster.auth
  - aiinfra.cluster.apply
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: GPU priority classes and a team namespace
  aiinfra.cluster.resources:
    definitions:
      - apiVersion: scheduling.k8s.io/v1
        kind: PriorityClass
        metadata: {name: gpu-training}
        value: 100000
      - apiVersion: v1
        kind: Namespace
        metadata: {name: team-a}

- name: Wait for the ClusterPolicy the GPU Operator chart created (and its operands' rollout)
  aiinfra.cluster.resources:
    only_wait: true
    wait_timeout: 900
    definitions:
      - {apiVersion: nvidia.com/v1, kind: ClusterPolicy, metadata: {name: cluster-policy}}

- name: Remove them again
  aiinfra.cluster.resources:
    state: absent
    definitions: "{{ my_objects }}"
"""

RETURN = r"""
batch:
  description:
    - With O(batch), one result per element, in the order given, each holding what a run with that element's
      options returns; the other return values are then not set at the top level.
  returned: when O(batch) is set
  type: list
  elements: dict
resources:
  description: One entry per object, in the order given.
  returned: always
  type: list
  elements: dict
  sample:
    - {apiVersion: v1, kind: Namespace, name: team-a, namespace: null, changed: true, action: created, object: {}}
api_requests:
  description: API requests sent, by HTTP verb.
  returned: always
  type: dict
  sample: {GET: 1, PATCH: 1}
"""

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError
from ansible_collections.aiinfra.cluster.plugins.module_utils.runner import execute, kube_module, run_bundle


def wait_spec(option):
    if not option:
        return None
    if option.get("condition") and option.get("field"):
        raise InputError("wait_for takes either condition or field, not both")
    if option.get("condition"):
        return {"type": "condition", "condition": option["condition"], "status": option.get("status") or "True"}
    if option.get("field"):
        if option.get("value") is None:
            raise InputError("wait_for.field needs wait_for.value")
        return {"type": "field", "path": option["field"], "value": option["value"]}
    raise InputError("wait_for needs condition or field")


def main():
    module = kube_module(
        {
            "definitions": {"type": "list", "elements": "dict", "required": True},
            "namespace": {"type": "str", "default": "default"},
            "wait_for": {
                "type": "dict",
                "options": {
                    "condition": {"type": "str"},
                    "status": {"type": "str", "default": "True"},
                    "field": {"type": "str"},
                    "value": {"type": "str"},
                },
            },
            "only_wait": {"type": "bool", "default": False},
        }
    )

    def body(client):
        objects = []
        for obj in module.params["definitions"]:
            obj = dict(obj)
            meta = dict(obj.get("metadata") or {})
            meta.setdefault("namespace", module.params["namespace"])
            obj["metadata"] = meta
            objects.append(obj)
        spec = wait_spec(module.params["wait_for"])
        waits = dict((i, spec) for i in range(len(objects))) if spec else None
        return run_bundle(module, client, objects, waits=waits, only_wait=module.params["only_wait"])

    execute(module, body)


if __name__ == "__main__":
    main()
