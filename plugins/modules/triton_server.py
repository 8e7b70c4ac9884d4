#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: triton_server
short_description: Run NVIDIA Triton Inference Server on Kubernetes without KServe
version_added: 0.1.0
author: aiinfra.cluster contributors (@aiinfra)
description:
  - Applies a Deployment and a Service for Triton Inference Server (HTTP 8000, gRPC 8001, metrics 8002),
    with an optional HorizontalPodAutoscaler and an optional Prometheus Operator ServiceMonitor or PodMonitor
    on the metrics port, in one call; waits for the Deployment rollout.
  - Startup, readiness and liveness probes use Triton's C(/v2/health/ready) and C(/v2/health/live).
  - Pods run as the image's non-root C(triton-server) user (uid 1000) with all capabilities dropped.
options:
  <<: &module_options
    name:
      description: Name of the Deployment, Service, HPA and monitor.
      type: str
      required: true
    namespace:
      description: Namespace.
      type: str
      default: default
    image:
      description: Triton image; override for a registry mirror.
      type: str
      default: nvcr.io/nvidia/tritonserver:26.07-py3
    image_pull_policy:
      description: Image pull policy.
      type: str
      choices: [Always, IfNotPresent, Never]
    image_pull_secrets:
      description: Names of Secrets used to pull the image (for example an NGC key).
      type: list
      elements: str
    replicas:
      description: Replicas when O(autoscaling.enabled) is false.
      type: int
      default: 1
    model_repository:
      description:
        - V(pvc://<claim>/<path>) mounts the claim read-only at C(/models); V(s3://), V(gs://) and V(as://)
          are read by Triton directly, with credentials from O(storage_secret).
        - Required with O(state=present).
      type: str
    storage_secret:
      description:
        - Secret whose keys become environment variables of the server, for example C(AWS_ACCESS_KEY_ID),
          C(AWS_SECRET_ACCESS_KEY), C(AWS_DEFAULT_REGION). Credentials are only taken from a Secret.
      type: str
    model_control_mode:
      description: Triton's C(--model-control-mode). Keep V(none) in production unless models must change at run time.
      type: str
      default: none
      choices: [none, poll, explicit]
    repository_poll_secs:
      description: Poll interval for O(model_control_mode=poll) (default 30).
      type: int
    load_models:
      description: Models to load at start with O(model_control_mode=explicit) (V(*) for all).
      type: list
      elements: str
    strict_readiness:
      description: Triton's C(--strict-readiness) (ready only when every model is loaded). Triton's default when unset.
      type: bool
    extra_args:
      description: More C(tritonserver) arguments.
      type: list
      elements: str
    env:
      description: Environment of the server, a mapping of names to values.
      type: dict
    gpus:
      description: GPUs per pod (a limit of O(gpu_resource_name), or the claim's count with O(gpu_allocation=dra)).
      type: int
      default: 1
    gpu_resource_name:
      description: Extended resource to request, V(nvidia.com/gpu) or a MIG profile.
      type: str
      default: nvidia.com/gpu
    gpu_product:
      description:
        - Only run on nodes whose C(nvidia.com/gpu.product) label (GPU Feature Discovery) has this value.
        - With O(gpu_allocation=dra), the product of O(gpu_selector) when that names none (no node label is used).
      type: str
    gpu_allocation:
      description:
        - How the server pods get their GPUs. V(device_plugin) asks O(gpus) as limits of O(gpu_resource_name).
        - V(dra) claims them through Dynamic Resource Allocation. A ResourceClaimTemplate C(<name>-gpus), applied
          before the Deployment, asks O(gpus) devices of DeviceClass C(gpu.nvidia.com) (NVIDIA's DRA driver)
          matching O(gpu_selector); the pod spec gets C(resourceClaims) and the server container
          C(resources.claims), so each pod gets its own claim, which the kube-scheduler allocates.
          No C(nvidia.com/gpu) limit and no GPU Feature Discovery node selector are set.
        - The template's spec cannot change once created; to change O(gpus) or O(gpu_selector), remove the
          server (O(state=absent) with O(gpu_allocation=dra)) and apply it again, or use a new name.
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
        - Kueue LocalQueue in the namespace (label C(kueue.x-k8s.io/queue-name) on the Deployment and its pods). Kueue admits
          each pod on its own, through its C(pod) and C(deployment) integrations (C(aiinfra.cluster.gpu_scheduling)
          turns them on for team namespaces), and a pod waits gated, holding no GPU, until its ClusterQueue has quota for it.
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
      description: Extra node labels.
      type: dict
    tolerations:
      description: Extra tolerations.
      type: list
      elements: dict
    resources:
      description: CPU and memory of the server container.
      type: dict
      suboptions:
        requests:
          description: Resource requests.
          type: dict
        limits:
          description: Resource limits.
          type: dict
    shm_size:
      description: Size of the memory-backed C(/dev/shm) (the Python backend and large tensors need it).
      type: str
      default: 1Gi
    startup_failure_threshold:
      description: Startup probe failures (every 10 s) allowed while models load.
      type: int
      default: 30
    service_type:
      description: Type of the Service.
      type: str
      default: ClusterIP
      choices: [ClusterIP, NodePort, LoadBalancer]
    service_account:
      description: Service account of the pods.
      type: str
    autoscaling:
      description: A HorizontalPodAutoscaler on CPU utilisation.
      type: dict
      suboptions:
        enabled:
          description: Create the HPA (the Deployment's replica count is then left to it).
          type: bool
          default: false
        min_replicas:
          description: Minimum replicas.
          type: int
          default: 1
        max_replicas:
          description: Maximum replicas (required when enabled).
          type: int
        target_cpu_utilization:
          description: Average CPU utilisation to hold, in percent.
          type: int
          default: 80
    monitoring:
      description: Prometheus Operator object scraping the metrics port 8002 (needs the monitoring.coreos.com CRDs).
      type: str
      default: none
      choices: [none, service_monitor, pod_monitor]
    metrics_interval:
      description: Scrape interval.
      type: str
      default: 30s
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
- name: Triton on H100 nodes, models on a PVC, scraped by Prometheus
  aiinfra.cluster.triton_server:
    name: triton
    namespace: inference
    model_repository: pvc://model-store/triton
    gpus: 1
    gpu_product: NVIDIA-H100-80GB-HBM3
    replicas: 2
    monitoring: service_monitor
  register: triton

- name: Triton reading models from S3, credentials from a Secret, autoscaled
  aiinfra.cluster.triton_server:
    name: triton-s3
    namespace: inference
    model_repository: s3://models/triton
    storage_secret: triton-s3-credentials
    model_control_mode: explicit
    load_models: ["*"]
    autoscaling:
      enabled: true
      min_replicas: 1
      max_replicas: 8

- name: Triton on one H200 per pod, claimed through DRA (the scheduler places it where such a GPU is free)
  aiinfra.cluster.triton_server:
    name: triton-h200
    namespace: inference
    model_repository: pvc://model-store/triton
    gpus: 1
    gpu_allocation: dra
    gpu_selector: {product: NVIDIA-H200}

- name: Remove it
  aiinfra.cluster.triton_server:
    name: triton
    namespace: inference
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
endpoints:
  description: In-cluster URLs of the Service and the ready pod addresses behind it.
  returned: state=present
  type: dict
  sample:
    http: http://triton.inference.svc:8000
    grpc: triton.inference.svc:8001
    metrics: http://triton.inference.svc:8002/metrics
    cluster_ip: 10.96.0.12
    ready_addresses: [10.244.0.5, 10.244.0.6]
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

import time

from ansible_collections.aiinfra.cluster.plugins.module_utils import dra
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError, KubeError
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import path_quote
from ansible_collections.aiinfra.cluster.plugins.module_utils.runner import execute, kube_module, run_bundle
from ansible_collections.aiinfra.cluster.plugins.module_utils.serving_builder import (
    build_triton_monitor,
    build_triton_server,
    triton_endpoints,
    triton_labels,
)

ARGUMENT_SPEC = {
    "name": {"type": "str", "required": True},
    "namespace": {"type": "str", "default": "default"},
    "image": {"type": "str", "default": "nvcr.io/nvidia/tritonserver:26.07-py3"},
    "image_pull_policy": {"type": "str", "choices": ["Always", "IfNotPresent", "Never"]},
    "image_pull_secrets": {"type": "list", "elements": "str", "no_log": False},
    "replicas": {"type": "int", "default": 1},
    "model_repository": {"type": "str"},
    "storage_secret": {"type": "str", "no_log": False},
    "model_control_mode": {"type": "str", "default": "none", "choices": ["none", "poll", "explicit"]},
    "repository_poll_secs": {"type": "int"},
    "load_models": {"type": "list", "elements": "str"},
    "strict_readiness": {"type": "bool"},
    "extra_args": {"type": "list", "elements": "str"},
    "env": {"type": "dict"},
    "gpus": {"type": "int", "default": 1},
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
    "shm_size": {"type": "str", "default": "1Gi"},
    "startup_failure_threshold": {"type": "int", "default": 30},
    "service_type": {"type": "str", "default": "ClusterIP", "choices": ["ClusterIP", "NodePort", "LoadBalancer"]},
    "service_account": {"type": "str"},
    "autoscaling": {
        "type": "dict",
        "options": {
            "enabled": {"type": "bool", "default": False},
            "min_replicas": {"type": "int", "default": 1},
            "max_replicas": {"type": "int"},
            "target_cpu_utilization": {"type": "int", "default": 80},
        },
    },
    "monitoring": {"type": "str", "default": "none", "choices": ["none", "service_monitor", "pod_monitor"]},
    "metrics_interval": {"type": "str", "default": "30s"},
}


def absent_objects(name, namespace, gpu_allocation=None):
    """Everything the module may have created under this name (the claim template under DRA)."""
    meta = {"name": name, "namespace": namespace}
    objects = [dra.claim_template_ref(name, namespace)] if gpu_allocation == "dra" else []
    objects += [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": dict(meta)},
        {"apiVersion": "v1", "kind": "Service", "metadata": dict(meta)},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": dict(meta)},
    ]
    for kind in ("service_monitor", "pod_monitor"):
        monitor = build_triton_monitor(name, namespace, triton_labels(name), kind, "30s")
        objects.append({"apiVersion": monitor["apiVersion"], "kind": monitor["kind"], "metadata": dict(meta)})
    return objects


def read_endpoint_slices(client, name, namespace, expected, attempts=10):
    """The Service's EndpointSlices; the slice controller trails the rollout by a moment, so
    poll briefly until `expected` ready addresses show up."""
    items = []
    for _attempt in range(attempts):
        try:
            listing = client.get(
                "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices" % path_quote(namespace),
                query={"labelSelector": "kubernetes.io/service-name=%s" % name},
            )
        except ApiError:
            return []
        items = (listing or {}).get("items") or []
        if len(triton_endpoints(name, namespace, None, items)["ready_addresses"]) >= expected:
            break
        time.sleep(0.5)
    return items


def main():
    module = kube_module(
        ARGUMENT_SPEC,
        creates_namespaces=True,
        required_if=[("state", "present", ["model_repository"])])

    def body(client):
        params = module.params
        if params["state"] == "absent":
            return run_bundle(module, client, absent_objects(params["name"], params["namespace"], params["gpu_allocation"]))
        objects = build_triton_server(params)
        try:
            result = run_bundle(module, client, objects)
        except KubeError as exc:
            raise dra.explain_immutable_template(exc, params["name"], params["namespace"])
        service = next((r.get("object") for r in result["resources"] if r["kind"] == "Service"), None)
        slices = []
        if params["wait"] and not module.check_mode:
            deployment = next((r.get("object") for r in result["resources"] if r["kind"] == "Deployment"), None) or {}
            expected = ((deployment.get("status") or {}).get("availableReplicas")) or 0
            slices = read_endpoint_slices(client, params["name"], params["namespace"], expected)
        result["endpoints"] = triton_endpoints(params["name"], params["namespace"], service, slices)
        return result

    execute(module, body)


if __name__ == "__main__":
    main()
