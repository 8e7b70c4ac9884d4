# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Pure GPU accounting over Node and Pod objects (no API calls; unit-tested)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.aiinfra.cluster.plugins.module_utils.dra import DRIVER as DRA_DRIVER

GPU = "nvidia.com/gpu"
MIG_PREFIX = "nvidia.com/mig-"
GFD_LABELS = (
    "nvidia.com/gpu.present",
    "nvidia.com/gpu.product",
    "nvidia.com/gpu.count",
    "nvidia.com/gpu.memory",
    "nvidia.com/gpu.family",
    "nvidia.com/gpu.compute.major",
    "nvidia.com/gpu.compute.minor",
    "nvidia.com/mig.capable",
    "nvidia.com/mig.strategy",
    "nvidia.com/gpu.replicas",
    "nvidia.com/gpu.sharing-strategy",
    "nvidia.com/gpu.clique",
    # Driver and MIG state (the preflight compares them with images and the MIG strategy).
    "nvidia.com/cuda.driver-version.full",
    "nvidia.com/cuda.driver-version.major",
    "nvidia.com/cuda.driver.major",
    "nvidia.com/cuda.driver.minor",
    "nvidia.com/cuda.driver.rev",
    "nvidia.com/mig.config",
    "nvidia.com/mig.config.state",
)


def count(value):
    """Extended resources are whole numbers; tolerate '8', 8 and absent."""
    if value in (None, ""):
        return 0
    try:
        return int(str(value))
    except ValueError:
        return 0


def driver_version(labels):
    """(major, full) of the node's NVIDIA driver from GFD's labels (the cuda.driver-version.* set,
    or the older cuda.driver.* one); (None, None) where GFD has not labelled the node."""
    major = count(labels.get("nvidia.com/cuda.driver-version.major") or labels.get("nvidia.com/cuda.driver.major"))
    if not major:
        return None, None
    full = labels.get("nvidia.com/cuda.driver-version.full") or ".".join(
        str(labels[key]) for key in ("nvidia.com/cuda.driver.major", "nvidia.com/cuda.driver.minor", "nvidia.com/cuda.driver.rev") if labels.get(key))
    return major, full or str(major)


def _is_gpu_resource(name):
    return name == GPU or name.startswith(MIG_PREFIX)


def pod_gpu_requests(pod):
    """Effective GPU requests of one pod, per resource: the larger of the sum over containers and
    the largest init container, as the scheduler counts them. Limits stand in for requests."""
    spec = pod.get("spec") or {}

    def per_container(container):
        res = container.get("resources") or {}
        merged = dict(res.get("limits") or {})
        merged.update(res.get("requests") or {})
        return dict((k, count(v)) for k, v in merged.items() if _is_gpu_resource(k))

    total = {}
    for container in spec.get("containers") or []:
        for name, value in per_container(container).items():
            total[name] = total.get(name, 0) + value
    for container in spec.get("initContainers") or []:
        for name, value in per_container(container).items():
            total[name] = max(total.get(name, 0), value)
    return total


def node_ready(node):
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def _empty_totals():
    return {"nodes": 0, "gpu_capacity": 0, "gpu_allocatable": 0, "gpu_requested": 0, "gpu_free": 0}


def _dra_empty():
    return {"devices": 0, "allocated": 0, "free": 0}


def _attribute(device, name):
    """A device attribute's value, whatever its type (string, version, int, bool)."""
    value = ((device.get("attributes") or {}).get(name)) or {}
    for key in ("string", "version", "int", "bool"):
        if key in value:
            return value[key]
    return None


def summarize_dra(slices, claims, driver=DRA_DRIVER):
    """DRA devices of `driver` per node, from ResourceSlices, and which of them ResourceClaims hold.

    Returns {node: {devices, allocated, free, products: {productName: {devices, allocated, free}}}}.
    A device is allocated when a claim's status.allocation names its driver, pool and name."""
    taken = set()
    for claim in claims:
        results = ((((claim.get("status") or {}).get("allocation") or {}).get("devices") or {}).get("results")) or []
        for res in results:
            if res.get("driver") == driver:
                taken.add((res.get("pool"), res.get("device")))
    per_node = {}
    for rs in slices:
        spec = rs.get("spec") or {}
        if spec.get("driver") != driver:
            continue
        node, pool = spec.get("nodeName"), (spec.get("pool") or {}).get("name")
        entry = per_node.setdefault(node, dict(_dra_empty(), products={}))
        for device in spec.get("devices") or []:
            if _attribute(device, "type") not in (None, "gpu"):
                continue  # MIG and VFIO devices are other device classes
            product = _attribute(device, "productName") or "unknown"
            allocated = 1 if (pool, device.get("name")) in taken else 0
            for bucket in (entry, entry["products"].setdefault(product, _dra_empty())):
                bucket["devices"] += 1
                bucket["allocated"] += allocated
                bucket["free"] += 1 - allocated
    return per_node


def _add_dra(total, entry):
    for key in ("devices", "allocated", "free"):
        total[key] += entry[key]
    for product, counts in entry["products"].items():
        bucket = total["products"].setdefault(product, _dra_empty())
        for key in ("devices", "allocated", "free"):
            bucket[key] += counts[key]


def summarize_inventory(nodes, pods, only_schedulable=False, only_gpu_nodes=True, dra_nodes=None):
    """`dra_nodes` (from summarize_dra) adds each node's DRA devices; a node with DRA devices and no
    device-plugin GPUs (the device plugin is off under DRA) is a GPU node too."""
    requested = {}
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if not node_name or phase in ("Succeeded", "Failed"):
            continue
        per_node = requested.setdefault(node_name, {})
        for name, value in pod_gpu_requests(pod).items():
            per_node[name] = per_node.get(name, 0) + value

    report, totals, products = [], _empty_totals(), {}
    dra_totals = dict(_dra_empty(), products={}, nodes=0)
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        meta, status = node.get("metadata") or {}, node.get("status") or {}
        labels = meta.get("labels") or {}
        capacity, allocatable = status.get("capacity") or {}, status.get("allocatable") or {}
        name = meta["name"]
        mig = {}
        for res in sorted(set(k for k in list(capacity) + list(allocatable) if k.startswith(MIG_PREFIX))):
            mig[res] = {
                "capacity": count(capacity.get(res)),
                "allocatable": count(allocatable.get(res)),
                "requested": requested.get(name, {}).get(res, 0),
            }
        gpu_cap, gpu_alloc = count(capacity.get(GPU)), count(allocatable.get(GPU))
        dra = (dra_nodes or {}).get(name)
        if only_gpu_nodes and not gpu_cap and not mig and not (dra and dra["devices"]):
            continue
        ready = node_ready(node)
        schedulable = ready and not (node.get("spec") or {}).get("unschedulable", False)
        if only_schedulable and not schedulable:
            continue
        gpu_req = requested.get(name, {}).get(GPU, 0)
        entry = {
            "name": name,
            "product": labels.get("nvidia.com/gpu.product"),
            "gpu_memory_mib": count(labels.get("nvidia.com/gpu.memory")) or None,
            "gpu_capacity": gpu_cap,
            "gpu_allocatable": gpu_alloc,
            "gpu_requested": gpu_req,
            "gpu_free": max(gpu_alloc - gpu_req, 0),
            "mig": mig,
            "ready": ready,
            "schedulable": schedulable,
            "taints": (node.get("spec") or {}).get("taints") or [],
            "labels": dict((k, v) for k, v in labels.items() if k in GFD_LABELS),
        }
        if dra_nodes is not None:
            entry["dra"] = dra or dict(_dra_empty(), products={})
            _add_dra(dra_totals, entry["dra"])
            dra_totals["nodes"] += 1 if entry["dra"]["devices"] else 0
        report.append(entry)
        product = products.setdefault(entry["product"] or "unknown", _empty_totals())
        for bucket in (totals, product):
            bucket["nodes"] += 1
            bucket["gpu_capacity"] += gpu_cap
            bucket["gpu_allocatable"] += gpu_alloc
            bucket["gpu_requested"] += gpu_req
            bucket["gpu_free"] += entry["gpu_free"]
    result = {"nodes": report, "totals": totals, "products": products}
    if dra_nodes is not None:
        result["dra"] = dict(dra_totals, driver=DRA_DRIVER)
    return result
