#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: inference_service
short_description: Manage a KServe InferenceService
version_added: 0.1.0
author: aiinfra.cluster contributors (@aiinfra)
description:
  - Creates, updates or deletes a KServe C(serving.kserve.io/v1beta1) InferenceService with server-side
    apply, and waits for its C(Ready) condition.
  - Uses KServe's Standard deployment mode (plain Deployments and an HPA) unless O(deployment_mode=Knative).
  - The Alibi explainer was removed from KServe in v0.13; O(explainer.type=alibi) fails with the alternatives.
options:
  <<: &module_options
    name:
      description: Name of the InferenceService.
      type: str
      required: true
    namespace:
      description: Namespace of the InferenceService.
      type: str
      default: default
    model_format:
      description:
        - The model format the serving runtime is selected by.
        - Required with O(state=present).
      type: dict
      suboptions:
        name:
          description: Format name, for example V(pytorch), V(onnx), V(triton), V(tensorrt), V(sklearn), V(huggingface).
          type: str
          required: true
        version:
          description: Format version, for example V(1) or V(2).
          type: str
    runtime:
      description:
        - ServingRuntime or ClusterServingRuntime to use, for example V(kserve-tritonserver). KServe picks one by format when unset.
      type: str
    runtime_version:
      description: Overrides the runtime image tag, for example V(26.07-py3) for the Triton runtime.
      type: str
    protocol_version:
      description: Inference protocol.
      type: str
      choices: [v1, v2, grpc-v2]
    storage_uri:
      description:
        - Where the model is, one of C(s3://), C(gs://), C(pvc://<claim>/<path>), C(hf://), C(oci://), C(https://).
        - Credentials never go in the URI; attach a Secret to O(service_account) instead.
      type: str
    service_account:
      description: Service account whose attached Secrets hold the storage credentials.
      type: str
    gpus:
      description: GPUs per predictor pod (a limit of O(gpu_resource_name), or the claim's count with O(gpu_allocation=dra)).
      type: int
      default: 0
    gpu_resource_name:
      description: Extended resource to request, V(nvidia.com/gpu) or a MIG profile such as V(nvidia.com/mig-1g.10gb).
      type: str
      default: nvidia.com/gpu
    gpu_product:
      description:
        - Only place predictor pods on nodes whose GPU Feature Discovery label C(nvidia.com/gpu.product) has this value.
        - With O(gpu_allocation=dra), the product of O(gpu_selector) when that names none (no node label is used).
      type: str
    gpu_allocation:
      description:
        - How the predictor pods get their GPUs. V(device_plugin) asks O(gpus) as limits of O(gpu_resource_name).
        - V(dra) claims them through Dynamic Resource Allocation. A ResourceClaimTemplate C(<name>-gpus), applied
          before the InferenceService, asks O(gpus) devices of DeviceClass C(gpu.nvidia.com) (NVIDIA's DRA
          driver) matching O(gpu_selector); the predictor gets C(resourceClaims) and its container
          C(resources.claims), so each predictor pod gets its own claim, which the kube-scheduler allocates.
          No C(nvidia.com/gpu) limit and no GPU Feature Discovery node selector are set.
        - The template's spec cannot change once created; to change O(gpus) or O(gpu_selector), remove the
          service (O(state=absent) with O(gpu_allocation=dra)) and apply it again, or use a new name.
      type: str
      choices: [device_plugin, dra]
      default: device_plugin
      version_added: 0.1.0
    gpu_selector:
      description:
        - With O(gpu_allocation=dra), which devices qualify. The terms are ANDed in one CEL selector
          over the attributes the driver publishes.
      type: dict
      version_added: 0.1.0
      suboptions:
        product:
          description:
            - GPU product as GPU Feature Discovery names it, for example V(NVIDIA-H200). It is
              compared with the device's C(productName), spaces read as dashes.
          type: str
        min_memory:
          description: At least this much GPU memory (a quantity, for example V(140Gi)).
          type: str
        architecture:
          description: GPU architecture, for example V(Hopper) (case-insensitive).
          type: str
        min_compute_capability:
          description: At least this CUDA compute capability, for example V(9.0).
          type: str
    queue_name:
      description:
        - Kueue LocalQueue in the namespace (label C(kueue.x-k8s.io/queue-name) on the InferenceService, which KServe copies
          to the predictor's Deployment and pods). Kueue admits each pod on its own, through its C(pod) and C(deployment)
          integrations (C(aiinfra.cluster.gpu_scheduling) turns them on for team namespaces), and a pod waits gated,
          holding no GPU, until its ClusterQueue has quota for it.
        - A wait that ends while a pod is gated reports the reason Kueue gives (for example insufficient quota).
        - Kueue refuses a change of the queue while pods are ready.
      type: str
      version_added: 0.1.0
    workload_priority_class:
      description:
        - Kueue WorkloadPriorityClass of the pods (label C(kueue.x-k8s.io/priority-class)); C(aiinfra.cluster.gpu_scheduling)
          creates one per PriorityClass.
      type: str
      version_added: 0.1.0
    tolerate_gpu_taint:
      description: When O(gpus) > 0, tolerate the usual C(nvidia.com/gpu:NoSchedule) taint of GPU nodes.
      type: bool
      default: true
    node_selector:
      description: Extra node labels the predictor pods need.
      type: dict
    tolerations:
      description: Extra tolerations for the predictor pods (Kubernetes Toleration objects).
      type: list
      elements: dict
    resources:
      description: CPU and memory of the predictor container.
      type: dict
      suboptions:
        requests:
          description: 'Resource requests, for example C({cpu: "2", memory: 8Gi}).'
          type: dict
        limits:
          description: Resource limits.
          type: dict
    args:
      description: Extra arguments of the model server.
      type: list
      elements: str
    env:
      description: Environment of the model server, a mapping of names to values.
      type: dict
    min_replicas:
      description: Minimum predictor replicas. V(0) (scale to zero) needs O(deployment_mode=Knative).
      type: int
    max_replicas:
      description: Maximum predictor replicas.
      type: int
    scale_metric:
      description: Autoscaling metric. V(concurrency) and V(rps) need O(deployment_mode=Knative).
      type: str
      choices: [cpu, memory, concurrency, rps]
    scale_target:
      description: Target value of O(scale_metric) (percent for cpu/memory).
      type: int
    deployment_mode:
      description: KServe deployment mode, set as the C(serving.kserve.io/deploymentMode) annotation.
      type: str
      default: Standard
      choices: [Standard, Knative]
    canary_traffic_percent:
      description: Percent of traffic for the latest revision (needs O(deployment_mode=Knative)).
      type: int
    transformer:
      description: Optional pre/post-processing container in front of the predictor.
      type: dict
      suboptions:
        image:
          description: Container image.
          type: str
          required: true
        args:
          description: Container arguments.
          type: list
          elements: str
        env:
          description: Environment, a mapping of names to values.
          type: dict
        resources:
          description: C(requests)/C(limits) of the container.
          type: dict
    explainer:
      description: Optional explainer.
      type: dict
      suboptions:
        type:
          description:
            - V(art) runs KServe's Adversarial Robustness Toolbox explainer, V(custom) runs O(explainer.image).
            - V(alibi) is refused; the Alibi explainer no longer exists in KServe.
          type: str
          default: custom
          choices: [art, custom, alibi]
        art_type:
          description: ART attack type.
          type: str
          default: SquareAttack
        config:
          description: ART explainer configuration.
          type: dict
        image:
          description: Explainer image (required for V(custom)).
          type: str
        runtime_version:
          description: ART explainer image tag.
          type: str
        storage_uri:
          description: Storage URI for the explainer.
          type: str
        args:
          description: Container arguments (custom).
          type: list
          elements: str
        env:
          description: Environment (custom).
          type: dict
        resources:
          description: C(requests)/C(limits) of the explainer container.
          type: dict
    labels:
      description: Extra labels of the InferenceService.
      type: dict
    annotations:
      description: Extra annotations of the InferenceService.
      type: dict
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
  - Readiness is the InferenceService C(Ready) condition set by the KServe controller; a timeout reports the last conditions.
"""

EXAMPLES = r"""
- name: ONNX model on one H100, served by Triton through KServe
  aiinfra.cluster.inference_service:
    name: resnet
    namespace: models
    model_format: {name: onnx, version: "1"}
    runtime: kserve-tritonserver
    runtime_version: 26.07-py3
    protocol_version: v2
    storage_uri: s3://models/resnet50
    service_account: models-s3
    gpus: 1
    gpu_product: NVIDIA-H100-80GB-HBM3
    resources:
      requests: {cpu: "2", memory: 8Gi}
      limits: {memory: 8Gi}
    min_replicas: 1
    max_replicas: 4
    scale_metric: cpu
    scale_target: 70
  register: isvc

- name: Print the URL
  ansible.builtin.debug:
    msg: "{{ isvc.url }}"

- name: One H200 per predictor pod, claimed through DRA and allocated by the scheduler
  aiinfra.cluster.inference_service:
    name: llm
    namespace: models
    model_format: {name: huggingface}
    storage_uri: hf://meta-llama/Llama-3.1-8B-Instruct
    gpus: 1
    gpu_allocation: dra
    gpu_selector: {product: NVIDIA-H200, min_memory: 140Gi}

- name: Canary rollout on Knative
  aiinfra.cluster.inference_service:
    name: sentiment
    namespace: models
    deployment_mode: Knative
    model_format: {name: huggingface}
    storage_uri: hf://distilbert/distilbert-base-uncased-finetuned-sst-2-english
    canary_traffic_percent: 10

- name: Remove it
  aiinfra.cluster.inference_service:
    name: resnet
    namespace: models
    model_format: {name: onnx}
    state: absent
"""

RETURN = r"""
batch:
  description:
    - With O(batch), one result per element, in the order given, each holding what a run with that element's
      options returns; the other return values are then not set at the top level.
  returned: when O(batch) is set
  type: list
  elements: dict
url:
  description: External URL from C(status.url) (null in check mode, with O(wait=false) or before the controller sets it).
  returned: state=present
  type: str
  sample: http://resnet-models.example.com
address:
  description: Cluster-local address from C(status.address.url).
  returned: state=present
  type: str
conditions:
  description: Status conditions of the InferenceService.
  returned: state=present
  type: list
  elements: dict
  sample: [{type: Ready, status: "True"}]
ready:
  description: Whether the C(Ready) condition is C(True).
  returned: state=present
  type: bool
manifest:
  description: The InferenceService as sent to the API server.
  returned: always
  type: dict
claim_template:
  description: With O(gpu_allocation=dra), the ResourceClaimTemplate as sent to the API server.
  returned: state=present and O(gpu_allocation=dra)
  type: dict
  version_added: 0.1.0
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

from ansible_collections.aiinfra.cluster.plugins.module_utils import dra
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import KubeError
from ansible_collections.aiinfra.cluster.plugins.module_utils.runner import execute, kube_module, run_bundle
from ansible_collections.aiinfra.cluster.plugins.module_utils.serving_builder import (
    build_inference_service,
    inference_service_ref,
    inference_service_summary,
)

CONTAINER_OPTIONS = {
    "image": {"type": "str", "required": True},
    "args": {"type": "list", "elements": "str"},
    "env": {"type": "dict"},
    "resources": {"type": "dict"},
}

ARGUMENT_SPEC = {
    "name": {"type": "str", "required": True},
    "namespace": {"type": "str", "default": "default"},
    "model_format": {
        "type": "dict",
        "options": {"name": {"type": "str", "required": True}, "version": {"type": "str"}},
    },
    "runtime": {"type": "str"},
    "runtime_version": {"type": "str"},
    "protocol_version": {"type": "str", "choices": ["v1", "v2", "grpc-v2"]},
    "storage_uri": {"type": "str"},
    "service_account": {"type": "str"},
    "gpus": {"type": "int", "default": 0},
    "gpu_resource_name": {"type": "str", "default": "nvidia.com/gpu"},
    "gpu_product": {"type": "str"},
    "gpu_allocation": {"type": "str", "default": "device_plugin", "choices": ["device_plugin", "dra"]},
    "gpu_selector": {"type": "dict", "options": dra.SELECTOR_OPTIONS},
    "queue_name": {"type": "str"},
    "workload_priority_class": {"type": "str"},
    "tolerate_gpu_taint": {"type": "bool", "default": True},
    "node_selector": {"type": "dict"},
    "tolerations": {"type": "list", "elements": "dict"},
    "resources": {"type": "dict", "options": {"requests": {"type": "dict"}, "limits": {"type": "dict"}}},
    "args": {"type": "list", "elements": "str"},
    "env": {"type": "dict"},
    "min_replicas": {"type": "int"},
    "max_replicas": {"type": "int"},
    "scale_metric": {"type": "str", "choices": ["cpu", "memory", "concurrency", "rps"]},
    "scale_target": {"type": "int"},
    "deployment_mode": {"type": "str", "default": "Standard", "choices": ["Standard", "Knative"]},
    "canary_traffic_percent": {"type": "int"},
    "transformer": {"type": "dict", "options": CONTAINER_OPTIONS},
    "explainer": {
        "type": "dict",
        "options": {
            "type": {"type": "str", "default": "custom", "choices": ["art", "custom", "alibi"]},
            "art_type": {"type": "str", "default": "SquareAttack"},
            "config": {"type": "dict"},
            "image": {"type": "str"},
            "runtime_version": {"type": "str"},
            "storage_uri": {"type": "str"},
            "args": {"type": "list", "elements": "str"},
            "env": {"type": "dict"},
            "resources": {"type": "dict"},
        },
    },
    "labels": {"type": "dict"},
    "annotations": {"type": "dict"},
}


def main():
    module = kube_module(
        ARGUMENT_SPEC,
        creates_namespaces=True,
        required_if=[("state", "present", ["model_format"])])

    def body(client):
        params = module.params
        if params["state"] == "absent":
            objects = inference_service_ref(params["name"], params["namespace"], params["gpu_allocation"])
        else:
            objects = build_inference_service(params)
        try:
            result = run_bundle(module, client, objects)
        except KubeError as exc:
            raise dra.explain_immutable_template(exc, params["name"], params["namespace"])
        # The InferenceService is last (under DRA its claim template comes first).
        result["manifest"] = objects[-1]
        if params["state"] == "present":
            if len(objects) > 1:
                result["claim_template"] = objects[0]
            result.update(inference_service_summary(result["resources"][-1].get("object")))
        return result

    execute(module, body)


if __name__ == "__main__":
    main()
