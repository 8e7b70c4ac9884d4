#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gpu_node_info
short_description: GPU inventory of a Kubernetes cluster
version_added: 0.1.0
author: aiinfra.cluster contributors (@aiinfra)
description:
  - Reports, per node, the C(nvidia.com/gpu) (and MIG C(nvidia.com/mig-*)) capacity, allocatable and
    requested counts, the GPU Feature Discovery product and memory labels, taints and schedulability,
    with totals per GPU product.
  - Reads nodes and pods with paginated list requests (no request per node), so it serves
    thousands of nodes.
options:
  label_selector:
    description:
      - Only nodes matching this label selector, for example V(nvidia.com/gpu.present=true).
    type: str
  product:
    description:
      - Only nodes whose C(nvidia.com/gpu.product) label equals this value.
    type: str
  only_schedulable:
    description:
      - Only nodes that are Ready and not cordoned.
    type: bool
    default: false
  only_gpu_nodes:
    description:
      - Leave out nodes without any GPU capacity.
    type: bool
    default: true
  count_requests:
    description:
      - Sum the GPU requests of pods bound to each node (one paginated pod list).
      - Set to V(false) for a capacity-only report with fewer requests.
    type: bool
    default: true
  dra:
    description:
      - Also report the GPUs published for Dynamic Resource Allocation by NVIDIA's DRA driver
        (ResourceSlices of driver C(gpu.nvidia.com)), per node and per C(productName), with the devices
        ResourceClaims hold. One paginated list of those ResourceSlices and one of ResourceClaims.
      - A node with DRA devices and no device-plugin GPUs (the device plugin is off under DRA) counts
        as a GPU node. Where the cluster serves no C(resource.k8s.io/v1), RV(dra) is V(null).
    type: bool
    default: true
    version_added: 0.1.0
  page_size:
    description:
      - Items per list request.
    type: int
    default: 500
extends_documentation_fragment:
  - aiinfra.cluster.auth
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: GPU inventory of the cluster
  aiinfra.cluster.gpu_node_info:
  register: gpus

- name: Show free GPUs per product
  ansible.builtin.debug:
    msg: "{{ gpus.products }}"

- name: Only schedulable H100 nodes, capacity only
  aiinfra.cluster.gpu_node_info:
    product: NVIDIA-H100-80GB-HBM3
    only_schedulable: true
    count_requests: false
    kubeconfig: /etc/aiinfra/kubeconfig
"""

RETURN = r"""
nodes:
  description: One entry per matching node, sorted by name.
  returned: always
  type: list
  elements: dict
  sample:
    - name: gpu-node-0
      product: NVIDIA-H100-80GB-HBM3
      gpu_memory_mib: 81559
      gpu_capacity: 8
      gpu_allocatable: 8
      gpu_requested: 2
      gpu_free: 6
      mig: {}
      ready: true
      schedulable: true
      taints: []
      labels: {nvidia.com/gpu.count: "8"}
      dra: {devices: 8, allocated: 2, free: 6, products: {NVIDIA H200: {devices: 8, allocated: 2, free: 6}}}
totals:
  description: Sums over the matching nodes.
  returned: always
  type: dict
  sample: {nodes: 4, gpu_capacity: 32, gpu_allocatable: 32, gpu_requested: 2, gpu_free: 30}
products:
  description: Sums per C(nvidia.com/gpu.product) label (C(unknown) when the label is missing).
  returned: always
  type: dict
  sample: {NVIDIA-H100-80GB-HBM3: {nodes: 4, gpu_capacity: 32, gpu_allocatable: 32, gpu_requested: 2, gpu_free: 30}}
dra:
  description:
    - DRA GPUs of driver C(gpu.nvidia.com) over the matching nodes, per C(productName) attribute (NVML's
      name, with spaces where the GFD label has dashes). Each node entry has the same counts under C(dra).
    - V(null) with O(dra=false) or where the cluster serves no C(resource.k8s.io/v1).
  returned: always
  type: dict
  sample: {driver: gpu.nvidia.com, nodes: 2, devices: 16, allocated: 8, free: 8,
           products: {NVIDIA H200: {devices: 16, allocated: 8, free: 8}}}
api_requests:
  description: API requests sent, by HTTP verb.
  returned: always
  type: dict
  sample: {GET: 2}
"""

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError
from ansible_collections.aiinfra.cluster.plugins.module_utils.gpu_inventory import DRA_DRIVER, summarize_dra, summarize_inventory
from ansible_collections.aiinfra.cluster.plugins.module_utils.runner import execute, kube_module


def read_dra(module, client, page_size):
    """DRA GPUs per node: one paginated list of the driver's ResourceSlices and one of the claims.
    None where resource.k8s.io/v1 is not served, or (with a warning) where this account may not
    list them: the device-plugin report stays useful to a node reader."""
    try:
        slices = client.list_all("/apis/resource.k8s.io/v1/resourceslices", {"fieldSelector": "spec.driver=%s" % DRA_DRIVER}, page_size)
        claims = client.list_all("/apis/resource.k8s.io/v1/resourceclaims", {}, max(page_size, 1000)) if slices else []
    except ApiError as exc:
        if exc.status == 403:
            module.warn("no DRA report: %s (set dra=false, or grant list on resourceslices and resourceclaims)" % exc)
            return None
        if exc.status == 404:
            return None
        raise
    return summarize_dra(slices, claims)


def main():
    module = kube_module(
        {
            "label_selector": {"type": "str"},
            "product": {"type": "str"},
            "only_schedulable": {"type": "bool", "default": False},
            "only_gpu_nodes": {"type": "bool", "default": True},
            "count_requests": {"type": "bool", "default": True},
            "dra": {"type": "bool", "default": True},
            "page_size": {"type": "int", "default": 500},
        },
        with_apply=False,
    )
    params = module.params
    if params["page_size"] < 1:
        module.fail_json(msg="page_size must be a positive number, got %d" % params["page_size"])

    def body(client):
        selector = params["label_selector"]
        if params["product"]:
            product_sel = "nvidia.com/gpu.product=%s" % params["product"]
            selector = "%s,%s" % (selector, product_sel) if selector else product_sel
        nodes = client.list_all("/api/v1/nodes", {"labelSelector": selector}, params["page_size"])
        pods = []
        if params["count_requests"] and nodes:
            pods = client.list_all("/api/v1/pods", {"fieldSelector": "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"},
                                   max(params["page_size"], 1000))
        dra_nodes = read_dra(module, client, params["page_size"]) if params["dra"] and nodes else None
        result = summarize_inventory(nodes, pods, only_schedulable=params["only_schedulable"], only_gpu_nodes=params["only_gpu_nodes"],
                                     dra_nodes=dra_nodes)
        result.setdefault("dra", None)
        result["changed"] = False
        return result

    execute(module, body)


if __name__ == "__main__":
    main()
