#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: data_version
short_description: Pull a DVC-versioned dataset into a PersistentVolumeClaim
version_added: 0.1.0
author: aiinfra.cluster contributors (@aiinfra)
description:
  - Runs a C(batch/v1) Job with a pinned DVC version that runs C(dvc get --rev <revision>) for a path of a
    Git repository into a directory of a PVC, and waits for it to complete.
  - The Job's name carries a hash of its pod template, so re-running with the same revision finds the same
    completed Job and changes nothing; a new revision runs a new Job, and the Jobs of other revisions of this
    O(name) are removed once it succeeded (with O(wait=false), as soon as it is created). None is kept, as a kept
    Job of an earlier revision would make a later switch back to that revision look already done while the claim
    holds another revision.
  - A failed Job fails the task at once with the failed pod's reason and log tail (when the kubelet serves logs).
  - Remote credentials come only from a Secret (O(credentials_secret)); credentials in O(repo_url) or
    O(remote_config) are refused.
options:
  <<: &module_options
    name:
      description: Name of this data version (prefix of the Job name, label C(aiinfra.cluster/data-version)).
      type: str
      required: true
    namespace:
      description: Namespace.
      type: str
      default: default
    repo_url:
      description:
        - Git repository of the DVC project, for example V(https://github.com/org/data-registry).
        - Required with O(state=present).
      type: str
    revision:
      description: Git tag or commit to pull. Required with O(state=present).
      type: str
    path:
      description: DVC-tracked file or directory in the repository. Required with O(state=present).
      type: str
    remote:
      description: DVC remote to pull from (the project's default when unset).
      type: str
    remote_config:
      description:
        - Non-secret remote settings passed as C(--remote-config), for example C(endpointurl=http://minio:9000).
      type: dict
    credentials_secret:
      description:
        - Secret whose keys become environment variables of the Job, for example C(AWS_ACCESS_KEY_ID) and
          C(AWS_SECRET_ACCESS_KEY) for S3, C(GOOGLE_APPLICATION_CREDENTIALS) for GCS.
      type: str
    pvc:
      description: The claim the data lands in. Required with O(state=present).
      type: dict
      suboptions:
        name:
          description: Claim name.
          type: str
          required: true
        sub_path:
          description: Directory inside the claim (default O(name)).
          type: str
        size:
          description: When set, the module creates the claim with this size.
          type: str
        storage_class:
          description: Storage class of a claim the module creates.
          type: str
        access_modes:
          description: Access modes of a claim the module creates.
          type: list
          elements: str
          default: [ReadWriteOnce]
    image:
      description: Image the Job runs; needs Python and C(pip) unless O(install_dvc=false).
      type: str
      default: python:3.12-slim
    dvc_version:
      description: DVC version installed in the Job.
      type: str
      default: 3.67.1
    dvc_extras:
      description: DVC extras for the remote type (V(s3), V(gs), V(azure), V(ssh), ...).
      type: list
      elements: str
      default: [s3]
    install_dvc:
      description: Install DVC with pip at start; set V(false) for an image that already has it (air-gapped clusters).
      type: bool
      default: true
    pip_index_url:
      description: Package index mirror for the DVC install.
      type: str
    backoff_limit:
      description: Retries before the Job fails.
      type: int
      default: 2
    active_deadline_seconds:
      description: Fail the Job when it runs longer than this.
      type: int
    ttl_seconds_after_finished:
      description:
        - Let Kubernetes delete the finished Job (and its pod) after this many seconds.
        - Unset by default, because the completed Job is what makes a re-run change nothing. Once it is gone, the
          next run creates the Job again; it finds the revision already in the claim (a marker file) and exits
          without pulling, but the run reports a change and needs the claim mounted again.
      type: int
      version_added: 1.1.0
    resources:
      description: C(requests)/C(limits) of the container.
      type: dict
    node_selector:
      description: Node labels for the Job's pod.
      type: dict
    tolerations:
      description: Tolerations for the Job's pod.
      type: list
      elements: dict
    service_account:
      description: Service account of the Job's pod (for workload identity to the remote).
      type: str
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
  - aiinfra.cluster.namespaces
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - With O(state=absent) every Job of this O(name) is deleted; the PVC and its data are kept.
"""

EXAMPLES = r"""
- name: ImageNet subset v2.1 into the training claim
  aiinfra.cluster.data_version:
    name: imagenet-subset
    namespace: training
    repo_url: https://github.com/example/data-registry
    revision: v2.1.0
    path: datasets/imagenet-subset
    remote: storage
    remote_config: {endpointurl: "http://minio.storage:9000"}
    credentials_secret: dvc-s3-credentials
    pvc: {name: training-data, size: 200Gi}
  register: pulled

- name: Show the Job that did it
  ansible.builtin.debug:
    msg: "{{ pulled.job_name }} pulled {{ pulled.revision }}"
"""

RETURN = r"""
batch:
  description:
    - With O(batch), one result per element, in the order given, each holding what a run with that element's
      options returns; the other return values are then not set at the top level.
  returned: when O(batch) is set
  type: list
  elements: dict
job_name:
  description: Name of the Job for this revision.
  returned: state=present
  type: str
  sample: imagenet-subset-3f2a9c1b7d
revision:
  description: The revision pulled.
  returned: state=present
  type: str
data_path:
  description: Where the data is inside the claim.
  returned: state=present
  type: str
  sample: training-data:/imagenet-subset
removed_jobs:
  description:
    - Jobs of other revisions removed after this one succeeded (with O(wait=false), once it was created), or all
      of them with O(state=absent).
  returned: always
  type: list
  elements: str
resources:
  description: Apply or delete result per object.
  returned: always
  type: list
  elements: dict
api_requests:
  description: API requests sent, by HTTP verb.
  returned: always
  type: dict
"""

from ansible_collections.aiinfra.cluster.plugins.module_utils.apply import FIELD_MANAGER, ApplyEngine
from ansible_collections.aiinfra.cluster.plugins.module_utils.data_builder import VERSION_LABEL, build_data_version
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import path_quote
from ansible_collections.aiinfra.cluster.plugins.module_utils.runner import execute, kube_module, run_bundle

ARGUMENT_SPEC = {
    "name": {"type": "str", "required": True},
    "namespace": {"type": "str", "default": "default"},
    "repo_url": {"type": "str"},
    "revision": {"type": "str"},
    "path": {"type": "str"},
    "remote": {"type": "str"},
    "remote_config": {"type": "dict"},
    "credentials_secret": {"type": "str", "no_log": False},
    "pvc": {
        "type": "dict",
        "options": {
            "name": {"type": "str", "required": True},
            "sub_path": {"type": "str"},
            "size": {"type": "str"},
            "storage_class": {"type": "str"},
            "access_modes": {"type": "list", "elements": "str", "default": ["ReadWriteOnce"]},
        },
    },
    "image": {"type": "str", "default": "python:3.12-slim"},
    "dvc_version": {"type": "str", "default": "3.67.1"},
    "dvc_extras": {"type": "list", "elements": "str", "default": ["s3"]},
    "install_dvc": {"type": "bool", "default": True},
    "pip_index_url": {"type": "str"},
    "backoff_limit": {"type": "int", "default": 2},
    "active_deadline_seconds": {"type": "int"},
    "ttl_seconds_after_finished": {"type": "int"},
    "resources": {"type": "dict"},
    "node_selector": {"type": "dict"},
    "tolerations": {"type": "list", "elements": "dict"},
    "service_account": {"type": "str"},
}


def other_jobs(client, name, namespace, keep=None):
    """Jobs of this data version other than `keep`, as delete references."""
    listing = client.get("/apis/batch/v1/namespaces/%s/jobs" % path_quote(namespace), query={"labelSelector": "%s=%s" % (VERSION_LABEL, name)})
    return [
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": item["metadata"]["name"], "namespace": namespace}}
        for item in (listing or {}).get("items") or []
        if item["metadata"]["name"] != keep
    ]


def main():
    module = kube_module(
        ARGUMENT_SPEC,
        creates_namespaces=True,
        required_if=[("state", "present", ["repo_url", "revision", "path", "pvc"])])

    def body(client):
        params = module.params
        if params["state"] == "absent":
            jobs = other_jobs(client, params["name"], params["namespace"])
            result = run_bundle(module, client, jobs) if jobs else {"changed": False, "resources": []}
            result["removed_jobs"] = [j["metadata"]["name"] for j in jobs]
            return result
        objects = build_data_version(params)
        job = objects[-1]
        result = run_bundle(module, client, objects)
        result.update(
            job_name=job["metadata"]["name"],
            revision=params["revision"],
            data_path="%s:/%s" % (params["pvc"]["name"], (params["pvc"].get("sub_path") or params["name"]).strip("/")),
            removed_jobs=[],
        )
        if not module.check_mode:
            # Other revisions' Jobs are history once this one succeeded (waited for above) or runs in their
            # place (wait=false): a running one would write the same directory.
            stale = other_jobs(client, params["name"], params["namespace"], keep=job["metadata"]["name"])
            if stale:
                engine = ApplyEngine(client, field_manager=params.get("field_manager") or FIELD_MANAGER)
                engine.delete_all(stale, propagation_policy="Background")
                result["removed_jobs"] = [j["metadata"]["name"] for j in stale]
                result["changed"] = True
        return result

    execute(module, body)


if __name__ == "__main__":
    main()
