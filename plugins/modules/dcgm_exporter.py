#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: dcgm_exporter
short_description: Deploy the NVIDIA DCGM exporter on GPU nodes (clusters without the GPU Operator)
version_added: 0.1.0
author: aiinfra.cluster contributors (@aiinfra)
description:
  - Applies, in one call, a DaemonSet running the DCGM exporter on GPU nodes only, a Service for
    its metrics port (9400, C(/metrics)), an optional ConfigMap with the metric list and, when the
    Prometheus Operator CRDs are installed, a ServiceMonitor. Waits for the DaemonSet to roll out.
  - The NVIDIA GPU Operator already runs its own exporter (C(nvidia-dcgm-exporter)). When it finds that
    exporter (its DaemonSet, or a ClusterPolicy with C(dcgmExporter) enabled) the module refuses, so two
    exporters do not report the same GPUs twice, unless told otherwise with O(on_gpu_operator).
options:
  <<: &module_options
    name:
      description: Name of the DaemonSet, Service and ServiceMonitor.
      type: str
      default: dcgm-exporter
    namespace:
      description: Namespace to deploy into.
      type: str
      default: gpu-monitoring
    image:
      description: Exporter image (a mirror for air-gapped clusters).
      type: str
      default: nvcr.io/nvidia/k8s/dcgm-exporter:4.6.0-4.8.3-distroless
    image_pull_policy:
      description: Image pull policy.
      type: str
      choices: [Always, IfNotPresent, Never]
    image_pull_secrets:
      description: Names of Secrets to pull the image with.
      type: list
      elements: str
    node_selector:
      description:
        - Nodes to run on. The default, the GPU Feature Discovery label C(nvidia.com/gpu.present=true),
          keeps the exporter off CPU-only nodes.
      type: dict
    tolerations:
      description: Pod tolerations; one for the C(nvidia.com/gpu) taint is always added.
      type: list
      elements: dict
    profiling_metrics:
      description:
        - Grant the C(SYS_ADMIN) capability that the profiling metrics (C(DCGM_FI_PROF_*), tensor and DRAM
          activity) need. With V(false) the exporter runs without it, as root with every capability dropped
          while O(pod_resources=true), else as a non-root user.
      type: bool
      default: true
    pod_resources:
      description:
        - Label each GPU's metrics with the namespace, pod and container using it, read from the kubelet's
          pod-resources socket (C(/var/lib/kubelet/pod-resources), mounted read-only).
        - Only root can open that socket, so with V(true) the exporter runs as root (with no capability unless
          O(profiling_metrics=true)). V(false) drops the mount and the mapping; with O(profiling_metrics=false)
          the exporter then runs as a non-root user.
      type: bool
      default: true
      version_added: 1.1.0
    runtime_class_name:
      description:
        - RuntimeClass of the exporter pods. Where C(nvidia) is not containerd's default runtime (CDI, or the
          C(nvidia_container_toolkit) role with its default runtime left alone) only the NVIDIA runtime gives the
          container the GPUs (C(NVIDIA_VISIBLE_DEVICES=all) is always set, as the exporter requests no
          C(nvidia.com/gpu)).
        - The module fails before applying anything when the RuntimeClass does not exist and GPU nodes (matching
          O(node_selector)) do, since the API server would reject every pod; with no GPU node it only warns.
        - Set to an empty string to leave the pods on the default runtime.
      type: str
      default: nvidia
      version_added: 1.1.0
    metrics_csv:
      description:
        - A custom metric list (DCGM exporter CSV format), mounted from a ConfigMap. Default is the image's list.
      type: str
    resources:
      description: Container resources (requests/limits).
      type: dict
    priority_class_name:
      description: PriorityClass of the exporter pods (for example V(system-node-critical)).
      type: str
    service_monitor:
      description:
        - Create a ServiceMonitor. V(auto) creates one when the C(monitoring.coreos.com/v1) API is served, and
          otherwise warns that Prometheus will not scrape the exporter until the Prometheus Operator is installed.
      type: str
      choices: [auto, 'true', 'false']
      default: auto
    service_monitor_labels:
      description: Extra labels on the ServiceMonitor so that Prometheus selects it (for example C(release=kube-prometheus-stack)).
      type: dict
    scrape_interval:
      description: ServiceMonitor scrape interval.
      type: str
      default: 15s
    on_gpu_operator:
      description:
        - What to do when the GPU Operator runs (or is configured to run) its own DCGM exporter.
        - V(fail) refuses with a message naming it; V(skip) changes nothing and warns why (for roles that
          run on clusters with and without the operator); V(deploy) deploys this exporter anyway.
      type: str
      choices: [fail, skip, deploy]
      default: fail
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
- name: DCGM exporter on every GPU node, scraped by kube-prometheus-stack
  aiinfra.cluster.dcgm_exporter:
    namespace: gpu-monitoring
    service_monitor_labels:
      release: kube-prometheus-stack

- name: From a local mirror, without profiling metrics
  aiinfra.cluster.dcgm_exporter:
    image: registry.local/nvidia/k8s/dcgm-exporter:4.6.0-4.8.3-distroless
    profiling_metrics: false

- name: Non-root, without per-pod labels, on nodes where nvidia is the default runtime
  aiinfra.cluster.dcgm_exporter:
    profiling_metrics: false
    pod_resources: false
    runtime_class_name: ""
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
    - {apiVersion: apps/v1, kind: DaemonSet, name: dcgm-exporter, namespace: gpu-monitoring, changed: true, action: created}
skipped_reason:
  description: Why nothing was deployed (O(on_gpu_operator=skip) and the operator's exporter was found).
  returned: when skipped
  type: str
  sample: DaemonSet gpu-operator/nvidia-dcgm-exporter (the NVIDIA GPU Operator's DCGM exporter)
service_monitor:
  description: Whether a ServiceMonitor is part of the bundle.
  returned: always
  type: bool
  sample: true
api_requests:
  description: API requests sent, by HTTP verb.
  returned: always
  type: dict
  sample: {GET: 3, PATCH: 2}
"""

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError, InputError
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import path_quote
from ansible_collections.aiinfra.cluster.plugins.module_utils.observability_builder import (
    DCGM_IMAGE,
    GPU_OPERATOR_EXPORTER_LABEL,
    build_dcgm_exporter,
    gpu_operator_exporter,
)
from ansible_collections.aiinfra.cluster.plugins.module_utils.runner import execute, kube_module, run_bundle


def serves(client, api_version, plural):
    """Whether the cluster serves `plural` in `api_version` (one discovery request)."""
    try:
        body = client.get("/apis/%s" % api_version) or {}
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return any(r.get("name") == plural for r in body.get("resources") or [])


def operator_exporter(client):
    daemonsets = (client.get("/apis/apps/v1/daemonsets", query={"labelSelector": GPU_OPERATOR_EXPORTER_LABEL, "limit": 1}) or {}).get("items")
    policies = []
    if not daemonsets and serves(client, "nvidia.com/v1", "clusterpolicies"):
        policies = (client.get("/apis/nvidia.com/v1/clusterpolicies") or {}).get("items")
    return gpu_operator_exporter(daemonsets, policies)


def check_runtime_class(module, client, daemonset):
    """The API server rejects pods whose RuntimeClass does not exist: say so before applying, naming the option."""
    pod_spec = daemonset["spec"]["template"]["spec"]
    name = pod_spec.get("runtimeClassName")
    if not name:
        return
    try:
        client.get("/apis/node.k8s.io/v1/runtimeclasses/%s" % path_quote(name))
        return
    except ApiError as exc:
        if exc.status != 404:
            raise
    selector = ",".join("%s=%s" % kv for kv in sorted(pod_spec["nodeSelector"].items()))
    nodes = (client.get("/api/v1/nodes", query={"labelSelector": selector, "limit": 1}) or {}).get("items")
    msg = (
        "option runtime_class_name: RuntimeClass %s does not exist, so the API server rejects the exporter's pods; install the NVIDIA "
        "Container Toolkit's RuntimeClass (role nvidia_container_toolkit, or the GPU Operator), or set runtime_class_name: '' where "
        "nvidia is containerd's default runtime" % name
    )
    if module.check_mode:
        # A preview: the GPU Operator or the toolkit role may create it earlier in the same run.
        module.warn(msg + " (check mode: unless an earlier task of this run creates it)")
    elif nodes:
        raise InputError(msg)
    else:
        module.warn(msg + " (no node matches node_selector yet, so no pod is rejected now)")


def main():
    module = kube_module(
        {
            "name": {"type": "str", "default": "dcgm-exporter"},
            "namespace": {"type": "str", "default": "gpu-monitoring"},
            "image": {"type": "str", "default": DCGM_IMAGE},
            "image_pull_policy": {"type": "str", "choices": ["Always", "IfNotPresent", "Never"]},
            "image_pull_secrets": {"type": "list", "elements": "str", "no_log": False},
            "node_selector": {"type": "dict"},
            "tolerations": {"type": "list", "elements": "dict"},
            "profiling_metrics": {"type": "bool", "default": True},
            "pod_resources": {"type": "bool", "default": True},
            "runtime_class_name": {"type": "str", "default": "nvidia"},
            "metrics_csv": {"type": "str"},
            "resources": {"type": "dict"},
            "priority_class_name": {"type": "str"},
            "service_monitor": {"type": "str", "default": "auto", "choices": ["auto", "true", "false"]},
            "service_monitor_labels": {"type": "dict"},
            "scrape_interval": {"type": "str", "default": "15s"},
            "on_gpu_operator": {"type": "str", "default": "fail", "choices": ["fail", "skip", "deploy"]},
        },
        creates_namespaces=True,
    )
    params = module.params

    def body(client):
        build_params = dict(params)
        monitor = params["service_monitor"]
        if params["state"] == "absent":
            # Delete the ServiceMonitor too if the API exists; absent objects are not a change.
            build_params["service_monitor"] = monitor != "false" and serves(client, "monitoring.coreos.com/v1", "servicemonitors")
        elif monitor == "auto":
            build_params["service_monitor"] = serves(client, "monitoring.coreos.com/v1", "servicemonitors")
            if not build_params["service_monitor"]:
                module.warn(
                    "No ServiceMonitor for the DCGM exporter: the Prometheus Operator CRDs (monitoring.coreos.com/v1) are not "
                    "installed; install the Prometheus Operator (kube-prometheus-stack) for Prometheus to scrape it, "
                    "or set service_monitor: false"
                )
        else:
            build_params["service_monitor"] = monitor == "true"
        objects = build_dcgm_exporter(build_params)
        if params["state"] == "present" and params["on_gpu_operator"] != "deploy":
            found = operator_exporter(client)
            if found and params["on_gpu_operator"] == "skip":
                module.warn("DCGM exporter not deployed: the GPU Operator's exporter runs (%s)" % found)
                return {"changed": False, "resources": [], "service_monitor": False, "skipped_reason": found}
            if found:
                raise InputError(
                    "the GPU Operator already provides a DCGM exporter: %s. A second exporter on the same GPUs "
                    "duplicates every metric; use the operator's (dcgmExporter.serviceMonitor.enabled in its values), "
                    "or set on_gpu_operator: deploy to deploy this one anyway (skip to leave it to the operator)" % found
                )
        if params["state"] == "present":
            check_runtime_class(module, client, [o for o in objects if o["kind"] == "DaemonSet"][0])
        result = run_bundle(module, client, objects)
        result["service_monitor"] = bool(build_params["service_monitor"])
        return result

    execute(module, body)


if __name__ == "__main__":
    main()
