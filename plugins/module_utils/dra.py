# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""GPUs through Dynamic Resource Allocation (resource.k8s.io/v1): the ResourceClaimTemplate a
workload's pods claim their GPUs from, on DeviceClass gpu.nvidia.com of NVIDIA's DRA driver, with
a CEL selector built from `gpu_selector` (pure functions, unit-tested)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError
from ansible_collections.aiinfra.cluster.plugins.module_utils.quantities import check_quantity

DRIVER = "gpu.nvidia.com"
DEVICE_CLASS = "gpu.nvidia.com"
CLAIM_NAME = "gpus"
VERSION = re.compile(r"^\d+(\.\d+){0,2}$")
ATTR = "device.attributes['%s']" % DRIVER
CAPACITY = "device.capacity['%s']" % DRIVER

SELECTOR_OPTIONS = {
    "product": {"type": "str"},
    "min_memory": {"type": "str"},
    "architecture": {"type": "str"},
    "min_compute_capability": {"type": "str"},
}


def _cel_string(value):
    return "'%s'" % str(value).replace("\\", "\\\\").replace("'", "\\'")


def _semver(value):
    parts = str(value).split(".")
    return ".".join((parts + ["0", "0"])[:3])


def selector_expression(selector, option="gpu_selector"):
    """One CEL expression over the driver's attributes (see ../shared/charts/SOURCES.md): the
    product as GFD names it (NVML's productName with dashes for spaces, so NVIDIA-H200 matches
    'NVIDIA H200'), memory at least, architecture, compute capability at least. None when empty."""
    terms = []
    selector = selector or {}
    if selector.get("product"):
        terms.append("%s.productName.replace(' ', '-') == %s" % (ATTR, _cel_string(str(selector["product"]).replace(" ", "-"))))
    if selector.get("min_memory"):
        check_quantity(selector["min_memory"], "%s.min_memory" % option)
        terms.append("%s.memory.compareTo(quantity(%s)) >= 0" % (CAPACITY, _cel_string(selector["min_memory"])))
    if selector.get("architecture"):
        terms.append("%s.architecture.lowerAscii() == %s" % (ATTR, _cel_string(str(selector["architecture"]).lower())))
    if selector.get("min_compute_capability"):
        value = str(selector["min_compute_capability"])
        if not VERSION.match(value):
            raise InputError("option %s.min_compute_capability %r: use a version such as 9.0" % (option, value))
        terms.append("%s.cudaComputeCapability.compareTo(semver(%s)) >= 0" % (ATTR, _cel_string(_semver(value))))
    return " && ".join(terms) or None


ALLOCATIONS = ("device_plugin", "dra")


def selector_with_product(selector, product):
    """gpu_selector without empty terms, with `product` (a module's gpu_product) as its product
    when it names none."""
    out = dict((k, v) for k, v in (selector or {}).items() if v not in (None, ""))
    if product and not out.get("product"):
        out["product"] = product
    return out


def check_allocation(allocation, selector, count, count_option):
    """Refuse gpu_allocation / gpu_selector combinations that cannot work, before anything is
    sent: True when the GPUs are claimed through DRA."""
    allocation = allocation or "device_plugin"
    selector = selector_with_product(selector, None)
    if allocation not in ALLOCATIONS:
        raise InputError("option gpu_allocation must be device_plugin or dra")
    if allocation != "dra":
        if selector:
            raise InputError("option gpu_selector selects DRA devices: set gpu_allocation=dra (or use gpu_product with the device plugin)")
        return False
    if not count or count < 1:
        raise InputError("option gpu_allocation=dra claims GPUs: set %s to 1 or more" % count_option)
    selector_expression(selector)  # a bad min_memory or compute capability fails here
    return True


def claim_template_ref(name, namespace):
    """What state=absent needs to delete the template: its identity only."""
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
            "metadata": {"name": claim_template_name(name), "namespace": namespace}}


def explain_immutable_template(exc, name, namespace):
    """A KubeError from applying a changed claim template, reworded to name the options and the
    way out (the server echoes the whole spec)."""
    if (exc.details or {}).get("status") == 422 and "field is immutable" in exc.msg and exc.msg.startswith("ResourceClaimTemplate "):
        exc.msg = (
            "ResourceClaimTemplate %s/%s: gpus and gpu_selector cannot change once it exists (Kubernetes keeps a claim "
            "template's spec immutable); remove %s first (state: absent, gpu_allocation: dra) and apply again, or use a new name"
            % (namespace, claim_template_name(name), name)
        )
    return exc


def claim_template_name(name):
    return "%s-%s" % (name, CLAIM_NAME)


def claim_template(name, namespace, labels, count, selector, option="gpu_selector"):
    """The ResourceClaimTemplate each pod gets its own claim of `count` GPUs from."""
    request = {"deviceClassName": DEVICE_CLASS, "allocationMode": "ExactCount", "count": count}
    expression = selector_expression(selector, option)
    if expression:
        request["selectors"] = [{"cel": {"expression": expression}}]
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": claim_template_name(name), "namespace": namespace, "labels": dict(labels)},
        "spec": {"spec": {"devices": {"requests": [{"name": CLAIM_NAME, "exactly": request}]}}},
    }


# What the GPU container adds to use the pod's claim (resources.claims).
CONTAINER_CLAIMS = [{"name": CLAIM_NAME}]


def pod_resource_claims(name):
    """What a pod spec adds to get its own claim from the template (spec.resourceClaims)."""
    return [{"name": CLAIM_NAME, "resourceClaimTemplateName": claim_template_name(name)}]
