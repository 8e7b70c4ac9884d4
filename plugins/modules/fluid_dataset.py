#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: fluid_dataset
short_description: Manage a Fluid Dataset and its cache runtime
version_added: 0.1.0
author: aiinfra.cluster contributors (@aiinfra)
description:
  - Applies a Fluid C(data.fluid.io/v1alpha1) Dataset and its runtime of the same name (AlluxioRuntime with
    tiered-store levels, or JuiceFSRuntime) in one call, with an optional DataLoad that warms the cache.
  - Mount credentials only travel through a Secret and C(encryptOptions); the module can create that Secret
    from O(credentials) (not logged). Credential-like keys in plain O(mounts[].options) are refused.
  - Waits for the runtime (master and workers C(Ready)) and for the Dataset's C(status.phase) to be C(Bound);
    returns the name of the PersistentVolumeClaim Fluid creates for the Dataset.
options:
  <<: &module_options
    name:
      description: Name of the Dataset, its runtime and its PVC.
      type: str
      required: true
    namespace:
      description: Namespace.
      type: str
      default: default
    runtime:
      description: Cache runtime.
      type: str
      default: alluxio
      choices: [alluxio, juicefs]
    mounts:
      description: What the Dataset mounts. Required with O(state=present).
      type: list
      elements: dict
      suboptions:
        mount_point:
          description: Source, for example V(s3://bucket/path/), V(oss://bucket/), V(juicefs:///subdir).
          type: str
          required: true
        name:
          description: Name of the mount (its directory in the Dataset).
          type: str
        path:
          description: Path of the mount inside the Dataset.
          type: str
        read_only:
          description: Mount read-only.
          type: bool
        shared:
          description: Share this mount across the Dataset's users.
          type: bool
        options:
          description:
            - Non-secret mount options, for example C(alluxio.underfs.s3.endpoint). Credential-like keys are refused.
          type: dict
        encrypt_options:
          description:
            - Options read from a Secret. Defaults to every key of O(credentials) when the module creates the Secret.
          type: list
          elements: dict
          suboptions:
            name:
              description: Option name, for example V(aws.secretKey) or V(metaurl).
              type: str
              required: true
            secret:
              description: Secret name; defaults to O(secret_name) or the Secret created from O(credentials).
              type: str
            key:
              description: Key in the Secret; defaults to O(mounts[].encrypt_options[].name).
              type: str
    credentials:
      description:
        - Secret values (option name -> value) for the mounts; the module stores them in the Secret O(secret_name)
          (default C(<name>-fluid-credentials)) and references them through C(encryptOptions).
      type: dict
    secret_name:
      description: Existing Secret to reference (or the name of the Secret made from O(credentials)).
      type: str
    replicas:
      description: Cache workers.
      type: int
      default: 1
    tiered_store:
      description: Cache tiers. Default one MEM level at C(/dev/shm), quota 2Gi.
      type: list
      elements: dict
      suboptions:
        medium:
          description: Medium type.
          type: str
          default: MEM
          choices: [MEM, SSD, HDD]
        path:
          description: Cache directory on the node.
          type: str
          required: true
        quota:
          description: Size of the level, for example V(100Gi).
          type: str
          required: true
        high:
          description: High watermark ratio.
          type: str
        low:
          description: Low watermark ratio.
          type: str
        volume_type:
          description: How the level is provided.
          type: str
          choices: [hostPath, emptyDir]
    properties:
      description: Alluxio properties (runtime=alluxio only).
      type: dict
    runtime_image:
      description: Alluxio image as C(<image>:<tag>) for a mirror; Fluid's release default when unset.
      type: str
    node_selector:
      description: Node labels the cache must run on (becomes the Dataset's required node affinity).
      type: dict
    tolerations:
      description: Tolerations for the cache pods.
      type: list
      elements: dict
    access_modes:
      description: Access modes of the Dataset's volume.
      type: list
      elements: str
      choices: [ReadOnlyMany, ReadWriteMany, ReadWriteOnce, ReadOnlyOnce]
    placement:
      description: Whether the Dataset's cache nodes are exclusive.
      type: str
      choices: [Exclusive, Shared]
    labels:
      description: Extra labels on the Dataset.
      type: dict
    dataload:
      description:
        - A DataLoad that fills the cache, named C(<name>-warmup-<hash>) after what it loads.
        - Fluid runs a DataLoad once. A changed load (O(dataload.paths), O(dataload.load_metadata)) is therefore a new
          DataLoad with a new name, and the DataLoads this module made earlier for the Dataset (a finished one is
          history, a running one is replaced; C(<name>-warmup) of releases before 1.1.0 included) are deleted, so
          one DataLoad per Dataset remains. With O(dataload.enabled=false) they are all deleted.
      type: dict
      suboptions:
        enabled:
          description: Create the DataLoad.
          type: bool
          default: false
        paths:
          description: Paths to load (all when unset).
          type: list
          elements: str
        load_metadata:
          description: Sync metadata before loading.
          type: bool
          default: true
        wait:
          description: Also wait for the DataLoad's C(status.phase) to be C(Complete).
          type: bool
          default: false
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
"""

EXAMPLES = r"""
- name: ImageNet from MinIO, cached in memory on H100 nodes
  aiinfra.cluster.fluid_dataset:
    name: imagenet
    namespace: datasets
    mounts:
      - mount_point: s3://imagenet/train/
        name: train
        options:
          alluxio.underfs.s3.endpoint: http://minio.storage:9000
          alluxio.underfs.s3.disable.dns.buckets: "true"
    credentials:
      aws.accessKeyId: "{{ vault_minio_access_key }}"
      aws.secretKey: "{{ vault_minio_secret_key }}"
    replicas: 2
    tiered_store:
      - {medium: MEM, path: /dev/shm, quota: 32Gi, high: "0.95", low: "0.7"}
    node_selector:
      nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3
    dataload:
      enabled: true
  register: ds

- name: Mount it in training pods
  ansible.builtin.debug:
    msg: "claimName: {{ ds.pvc_name }}"

- name: JuiceFS, credentials from an existing Secret
  aiinfra.cluster.fluid_dataset:
    name: features
    namespace: datasets
    runtime: juicefs
    secret_name: juicefs-secret
    mounts:
      - mount_point: juicefs:///features
        options: {bucket: "http://minio.storage:9000/juicefs", storage: minio}
        encrypt_options:
          - {name: metaurl}
          - {name: access-key}
          - {name: secret-key}
"""

RETURN = r"""
batch:
  description:
    - With O(batch), one result per element, in the order given, each holding what a run with that element's
      options returns; the other return values are then not set at the top level.
  returned: when O(batch) is set
  type: list
  elements: dict
pvc_name:
  description: The PersistentVolumeClaim Fluid creates for the Dataset (same name, same namespace).
  returned: state=present
  type: str
  sample: imagenet
phase:
  description: The Dataset's C(status.phase) after the wait.
  returned: state=present
  type: str
  sample: Bound
runtime_status:
  description: Master, worker and fuse phases of the runtime.
  returned: state=present
  type: dict
  sample: {masterPhase: Ready, workerPhase: Ready, fusePhase: Ready}
dataload_name:
  description: The current DataLoad (null when O(dataload.enabled=false)).
  returned: state=present
  type: str
  sample: imagenet-warmup-3f2a9c1b
  version_added: 1.1.0
removed_dataloads:
  description: Superseded DataLoads of the Dataset deleted by this run.
  returned: state=present
  type: list
  elements: str
  version_added: 1.1.0
resources:
  description: Apply or delete result per object (Secret values are never returned).
  returned: always
  type: list
  elements: dict
api_requests:
  description: API requests sent, by HTTP verb.
  returned: always
  type: dict
"""

from ansible_collections.aiinfra.cluster.plugins.module_utils.apply import FIELD_MANAGER, ApplyEngine
from ansible_collections.aiinfra.cluster.plugins.module_utils.data_builder import (
    FLUID_API,
    build_fluid_dataset,
    fluid_dataset_ref_objects,
    runtime_waits,
    superseded_dataloads,
)
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError
from ansible_collections.aiinfra.cluster.plugins.module_utils.resources import ResourceResolver
from ansible_collections.aiinfra.cluster.plugins.module_utils.runner import execute, kube_module, run_bundle
from ansible_collections.aiinfra.cluster.plugins.module_utils.waiters import wait_for

ARGUMENT_SPEC = {
    "name": {"type": "str", "required": True},
    "namespace": {"type": "str", "default": "default"},
    "runtime": {"type": "str", "default": "alluxio", "choices": ["alluxio", "juicefs"]},
    "mounts": {
        "type": "list",
        "elements": "dict",
        "options": {
            "mount_point": {"type": "str", "required": True},
            "name": {"type": "str"},
            "path": {"type": "str"},
            "read_only": {"type": "bool"},
            "shared": {"type": "bool"},
            "options": {"type": "dict"},
            "encrypt_options": {
                "type": "list",
                "elements": "dict",
                "options": {"name": {"type": "str", "required": True}, "secret": {"type": "str", "no_log": False}, "key": {"type": "str", "no_log": False}},
            },
        },
    },
    "credentials": {"type": "dict", "no_log": True},
    "secret_name": {"type": "str"},
    "replicas": {"type": "int", "default": 1},
    "tiered_store": {
        "type": "list",
        "elements": "dict",
        "options": {
            "medium": {"type": "str", "default": "MEM", "choices": ["MEM", "SSD", "HDD"]},
            "path": {"type": "str", "required": True},
            "quota": {"type": "str", "required": True},
            "high": {"type": "str"},
            "low": {"type": "str"},
            "volume_type": {"type": "str", "choices": ["hostPath", "emptyDir"]},
        },
    },
    "properties": {"type": "dict"},
    "runtime_image": {"type": "str"},
    "node_selector": {"type": "dict"},
    "tolerations": {"type": "list", "elements": "dict"},
    "access_modes": {"type": "list", "elements": "str", "choices": ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadOnlyOnce"]},
    "placement": {"type": "str", "choices": ["Exclusive", "Shared"]},
    "labels": {"type": "dict"},
    "dataload": {
        "type": "dict",
        "options": {
            "enabled": {"type": "bool", "default": False},
            "paths": {"type": "list", "elements": "str"},
            "load_metadata": {"type": "bool", "default": True},
            "wait": {"type": "bool", "default": False},
        },
    },
}


def hide_secret_values(result):
    """Secret data is base64 of the no_log credentials, which Ansible's masking does not catch."""
    for res in result["resources"]:
        if res["kind"] == "Secret" and isinstance(res.get("object"), dict):
            res["object"] = {"metadata": {"name": res["name"], "namespace": res["namespace"]}}
    for diff in result.get("diff") or []:
        if diff.get("after_header", "").startswith("Secret "):
            for side in ("before", "after"):
                if isinstance(diff.get(side), dict) and diff[side].get("data"):
                    diff[side]["data"] = dict((key, "(hidden)") for key in diff[side]["data"])


def dataloads_to_remove(module, client, keep=None):
    """This Dataset's DataLoads other than `keep` (the current load spec's)."""
    params = module.params
    rt = ResourceResolver(client).resolve(FLUID_API, "DataLoad")
    try:
        listing = client.get(rt.collection_path(params["namespace"]))
    except ApiError as exc:
        if exc.status == 404:  # Fluid's CRDs are gone: so are its DataLoads
            return []
        raise
    return superseded_dataloads((listing or {}).get("items"), params["name"], params["namespace"], keep=keep)


def remove_dataloads(module, client, result, refs):
    """Delete superseded DataLoads (a finished one is history, a running one is replaced) into `result`."""
    if not refs:
        return
    params = module.params
    engine = ApplyEngine(client, field_manager=params.get("field_manager") or FIELD_MANAGER, check_mode=module.check_mode)
    removed, diffs = engine.delete_all(refs, propagation_policy="Background", want_diff=bool(module._diff))
    result["resources"].extend(removed)
    result["removed_dataloads"] = [r["name"] for r in removed if r["changed"]]
    result["changed"] = result["changed"] or bool(result["removed_dataloads"])
    if module._diff:
        result.setdefault("diff", []).extend(diffs)


def main():
    module = kube_module(
        ARGUMENT_SPEC,
        creates_namespaces=True,
        required_if=[("state", "present", ["mounts"])])

    def body(client):
        params = module.params
        if params["state"] == "absent":
            # The DataLoads go first (run_bundle deletes in reverse order).
            result = run_bundle(module, client, fluid_dataset_ref_objects(params) + dataloads_to_remove(module, client))
            hide_secret_values(result)
            return result
        objects = build_fluid_dataset(params)
        kinds = [obj["kind"] for obj in objects]
        runtime_index = kinds.index("Dataset") + 1
        waits_for_runtime = runtime_waits(params["runtime"])
        # One wait per object in the bundle (Dataset Bound, runtime master); the runtime's
        # remaining checks follow.
        waits = {runtime_index: waits_for_runtime[0]}
        if "DataLoad" in kinds:
            load = params.get("dataload") or {}
            waits[kinds.index("DataLoad")] = (
                {"type": "field", "path": "status.phase", "value": "Complete", "fail_values": ["Failed"]} if load.get("wait") else None
            )
        result = run_bundle(module, client, objects, waits=waits)
        result["dataload_name"] = objects[kinds.index("DataLoad")]["metadata"]["name"] if "DataLoad" in kinds else None
        result["removed_dataloads"] = []
        remove_dataloads(module, client, result, dataloads_to_remove(module, client, keep=result["dataload_name"]))
        runtime_obj = result["resources"][runtime_index].get("object") or {}
        if params["wait"] and not module.check_mode:
            rt = ResourceResolver(client).resolve(objects[runtime_index]["apiVersion"], objects[runtime_index]["kind"])
            for spec in waits_for_runtime[1:]:
                runtime_obj = wait_for(client, rt, params["name"], params["namespace"], spec, timeout=params["wait_timeout"])
        hide_secret_values(result)
        dataset = result["resources"][kinds.index("Dataset")].get("object") or {}
        status = runtime_obj.get("status") or {}
        result["pvc_name"] = params["name"]
        result["phase"] = (dataset.get("status") or {}).get("phase")
        result["runtime_status"] = dict((k, status.get(k)) for k in ("masterPhase", "workerPhase", "fusePhase"))
        return result

    execute(module, body)


if __name__ == "__main__":
    main()
