# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The preflight's checks: what the run will apply (its plan, built on the controller from the
inventory) against what the cluster holds, read with a few list requests per kind and never
written to.

`read_cluster` does every request; the `check_*` functions are pure (cluster data and plan in,
report rows out) and unit-tested. A row is (check, object, verdict, why, fix) with verdict
fail, warn, ok or skip (not checkable here, says why)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError
from ansible_collections.aiinfra.cluster.plugins.module_utils.gpu_inventory import GPU, MIG_PREFIX, driver_version, summarize_inventory
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import METADATA_LIST, path_quote
from ansible_collections.aiinfra.cluster.plugins.module_utils.quantities import parse_quantity
from ansible_collections.aiinfra.cluster.plugins.module_utils.resources import GROUP_PROVIDERS

VERDICTS = ("fail", "warn", "ok", "skip")
COLUMNS = ("check", "object", "verdict", "why", "fix")

# The kinds workloads create, by module option: (API group, plural).
TRAINING_BACKENDS = {
    "pytorchjob": ("kubeflow.org", "pytorchjobs"),
    "tfjob": ("kubeflow.org", "tfjobs"),
    "trainjob": ("trainer.kubeflow.org", "trainjobs"),
    "jobset": ("jobset.x-k8s.io", "jobsets"),
}
# Resources that are not namespaced, for the permission checks (rbac/ rules do not say).
CLUSTER_SCOPED = frozenset((
    "namespaces", "nodes", "persistentvolumes", "customresourcedefinitions", "clusterroles", "clusterrolebindings",
    "mutatingwebhookconfigurations", "validatingwebhookconfigurations", "priorityclasses", "runtimeclasses", "csidrivers",
    "storageclasses", "ingressclasses", "resourceslices", "deviceclasses", "apiservices", "clusterservingruntimes",
    "clusterpolicies", "clustertrainingruntimes", "clusterqueues", "resourceflavors", "cohorts", "topologies",
    "workloadpriorityclasses", "clusterissuers",
))
# Beyond this many, denials the rules review reported completely are not asked again one by one.
MAX_ACCESS_REVIEWS = 50


def row(check, obj, verdict, why, fix=""):
    return {"check": check, "object": obj, "verdict": verdict, "why": why, "fix": fix}


def overall(rows):
    verdicts = set(r["verdict"] for r in rows)
    for verdict in ("fail", "warn"):
        if verdict in verdicts:
            return verdict
    return "ok"


def render_table(rows):
    """One text table, a line per row; long `why`/`fix` texts stay whole (they are the news)."""
    cells = [COLUMNS] + [tuple(str(r[c] or "") for c in COLUMNS) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(3)]
    lines = []
    for index, cell in enumerate(cells):
        lines.append(" | ".join([cell[i].ljust(widths[i]) for i in range(3)] + [c for c in cell[3:] if c]).rstrip())
        if index == 0:
            lines.append("-+-".join("-" * w for w in widths) + "-+-----+----")
    return lines


# Versions -------------------------------------------------------------------------------------
def minor_version(text):
    """(major, minor) from '1.37', 'v1.37.2', '1.37+' or a server's gitVersion."""
    match = re.match(r"^v?(\d+)\.(\d+)", str(text or "").strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def check_kubernetes_version(git_version, components):
    rows = []
    server = minor_version(git_version)
    for comp in components:
        obj = "%s %s" % (comp["name"], comp.get("version") or "")
        low, high = minor_version(comp.get("kubernetes_min")), minor_version(comp.get("kubernetes_max"))
        validated = comp.get("validated") or ""
        if server is None:
            rows.append(row("kubernetes version", obj.strip(), "skip", "the API server reports no version (%r)" % git_version))
        elif low and server < low:
            rows.append(row("kubernetes version", obj.strip(), "fail", "Kubernetes %s is older than %s.%s, the lowest %s supports (%s)"
                            % (git_version, low[0], low[1], comp["name"], comp.get("source") or "its docs"),
                            "upgrade the cluster, or leave %s out of this run" % comp["name"]))
        elif high and server > high:
            rows.append(row("kubernetes version", obj.strip(), "fail", "Kubernetes %s is newer than %s.%s, the newest %s supports (%s)"
                            % (git_version, high[0], high[1], comp["name"], comp.get("source") or "its docs"),
                            "pin a newer %s release, or leave it out of this run" % comp["name"]))
        else:
            rows.append(row("kubernetes version", obj.strip(), "ok", "Kubernetes %s, %s needs %s+%s" % (
                git_version, comp["name"], comp.get("kubernetes_min") or "any", " (docs: %s)" % validated if validated else "")))
    return rows


# Workloads ------------------------------------------------------------------------------------
def _int(value, default):
    try:
        return int(value) if value is not None and value != "" else default
    except (TypeError, ValueError):
        return default


def _claim(spec):
    return (spec or {}).get("claim_name") if isinstance(spec, dict) else None


def _pvc_uri(uri):
    """pvc://NAME/path -> NAME"""
    match = re.match(r"^pvc://([^/]+)", str(uri or ""))
    return match.group(1) if match else None


def _shape(family, params, namespace_default="default"):
    return {
        "family": family,
        "name": params.get("name") or "?",
        "namespace": params.get("namespace") or namespace_default,
        "pods": 1,
        "gpus": 0,
        "resource": params.get("gpu_resource_name") or GPU,
        "product": params.get("gpu_product") or None,
        "dra": False,
        "images": [],
        "pvcs": [],
        "secrets": [],
        "service_accounts": [],
        "priority_class": None,
        "queue": params.get("queue_name") or None,
        "datasets": [],
        "crds": [],
    }


# Families whose pods exist while Kueue holds them (its pod integration gates them).
PODS_WHILE_QUEUED = ("inference_service", "triton_server")


def workload_shapes(workloads):
    """What each workload entry puts on the cluster, as far as the checks care: pods, GPUs per
    pod, images, and the objects its pods name. Entries with state absent are left out."""
    shapes = []
    for params in workloads.get("training_jobs") or []:
        if params.get("state") == "absent":
            continue
        shape = _shape("training_job", params)
        shape["pods"] = max(_int(params.get("nodes"), 1), 1)
        shape["gpus"] = _int(params.get("gpus_per_node"), 1)
        shape["dra"] = params.get("gpu_allocation") == "dra"
        shape["images"] = [params["image"]] if params.get("image") else []
        for key in ("data", "checkpoint", "log_dir"):
            if _claim(params.get(key)):
                shape["pvcs"].append(_claim(params.get(key)))
        if isinstance(params.get("data"), dict) and params["data"].get("dataset"):
            shape["datasets"].append(params["data"]["dataset"])
        shape["secrets"] = list(params.get("image_pull_secrets") or [])
        shape["service_accounts"] = [params["service_account_name"]] if params.get("service_account_name") else []
        shape["priority_class"] = params.get("priority_class_name") or None
        backend = params.get("backend") or "job"
        if backend in TRAINING_BACKENDS:
            shape["crds"].append(TRAINING_BACKENDS[backend])
        shapes.append(shape)
    for params in workloads.get("inference_services") or []:
        if params.get("state") == "absent":
            continue
        shape = _shape("inference_service", params)
        shape["pods"] = max(_int(params.get("min_replicas"), 1), 1)
        shape["gpus"] = _int(params.get("gpus"), 0)
        if params.get("runtime") == "kserve-tritonserver" and params.get("runtime_version"):
            shape["images"] = ["nvcr.io/nvidia/tritonserver:%s" % params["runtime_version"]]
        pvc = _pvc_uri(params.get("storage_uri"))
        shape["pvcs"] = [pvc] if pvc else []
        shape["service_accounts"] = [params["service_account"]] if params.get("service_account") else []
        shape["crds"].append(("serving.kserve.io", "inferenceservices"))
        shapes.append(shape)
    for params in workloads.get("triton_servers") or []:
        if params.get("state") == "absent":
            continue
        shape = _shape("triton_server", params)
        autoscaling = params.get("autoscaling") or {}
        replicas = autoscaling.get("min_replicas") if autoscaling.get("enabled") else params.get("replicas")
        shape["pods"] = max(_int(replicas, 1), 1)
        shape["gpus"] = _int(params.get("gpus"), 1)
        shape["images"] = [params.get("image") or "nvcr.io/nvidia/tritonserver:26.07-py3"]
        pvc = _pvc_uri(params.get("model_repository"))
        shape["pvcs"] = [pvc] if pvc else []
        shape["secrets"] = list(params.get("image_pull_secrets") or []) + ([params["storage_secret"]] if params.get("storage_secret") else [])
        shape["service_accounts"] = [params["service_account"]] if params.get("service_account") else []
        if params.get("monitoring") == "service_monitor":
            shape["crds"].append(("monitoring.coreos.com", "servicemonitors"))
        shapes.append(shape)
    for params in workloads.get("tensorboards") or []:
        if params.get("state") == "absent":
            continue
        shape = _shape("tensorboard", params)
        shape["pvcs"] = [_claim(params.get("log_dir"))] if _claim(params.get("log_dir")) else []
        shape["secrets"] = list(params.get("image_pull_secrets") or []) + ([params["storage_secret"]] if params.get("storage_secret") else [])
        if (params.get("istio") or {}).get("enabled"):
            shape["crds"].append(("security.istio.io", "authorizationpolicies"))
        shapes.append(shape)
    for params in workloads.get("fluid_datasets") or []:
        if params.get("state") == "absent":
            continue
        shape = _shape("fluid_dataset", params)
        # A Secret the entry names without giving the credentials must exist already.
        if params.get("secret_name") and not params.get("credentials"):
            shape["secrets"].append(params["secret_name"])
        shape["crds"] += [("data.fluid.io", "datasets"), ("data.fluid.io", "%sruntimes" % (params.get("runtime") or "alluxio"))]
        shapes.append(shape)
    for params in workloads.get("dvc_data") or []:
        if params.get("state") == "absent":
            continue
        shape = _shape("data_version", params)
        pvc = params.get("pvc") or {}
        if pvc.get("name") and not pvc.get("size"):
            shape["pvcs"].append(pvc["name"])  # without a size the module expects the claim to exist
        shape["secrets"] = [params["credentials_secret"]] if params.get("credentials_secret") else []
        shape["service_accounts"] = [params["service_account"]] if params.get("service_account") else []
        shapes.append(shape)
    for params in workloads.get("istio_policies") or []:
        if params.get("state") == "absent":
            continue
        shape = _shape("istio_policy", params)
        shape["crds"].append(("security.istio.io", "authorizationpolicies"))
        shapes.append(shape)
    return shapes


def created_by_run(workloads, created):
    """(namespace, name) sets of what this run creates before its workloads need it."""
    out = dict((kind, set()) for kind in ("pvcs", "secrets", "service_accounts", "local_queues", "datasets"))
    out["priority_classes"] = set(created.get("priority_classes") or [])
    for kind in out:
        if kind == "priority_classes":
            continue
        for ref in created.get(kind) or []:
            namespace, _sep, name = str(ref).rpartition("/")
            out[kind].add((namespace, name))
    for params in workloads.get("fluid_datasets") or []:
        namespace = params.get("namespace") or "default"
        out["datasets"].add((namespace, params.get("name")))
        out["pvcs"].add((namespace, params.get("name")))  # Fluid binds a claim named after the Dataset
        if params.get("credentials"):
            out["secrets"].add((namespace, params.get("secret_name") or "%s-fluid-credentials" % params.get("name")))
    for params in workloads.get("dvc_data") or []:
        pvc = params.get("pvc") or {}
        if pvc.get("name") and pvc.get("size"):
            out["pvcs"].add((params.get("namespace") or "default", pvc["name"]))
    return out


def _label(shape):
    return "%s %s/%s" % (shape["family"], shape["namespace"], shape["name"])


# CRDs -----------------------------------------------------------------------------------------
def check_crds(shapes, crd_names, groups_installed, istio_required=False):
    """Every kind a workload creates is served, or its CRDs come with a component of this run."""
    needed = {}
    for shape in shapes:
        for group, plural in shape["crds"]:
            needed.setdefault((group, plural), []).append(shape)
    rows = []
    for (group, plural), users in sorted(needed.items()):
        crd = "%s.%s" % (plural, group)
        who = "%d workload(s), e.g. %s" % (len(users), _label(users[0]))
        if crd in crd_names:
            rows.append(row("crds", crd, "ok", "served (%s)" % who))
        elif group in groups_installed:
            rows.append(row("crds", crd, "ok", "installed by this run before the workloads (%s)" % who))
        else:
            provider = GROUP_PROVIDERS.get(group, "its operator")
            mesh_optional = group == "security.istio.io" and not istio_required and all(u["family"] == "istio_policy" for u in users)
            rows.append(row("crds", crd, "warn" if mesh_optional else "fail",
                            "not installed, and no component of this run installs it (%s)%s"
                            % (who, "; the policies are reported as not applied" if mesh_optional else ""),
                            "install %s first, or enable the role that installs it" % provider))
    return rows


# GPUs -----------------------------------------------------------------------------------------
def _allocatable(node, resource):
    if resource == GPU:
        return node["gpu_allocatable"]
    return (node.get("mig") or {}).get(resource, {}).get("allocatable", 0)


def _products(inventory):
    return ", ".join("%s: %d nodes" % (p, t["nodes"]) for p, t in sorted(inventory["products"].items())) or "none"


def check_gpu_capacity(shapes, inventory, gpu_operator_in_run=False):
    rows = []
    nodes = [n for n in inventory["nodes"] if n["ready"]]
    for shape in shapes:
        if shape["gpus"] <= 0:
            continue
        label = _label(shape)
        if shape["dra"]:
            rows.append(row("gpu capacity", label, "skip", "GPUs come from DRA ResourceClaims; the scheduler allocates them from ResourceSlices"))
            continue
        pool = [n for n in nodes if not shape["product"] or n["product"] == shape["product"]]
        per_pod = "%d x %d %s" % (shape["pods"], shape["gpus"], shape["resource"])
        if not nodes:
            verdict = "warn" if gpu_operator_in_run else "fail"
            rows.append(row("gpu capacity", label, verdict, "asks %s, but no Ready node advertises GPUs%s" % (
                per_pod, " yet; the GPU Operator this run installs advertises them" if gpu_operator_in_run else ""),
                "" if gpu_operator_in_run else "install the GPU Operator (role aiinfra.cluster.gpu_operator) or the device plugin"))
            continue
        if not pool:
            rows.append(row("gpu capacity", label, "fail", "asks GPU product %s, which no Ready node has (products: %s)"
                            % (shape["product"], _products(inventory)), "set gpu_product to one of the products above"))
            continue
        largest = max(_allocatable(n, shape["resource"]) for n in pool)
        total = sum(_allocatable(n, shape["resource"]) for n in pool)
        where = "%s nodes" % (shape["product"] or "GPU")
        if shape["gpus"] > largest:
            rows.append(row("gpu capacity", label, "fail", "asks %d %s per pod; the largest of the %d %s has %d allocatable"
                            % (shape["gpus"], shape["resource"], len(pool), where, largest),
                            "ask at most %d per pod (spread the work over more pods/nodes)" % largest))
        elif shape["pods"] * shape["gpus"] > total:
            rows.append(row("gpu capacity", label, "fail", "asks %s = %d in all; the %d %s have %d allocatable together"
                            % (per_pod, shape["pods"] * shape["gpus"], len(pool), where, total), "ask for fewer pods or GPUs"))
        else:
            rows.append(row("gpu capacity", label, "ok", "%s fits: %d %s, up to %d per node" % (per_pod, len(pool), where, largest)))
    return rows


def check_gpu_quota(shapes, teams, quotas, quota_resource=GPU):
    """Per namespace: the run's GPU requests against the team quota the run applies (gpu_quota +
    borrowing_limit, its ResourceQuota) or, for a namespace the run does not manage, its existing
    ResourceQuota; and GPUs per pod against the team's max_gpus_per_pod (its LimitRange).
    Workloads that name a Kueue queue wait for quota instead of failing: each alone must fit."""
    by_team = dict((t["name"], t) for t in teams)
    asked = {}
    for shape in shapes:
        if shape["gpus"] > 0 and not shape["dra"] and shape["resource"] == quota_resource:
            asked.setdefault(shape["namespace"], []).append(shape)
    rows = []
    for namespace, users in sorted(asked.items()):
        team = by_team.get(namespace)
        if team is not None:
            hard = _int(team.get("gpu_quota"), 0) + _int(team.get("borrowing_limit"), 0)
            source = "team quota (gpu_quota%s)" % (" + borrowing_limit" if _int(team.get("borrowing_limit"), 0) else "")
        elif namespace in quotas:
            hard, source = quotas[namespace]
        else:
            continue
        cap = _int((team or {}).get("max_gpus_per_pod"), None) if team else None
        for shape in users:
            if cap is not None and shape["gpus"] > cap:
                rows.append(row("gpu quota", _label(shape), "fail", "asks %d GPUs per pod; team %s allows %d per pod (max_gpus_per_pod)"
                                % (shape["gpus"], namespace, cap), "ask at most %d, or raise max_gpus_per_pod of team %s" % (cap, namespace)))
            # Kueue admits a job whole, a serving pod on its own.
            per_pod = shape["family"] in PODS_WHILE_QUEUED
            need = shape["gpus"] if per_pod else shape["pods"] * shape["gpus"]
            if shape["queue"] and need > hard:
                rows.append(row("gpu quota", _label(shape), "fail", "asks %d GPUs %s, more than the %s of %d: queue %s can never admit it"
                                % (need, "per pod" if per_pod else "in all", source, hard, shape["queue"]), "ask for fewer GPUs or raise the team's quota"))
        # A queued job has no pod until Kueue admits it; a queued serving pod exists, gated, and
        # the ResourceQuota counts it from its creation.
        direct = [s for s in users if not s["queue"] or s["family"] in PODS_WHILE_QUEUED]
        total = sum(s["pods"] * s["gpus"] for s in direct)
        names = ", ".join("%s (%d)" % (s["name"], s["pods"] * s["gpus"]) for s in direct[:5]) + (", ..." if len(direct) > 5 else "")
        queued = len(users) - len(direct)
        note = "; %d queued workload(s) wait for Kueue to admit them" % queued if queued else ""
        if total > hard:
            rows.append(row("gpu quota", "namespace %s" % namespace, "fail", "the run's workloads ask %d GPUs together, the %s is %d: %s"
                            % (total, source, hard, names), "raise the team's gpu_quota, ask for fewer GPUs, or queue the jobs (queue_name)"))
        else:
            rows.append(row("gpu quota", "namespace %s" % namespace, "ok", "%d of %d GPUs (%s)%s" % (total, hard, source, note)))
    return rows


def image_cuda(image, cuda_images):
    """The CUDA version (major, minor) an image is built with, from the table; None if unknown."""
    for rule in cuda_images:
        match = re.search(rule["tag"], image)
        if not match:
            continue
        if rule.get("ngc_from"):
            release = minor_version(match.group(1))
            for step in sorted(rule["ngc_from"], key=lambda s: minor_version(s["release"]), reverse=True):
                if release >= minor_version(step["release"]):
                    return minor_version(step["cuda"]), rule
            return None
        return minor_version(rule.get("cuda") or match.group(1)), rule
    return None


def check_driver(shapes, inventory, cuda_table, cuda_images, driver_branch_after_run=None):
    """Each image's CUDA version needs a driver branch (CUDA minor version compatibility); the
    nodes report theirs through GFD labels (or the node tier of this run installs one)."""
    by_image = {}
    for shape in shapes:
        if shape["gpus"] <= 0 and not shape["dra"]:
            continue
        for image in shape["images"]:
            by_image.setdefault(image, []).append(shape)
    rows = []
    for image, users in sorted(by_image.items()):
        found = image_cuda(image, cuda_images)
        who = "%d workload(s), e.g. %s" % (len(users), _label(users[0]))
        if not found:
            rows.append(row("driver", image, "skip", "no CUDA version known for this image (%s)" % who,
                            "add the image to cuda_images in meta/compatibility.yml to have it checked"))
            continue
        cuda, _rule = found
        need = (cuda_table or {}).get(str(cuda[0]))
        if not need:
            rows.append(row("driver", image, "skip", "CUDA %d.%d: no driver minimum known for CUDA %d" % (cuda + (cuda[0],))))
            continue
        if driver_branch_after_run:
            verdict = "ok" if int(driver_branch_after_run) >= need else "fail"
            rows.append(row("driver", image, verdict, "CUDA %d.%d needs driver >= %d; the node tier of this run installs branch %s (%s)"
                            % (cuda[0], cuda[1], need, driver_branch_after_run, who),
                            "" if verdict == "ok" else "set nvidia_driver_branch to %d or newer" % need))
            continue
        products = set(s["product"] for s in users)
        pool = [n for n in inventory["nodes"] if None in products or n["product"] in products]
        versions = [(n, driver_version(n.get("labels") or {})) for n in pool]
        known = [(n, v) for n, v in versions if v[0]]
        if not known:
            rows.append(row("driver", image, "skip", "CUDA %d.%d needs driver >= %d; no node reports its driver (GFD labels "
                            "nvidia.com/cuda.driver-version.*) yet (%s)" % (cuda[0], cuda[1], need, who)))
            continue
        old = [(n, v) for n, v in known if v[0] < need]
        if not old:
            rows.append(row("driver", image, "ok", "CUDA %d.%d needs driver >= %d; %d nodes run %s" % (
                cuda[0], cuda[1], need, len(known), ", ".join(sorted(set(v[1] for _n, v in known))))))
            continue
        sample = ", ".join("%s (%s)" % (n["name"], v[1]) for n, v in old[:3]) + (", ..." if len(old) > 3 else "")
        verdict = "fail" if len(old) == len(known) else "warn"
        rows.append(row("driver", image, verdict, "CUDA %d.%d needs driver >= %d; %d of %d nodes run an older one: %s (%s)"
                        % (cuda[0], cuda[1], need, len(old), len(known), sample, who),
                        "upgrade the driver to branch %d+ (nvidia_driver_branch / the GPU Operator's driver), or use an image built "
                        "with an older CUDA" % need))
    return rows


def _mixed_layout(layout):
    """A mig-parted layout that puts more than one MIG profile on a node."""
    profiles = set()
    for entry in layout or []:
        if isinstance(entry, dict) and entry.get("mig-enabled"):
            profiles.update((entry.get("mig-devices") or {}).keys())
    return len(profiles) > 1


def check_mig(shapes, inventory, strategy, mig_configs=None):
    """The MIG strategy the run sets against what the nodes run: `single` needs one profile per
    node and advertises MIG devices as nvidia.com/gpu; `mixed` advertises nvidia.com/mig-<profile>."""
    if not strategy:
        return []
    rows = []
    mixed_configs = set(name for name, layout in (mig_configs or {}).items() if _mixed_layout(layout))
    mixed_configs.add("all-balanced")  # the mig-parted default layout that mixes profiles
    other, mixed_nodes = [], []
    for node in inventory["nodes"]:
        labels = node.get("labels") or {}
        current = labels.get("nvidia.com/mig.strategy")
        if current and current not in ("none", strategy):
            other.append((node["name"], current))
        if strategy == "single" and labels.get("nvidia.com/mig.config") in mixed_configs:
            mixed_nodes.append((node["name"], labels["nvidia.com/mig.config"]))
    mig_users = [s for s in shapes if s["resource"].startswith(MIG_PREFIX) and s["gpus"] > 0]
    if mixed_nodes:
        rows.append(row("mig", "%d nodes" % len(mixed_nodes), "fail", "MIG strategy single needs one MIG profile per node; %s use a "
                        "layout with several: %s" % (len(mixed_nodes), ", ".join("%s (%s)" % m for m in mixed_nodes[:3])),
                        "set gpu_operator_mig_strategy: mixed, or give these nodes a single-profile nvidia.com/mig.config"))
    if strategy == "single" and mig_users:
        rows.append(row("mig", _label(mig_users[0]), "fail", "asks %s, which MIG strategy single never advertises (it exposes MIG "
                        "devices as nvidia.com/gpu)" % mig_users[0]["resource"],
                        "set gpu_operator_mig_strategy: mixed, or ask for nvidia.com/gpu"))
    if other:
        rows.append(row("mig", "%d nodes" % len(other), "warn", "the run switches the MIG strategy to %s on nodes that run %s: %s; pods "
                        "asking for the old MIG resources there stop being scheduled" % (strategy, other[0][1], ", ".join(n for n, _s in other[:3])),
                        "set gpu_operator_mig_strategy: %s to keep the nodes as they are" % other[0][1]))
    if not rows:
        rows.append(row("mig", "strategy %s" % strategy, "ok", "no node runs another MIG strategy or a layout it cannot serve"))
    return rows


# References -----------------------------------------------------------------------------------
REFERENCE_KINDS = (
    ("pvcs", "PersistentVolumeClaim", "create the claim, or a data_version/fluid_dataset entry that creates it"),
    ("secrets", "Secret", "create the Secret (kubectl create secret ...) in that namespace"),
    ("service_accounts", "ServiceAccount", "create the ServiceAccount in that namespace"),
    ("local_queues", "LocalQueue", "create the Kueue LocalQueue (gpu_scheduling queueing layer) in that namespace"),
    ("datasets", "Dataset", "add the Dataset to datasets_fluid or create it"),
)


def references(shapes):
    """(kind, namespace, name) -> [shapes] for every object a workload names."""
    refs = {}
    for shape in shapes:
        ns = shape["namespace"]
        for kind, names in (("pvcs", shape["pvcs"]), ("secrets", shape["secrets"]), ("service_accounts", shape["service_accounts"]),
                            ("local_queues", [shape["queue"]] if shape["queue"] else []), ("datasets", shape["datasets"])):
            for name in names:
                if kind == "service_accounts" and name == "default":
                    continue  # every namespace gets one
                refs.setdefault((kind, ns, name), []).append(shape)
        if shape["priority_class"]:
            refs.setdefault(("priority_classes", "", shape["priority_class"]), []).append(shape)
    return refs


def check_references(shapes, existing, created):
    rows, refs = [], references(shapes)
    missing = 0
    fixes = dict((k, f) for k, _kind, f in REFERENCE_KINDS)
    kinds = dict((k, kind) for k, kind, _f in REFERENCE_KINDS)
    kinds["priority_classes"], fixes["priority_classes"] = "PriorityClass", "add it to gpu_scheduling_priority_classes or create it"
    for (kind, ns, name), users in sorted(refs.items()):
        key = name if kind == "priority_classes" else (ns, name)
        if key in (existing.get(kind) or set()) or key in (created.get(kind) or set()):
            continue
        if existing.get(kind) is None:
            continue  # not readable (forbidden, or the CRD is not installed): said once below
        missing += 1
        obj = "%s %s" % (kinds[kind], name if kind == "priority_classes" else "%s/%s" % (ns, name))
        rows.append(row("references", obj, "fail", "named by %s, but it neither exists nor is created by this run%s"
                        % (_label(users[0]), " (and %d more)" % (len(users) - 1) if len(users) > 1 else ""), fixes[kind]))
    for kind in sorted(set(k for k, _n, _x in refs)):
        if existing.get(kind) is None:
            rows.append(row("references", kinds[kind] + "s", "skip", (existing.get("_why") or {}).get(kind, "not readable")))
    if not missing and refs:
        rows.append(row("references", "%d objects" % len(refs), "ok", "every PVC, Secret, ServiceAccount, PriorityClass, LocalQueue and "
                        "Dataset the workloads name exists or is created by this run"))
    return rows


# Permissions ----------------------------------------------------------------------------------
def _match(values, wanted):
    return "*" in values or wanted in values


def rules_allow(rules, verb, group, resource):
    for rule in rules:
        if rule.get("resourceNames"):
            continue  # allows named objects only; the run needs the kind
        if _match(rule.get("verbs") or [], verb) and _match(rule.get("apiGroups") or [], group) and _match(rule.get("resources") or [], resource):
            return True
    return False


def needed_access(permissions):
    """(verb, group, resource, namespace or '') for every permission the run needs; cluster-scoped
    resources once, namespaced ones in each namespace of their scope."""
    needed = set()
    for scope in permissions:
        namespaces = list(scope.get("namespaces") or [])
        for rule in scope.get("rules") or []:
            for group in rule.get("apiGroups") or [""]:
                for resource in rule.get("resources") or []:
                    for verb in rule.get("verbs") or []:
                        if resource.split("/")[0] in CLUSTER_SCOPED or not namespaces:
                            needed.add((verb, group, resource, ""))
                        else:
                            needed.update((verb, group, resource, ns) for ns in namespaces)
    return needed


def check_permissions(permissions, rules_by_namespace, reviewed):
    """`rules_by_namespace`: namespace -> resourceRules of a SelfSubjectRulesReview; `reviewed`:
    the SelfSubjectAccessReview answers for denials ((verb, group, resource, ns) -> allowed).
    Cluster-scoped needs are judged with the rules of the first namespace (they include every
    ClusterRoleBinding's)."""
    needed = needed_access(permissions)
    first = sorted(rules_by_namespace)[0] if rules_by_namespace else None
    denied = {}
    for verb, group, resource, ns in needed:
        key = (verb, group, resource, ns)
        allowed = reviewed.get(key)
        if allowed is None:
            allowed = rules_allow(rules_by_namespace.get(ns or first) or [], verb, group, resource)
        if not allowed:
            denied.setdefault(ns, {}).setdefault("%s%s" % (resource, ("." + group) if group else ""), set()).add(verb)
    sources = ", ".join(sorted(set(s.get("source") or "" for s in permissions if s.get("source"))))
    if not denied:
        return [row("permissions", "%d namespaces + cluster" % len(rules_by_namespace), "ok",
                    "every permission of %s is granted (%d checked)" % (sources or "the run", len(needed)))]
    rows = []
    for ns, resources in sorted(denied.items()):
        what = "; ".join("%s: %s" % (res, ", ".join(sorted(verbs))) for res, verbs in sorted(resources.items()))
        rows.append(row("permissions", "namespace %s" % ns if ns else "cluster", "fail", "this account may not: %s" % what,
                        "grant what %s holds (kubectl apply -f it and bind the account), or leave the roles that need it out" % (sources or "rbac/")))
    return rows


# Cluster reads --------------------------------------------------------------------------------
def _names(items, namespaced=True):
    out = set()
    for item in items:
        meta = item.get("metadata") or {}
        out.add((meta.get("namespace"), meta.get("name")) if namespaced else meta.get("name"))
    return out


def read_references(client, refs, page_size):
    """Names of the referenced kinds that exist: one metadata-only list per kind over all
    namespaces, or one per referenced namespace where the account may not list cluster-wide.
    A kind that cannot be read maps to None, with the reason in existing['_why']."""
    paths = {
        "pvcs": ("", "v1", "persistentvolumeclaims"),
        "secrets": ("", "v1", "secrets"),
        "service_accounts": ("", "v1", "serviceaccounts"),
        "datasets": ("data.fluid.io", "v1alpha1", "datasets"),
        # Kueue serves v1beta2 since 0.15; older releases only v1beta1.
        "local_queues": ("kueue.x-k8s.io", "v1beta2,v1beta1", "localqueues"),
    }
    existing, why = {}, {}
    wanted = set(k for k, _ns, _n in refs)
    for kind in sorted(wanted):
        if kind == "priority_classes":
            try:
                existing[kind] = _names(client.list_all("/apis/scheduling.k8s.io/v1/priorityclasses", page_size=page_size, accept=METADATA_LIST), False)
            except ApiError as exc:
                existing[kind], why[kind] = None, "cannot list PriorityClasses: %s" % exc.msg
            continue
        group, versions, plural = paths[kind]
        for version in versions.split(","):
            prefix = "/api/%s" % version if not group else "/apis/%s/%s" % (group, version)
            try:
                existing[kind] = _names(client.list_all("%s/%s" % (prefix, plural), page_size=page_size, accept=METADATA_LIST))
                break
            except ApiError as exc:
                if exc.status != 404:
                    _read_per_namespace(client, kind, prefix, plural, refs, page_size, existing, why, exc)
                    break
                existing[kind] = set()  # the kind is not served: nothing of it exists (the crds check says more)
    existing["_why"] = why
    return existing


def _read_per_namespace(client, kind, prefix, plural, refs, page_size, existing, why, exc):
    """The account may not list `kind` across namespaces: list it in each referenced namespace."""
    if exc.status != 403:
        raise exc
    existing[kind] = set()
    for ns in sorted(set(ns for k, ns, _n in refs if k == kind)):
        try:
            existing[kind] |= _names(client.list_all("%s/namespaces/%s/%s" % (prefix, path_quote(ns), plural), page_size=page_size, accept=METADATA_LIST))
        except ApiError as inner:
            if inner.status != 404:  # 404: the namespace does not exist, so neither does the object
                existing[kind], why[kind] = None, "cannot list %s in %s: %s" % (plural, ns, inner.msg)
                return


def read_quotas(client, resource, page_size):
    """namespace -> (hard, 'ResourceQuota NAME') for the tightest GPU quota of each namespace."""
    out = {}
    try:
        items = client.list_all("/api/v1/resourcequotas", page_size=page_size)
    except ApiError as exc:
        if exc.status == 403:
            return out
        raise
    for quota in items:
        hard = (quota.get("spec") or {}).get("hard") or {}
        for key in ("requests." + resource, resource):
            if key in hard:
                ns = quota["metadata"].get("namespace")
                value = int(parse_quantity(hard[key]))
                if ns not in out or value < out[ns][0]:
                    out[ns] = (value, "ResourceQuota %s" % quota["metadata"]["name"])
    return out


def review_rules(client, namespaces):
    """namespace -> (resourceRules, incomplete): one SelfSubjectRulesReview per namespace. The
    review is answered from the authorizer and stores nothing."""
    out = {}
    for ns in namespaces:
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": ns}}
        status = (client.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", body=body) or {}).get("status") or {}
        out[ns] = (status.get("resourceRules") or [], bool(status.get("incomplete")))
    return out


def review_access(client, verb, group, resource, namespace):
    attrs = {"verb": verb, "group": group, "resource": resource.split("/")[0]}
    if "/" in resource:
        attrs["subresource"] = resource.split("/", 1)[1]
    if namespace:
        attrs["namespace"] = namespace
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": {"resourceAttributes": attrs}}
    return bool(((client.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=body) or {}).get("status") or {}).get("allowed"))


def run_preflight(client, plan, page_size=500):
    """Every cluster check of `plan` (see the preflight module's options); returns the rows."""
    rows = []
    try:
        version = client.get("/version") or {}
    except ApiError as exc:
        if exc.status in (401, 403):
            return [row("api", client.config.server, "fail", "the API server rejects these credentials: %s" % exc.msg,
                        "check kubeconfig/context or the AWX credential (module_defaults group/aiinfra.cluster.k8s)")]
        raise
    git_version = version.get("gitVersion") or ""
    rows.append(row("api", client.config.server, "ok", "reachable, Kubernetes %s" % git_version))
    rows += check_kubernetes_version(git_version, plan.get("components") or [])

    permissions = plan.get("permissions") or []
    if permissions:
        namespaces = sorted(set(ns for scope in permissions for ns in scope.get("namespaces") or []) or ["default"])
        reviews = review_rules(client, namespaces)
        rules = dict((ns, r[0]) for ns, r in reviews.items())
        incomplete = any(r[1] for r in reviews.values())
        reviewed = {}
        if incomplete:
            # Another authorizer (webhook) decides too: ask it about each denial, a bounded number.
            for key in sorted(k for k in needed_access(permissions) if not rules_allow(rules.get(k[3] or namespaces[0]) or [], *k[:3]))[:MAX_ACCESS_REVIEWS]:
                reviewed[key] = review_access(client, *key)
        rows += check_permissions(permissions, rules, reviewed)

    workloads = plan.get("workloads") or {}
    shapes = workload_shapes(workloads)
    needs_crds = any(s["crds"] for s in shapes)
    if needs_crds:
        crds = _names(client.list_all("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", page_size=page_size, accept=METADATA_LIST), False)
        rows += check_crds(shapes, crds, set(plan.get("crd_groups_installed") or []), istio_required=bool(plan.get("istio_required")))

    gpu_shapes = [s for s in shapes if s["gpus"] > 0 or s["dra"]]
    operator = plan.get("gpu_operator") or {}
    if gpu_shapes or operator.get("in_run"):
        nodes = client.list_all("/api/v1/nodes", page_size=page_size)
        inventory = summarize_inventory(nodes, [], only_gpu_nodes=True)
        rows += check_gpu_capacity(gpu_shapes, inventory, gpu_operator_in_run=bool(operator.get("in_run")))
        quota_resource = plan.get("quota_resource") or GPU
        quotas = read_quotas(client, quota_resource, page_size) if gpu_shapes else {}
        rows += check_gpu_quota(gpu_shapes, plan.get("teams") or [], quotas, quota_resource)
        cuda = plan.get("cuda") or {}
        rows += check_driver(gpu_shapes, inventory, cuda.get("min_driver") or {}, cuda.get("images") or [], plan.get("driver_branch_after_run"))
        if operator.get("in_run"):
            rows += check_mig(gpu_shapes, inventory, operator.get("mig_strategy"), operator.get("mig_configs"))

    refs = references(shapes)
    if refs:
        existing = read_references(client, refs, page_size)
        rows += check_references(shapes, existing, created_by_run(workloads, plan.get("created") or {}))
    return rows
