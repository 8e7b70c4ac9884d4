#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tensorboard
short_description: Serve TensorBoard for a training log dir on a PVC or in object storage
version_added: 0.1.0
author: aiinfra.cluster contributors (@aiinfra)
description:
  - Applies, in one call, a Deployment running TensorBoard (port 6006) and its Service, and waits for
    the rollout. The log dir is a PersistentVolumeClaim mounted read-only (the one
    M(aiinfra.cluster.training_job) writes with its O(aiinfra.cluster.training_job#module:log_dir) option)
    or an object-storage URI.
  - With O(istio.enabled), the pods join the mesh and the bundle adds a STRICT mTLS PeerAuthentication and an
    ALLOW AuthorizationPolicy for the principals or namespaces given (see M(aiinfra.cluster.istio_policy)).
  - There is no official standalone TensorBoard image; the default C(tensorflow/tensorflow) CPU image
    carries the C(tensorboard) command. A smaller image with C(pip install tensorboard) works too.
options:
  <<: &module_options
    name:
      description: Name of the Deployment and Service.
      type: str
      required: true
    namespace:
      description: Namespace.
      type: str
      default: default
    image:
      description: An image with the C(tensorboard) command.
      type: str
      default: tensorflow/tensorflow:2.21.0
    image_pull_policy:
      description: Image pull policy.
      type: str
      choices: [Always, IfNotPresent, Never]
    image_pull_secrets:
      description: Names of Secrets to pull the image with.
      type: list
      elements: str
    log_dir:
      description: The PVC holding the event files (mounted read-only).
      type: dict
      suboptions:
        claim_name:
          description: The PersistentVolumeClaim.
          type: str
          required: true
        sub_path:
          description: Sub-directory of the volume, for example V(tb).
          type: str
        mount_path:
          description: Where to mount it.
          type: str
          default: /logs
    log_dir_uri:
      description:
        - An object-storage log dir instead of O(log_dir), for example V(gs://bucket/runs).
          V(s3://) needs an image with C(tensorflow-io) or C(boto3) support.
      type: str
    storage_secret:
      description:
        - A Secret whose keys become environment variables (for example C(AWS_ACCESS_KEY_ID),
          C(AWS_SECRET_ACCESS_KEY), C(S3_ENDPOINT)); credentials never appear in the manifests.
      type: str
    env:
      description: Extra environment variables.
      type: dict
    extra_args:
      description: Extra C(tensorboard) arguments, for example V(--reload_interval=30).
      type: list
      elements: str
    resources:
      description: Container resources. Default requests 250m CPU and 1Gi, limit 4Gi memory.
      type: dict
    replicas:
      description: Number of replicas.
      type: int
      default: 1
    node_selector:
      description: Node selector labels.
      type: dict
    service_type:
      description: Service type.
      type: str
      choices: [ClusterIP, NodePort, LoadBalancer]
      default: ClusterIP
    istio:
      description: Expose TensorBoard inside the Istio mesh only to the callers named here.
      type: dict
      suboptions:
        enabled:
          description: Inject the sidecar and add the policies.
          type: bool
          default: false
        mtls_mode:
          description: PeerAuthentication mode for the TensorBoard pods.
          type: str
          choices: [STRICT, PERMISSIVE]
          default: STRICT
        allow_principals:
          description: Workload principals allowed in, for example V(cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account).
          type: list
          elements: str
        allow_namespaces:
          description: Namespaces allowed in.
          type: list
          elements: str
        allow_request_principals:
          description: JWT principals (C(<iss>/<sub>)) allowed in; needs a RequestAuthentication.
          type: list
          elements: str
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
- name: TensorBoard for the runs a training job writes
  aiinfra.cluster.tensorboard:
    name: resnet-tb
    namespace: ml-training
    log_dir: {claim_name: resnet-ckpt, sub_path: tb}

- name: Only reachable through the ingress gateway, with mTLS
  aiinfra.cluster.tensorboard:
    name: resnet-tb
    namespace: ml-training
    log_dir: {claim_name: resnet-ckpt, sub_path: tb}
    istio:
      enabled: true
      allow_principals:
        - cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account

- name: From object storage
  aiinfra.cluster.tensorboard:
    name: runs-tb
    namespace: ml-training
    log_dir_uri: gs://ml-runs/resnet
    storage_secret: gcs-reader
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
  description: One entry per object applied (or deleted), in order.
  returned: always
  type: list
  elements: dict
  sample:
    - {apiVersion: apps/v1, kind: Deployment, name: resnet-tb, namespace: ml-training, changed: true, action: created}
url:
  description: The in-cluster URL of TensorBoard.
  returned: when state=present
  type: str
  sample: http://resnet-tb.ml-training.svc:6006/
api_requests:
  description: API requests sent, by HTTP verb.
  returned: always
  type: dict
  sample: {GET: 2, PATCH: 2}
"""

from ansible_collections.aiinfra.cluster.plugins.module_utils.observability_builder import TENSORBOARD_PORT, build_tensorboard
from ansible_collections.aiinfra.cluster.plugins.module_utils.runner import execute, kube_module, run_bundle

ARGUMENT_SPEC = {
    "name": {"type": "str", "required": True},
    "namespace": {"type": "str", "default": "default"},
    "image": {"type": "str", "default": "tensorflow/tensorflow:2.21.0"},
    "image_pull_policy": {"type": "str", "choices": ["Always", "IfNotPresent", "Never"]},
    "image_pull_secrets": {"type": "list", "elements": "str", "no_log": False},
    "log_dir": {
        "type": "dict",
        "options": {
            "claim_name": {"type": "str", "required": True},
            "sub_path": {"type": "str"},
            "mount_path": {"type": "str", "default": "/logs"},
        },
    },
    "log_dir_uri": {"type": "str"},
    "storage_secret": {"type": "str", "no_log": False},
    "env": {"type": "dict"},
    "extra_args": {"type": "list", "elements": "str"},
    "resources": {"type": "dict"},
    "replicas": {"type": "int", "default": 1},
    "node_selector": {"type": "dict"},
    "service_type": {"type": "str", "default": "ClusterIP", "choices": ["ClusterIP", "NodePort", "LoadBalancer"]},
    "istio": {
        "type": "dict",
        "options": {
            "enabled": {"type": "bool", "default": False},
            "mtls_mode": {"type": "str", "default": "STRICT", "choices": ["STRICT", "PERMISSIVE"]},
            "allow_principals": {"type": "list", "elements": "str"},
            "allow_namespaces": {"type": "list", "elements": "str"},
            "allow_request_principals": {"type": "list", "elements": "str"},
        },
    },
}


def main():
    module = kube_module(
        ARGUMENT_SPEC,
        creates_namespaces=True,
        mutually_exclusive=[["log_dir", "log_dir_uri"]],
        required_one_of=[["log_dir", "log_dir_uri"]],
    )
    params = module.params

    def body(client):
        objects = build_tensorboard(dict(params))
        result = run_bundle(module, client, objects)
        if params["state"] == "present":
            result["url"] = "http://%s.%s.svc:%d/" % (params["name"], params["namespace"], TENSORBOARD_PORT)
        return result

    execute(module, body)


if __name__ == "__main__":
    main()
