#!/usr/bin/env python3
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The benchmark's workload set, written three ways from one definition.

    workload.py OUT_DIR PREFIX

writes, for the phase named PREFIX (every namespace and cluster-scoped name starts with it, so
phases never share an object):

  collection-batch.yml  this collection: one task per resource family (inference_service,
                  triton_server, fluid_dataset, training_job, dcgm_exporter, tensorboard,
                  istio_policy) with every item in the module's `batch` option, and one
                  aiinfra.cluster.resources bundle for the plain objects
  collection-loop.yml   the same, but an Ansible loop over each family module (one module run
                  per item, the way a role loops over an inventory list)
  roles.yml + inventory/  the same items as an inventory of the workload tier's roles
                  (model_serving, datasets, training, observability, mesh_security), converged
                  by the tier's playbook (aiinfra.cluster.workloads) as users run it; the plain
                  objects go first through the same aiinfra.cluster.resources bundle
  k8s.yml         the same objects, one kubernetes.core.k8s task per object
  workload.yaml   the same objects as one multi-document file for `kubectl apply --server-side`
  manifests.json  the objects and their count per kind

The manifests for k8s.yml and workload.yaml are the exact objects the family modules build: each
module's main() runs in-process with its argument spec applied to the item and its run_bundle()
replaced by a function that records the bundle (no request is sent).
"""

import importlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

import yaml  # noqa: E402
from ansible.module_utils.common.arg_spec import ModuleArgumentSpecValidator  # noqa: E402

MODULES = "ansible_collections.aiinfra.cluster.plugins.modules."
GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"

# Items per family; the counts give about 150 objects.
COUNTS = {"inference_service": 20, "triton_server": 10, "fluid_dataset": 10, "training_job": 10, "istio_policy": 20}


def namespaces(prefix):
    return {"serving": prefix + "-serving", "data": prefix + "-data", "training": prefix + "-training", "monitoring": prefix + "-monitoring"}


def family_items(prefix):
    """Module name -> list of module arguments (wait off everywhere: no operator runs here, and
    neither kubernetes.core.k8s nor kubectl waits by default)."""
    ns = namespaces(prefix)
    off = {"wait": False}
    items = {
        "inference_service": [
            dict(
                off,
                name="model-%02d" % i,
                namespace=ns["serving"],
                model_format={"name": "onnx", "version": "1"},
                runtime="kserve-tritonserver",
                protocol_version="v2",
                storage_uri="s3://models/model-%02d" % i,
                gpus=1,
                gpu_product=GPU_PRODUCT,
                resources={"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "8Gi"}},
                min_replicas=1,
                max_replicas=2,
            )
            for i in range(COUNTS["inference_service"])
        ],
        "triton_server": [
            dict(off, name="triton-%02d" % i, namespace=ns["serving"], model_repository="s3://models/triton-%02d" % i, gpus=0, replicas=1)
            for i in range(COUNTS["triton_server"])
        ],
        "fluid_dataset": [
            dict(
                off,
                name="dataset-%02d" % i,
                namespace=ns["data"],
                mounts=[{"mount_point": "s3://datasets/shard-%02d/" % i, "name": "shard"}],
                replicas=1,
                tiered_store=[{"medium": "MEM", "path": "/dev/shm", "quota": "2Gi"}],
            )
            for i in range(COUNTS["fluid_dataset"])
        ],
        "training_job": [
            dict(
                off,
                name="train-%02d" % i,
                namespace=ns["training"],
                image="registry.local/ml/trainer:1.0",
                script="/workspace/train.py",
                nodes=1,
                gpus_per_node=0,
                cpu="1",
                memory="1Gi",
                priority_class_name=prefix + "-gpu-training",
            )
            for i in range(COUNTS["training_job"])
        ],
        "dcgm_exporter": [dict(off, name="dcgm-exporter", namespace=ns["monitoring"], service_monitor="false")],
        "tensorboard": [dict(off, name="tensorboard", namespace=ns["training"], log_dir_uri="s3://runs/tb")],
        # One PeerAuthentication (strict mTLS) and one AuthorizationPolicy per InferenceService.
        "istio_policy": [
            dict(
                off,
                name="model-%02d" % i,
                namespace=ns["serving"],
                selector={"serving.kserve.io/inferenceservice": "model-%02d" % i},
                peer_authentication={"mode": "STRICT"},
                authorization={
                    "action": "ALLOW",
                    "rules": [
                        {
                            "principals": ["cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"],
                            "methods": ["GET", "POST"],
                            "paths": ["/v2/models/model-%02d/*" % i],
                        }
                    ],
                },
            )
            for i in range(COUNTS["istio_policy"])
        ],
    }
    return items


def plain_objects(prefix):
    """Objects without a family module: namespaces, priority classes, quotas and limits, training
    configuration."""
    ns = namespaces(prefix)
    objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"aiinfra.cluster/benchmark": prefix}}} for name in ns.values()]
    for name, value in (("gpu-high", 1000000), ("gpu-training", 100000), ("gpu-batch", 1000)):
        objs.append(
            {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": "%s-%s" % (prefix, name), "labels": {"aiinfra.cluster/benchmark": prefix}},
                "value": value,
                "preemptionPolicy": "PreemptLowerPriority",
                "description": "benchmark %s" % name,
            }
        )
    for name in ns.values():
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": "gpu-quota", "namespace": name},
                "spec": {"hard": {"requests.nvidia.com/gpu": "32", "requests.cpu": "512", "requests.memory": "4Ti", "pods": "500"}},
            }
        )
    for name in ns.values():
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": {"name": "defaults", "namespace": name},
                "spec": {"limits": [{"type": "Container", "default": {"cpu": "1", "memory": "1Gi"}, "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}]},
            }
        )
    for i in range(COUNTS["training_job"]):
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "train-%02d-config" % i, "namespace": ns["training"]},
                "data": {"epochs": "90", "batch_size": str(64 * (i + 1)), "learning_rate": "0.1"},
            }
        )
    return objs


class _Captured(Exception):
    pass


class _EmptyCluster:
    """Answers the reads a module makes before building (for example "is the GPU Operator's
    exporter there?") as an empty cluster would."""

    def get(self, path, query=None):
        return {"items": [], "resources": []}


class _FakeModule:
    check_mode = False
    _diff = False

    def __init__(self, params):
        self.params = params

    def fail_json(self, msg, **kwargs):
        raise RuntimeError("module argument error: %s" % msg)

    def exit_json(self, **kwargs):
        raise RuntimeError("module exited before building its bundle")


def module_objects(name, args):
    """The objects module `name` would apply for `args` (its argument spec and builder, no request)."""
    module = importlib.import_module(MODULES + name)
    from ansible_collections.aiinfra.cluster.plugins.module_utils.args_common import APPLY_ARG_SPEC, AUTH_ARG_SPEC, merge_specs

    captured = []

    def kube_module(argument_spec, with_apply=True, creates_namespaces=False, shared_spec=None, **kwargs):
        spec = merge_specs(AUTH_ARG_SPEC, APPLY_ARG_SPEC, argument_spec, shared_spec or {}) if with_apply else merge_specs(AUTH_ARG_SPEC, argument_spec)
        kwargs.pop("supports_check_mode", None)
        result = ModuleArgumentSpecValidator(spec, **kwargs).validate(dict(args))
        if result.error_messages:
            raise RuntimeError("%s: %s" % (name, "; ".join(result.error_messages)))
        return _FakeModule(result.validated_parameters)

    def run_bundle(_module, _client, objects, waits=None):
        captured.extend(objects)
        raise _Captured()

    def execute(_module, body):
        try:
            body(_EmptyCluster())
        except _Captured:
            pass

    saved = dict((attr, getattr(module, attr)) for attr in ("kube_module", "run_bundle", "execute"))
    module.kube_module, module.run_bundle, module.execute = kube_module, run_bundle, execute
    try:
        module.main()
    finally:
        for attr, value in saved.items():
            setattr(module, attr, value)
    if not captured:
        raise RuntimeError("%s built no objects for %s" % (name, args.get("name")))
    return captured


def all_objects(prefix):
    objects = plain_objects(prefix)
    for name, items in family_items(prefix).items():
        for args in items:
            objects.extend(module_objects(name, args))
    return objects


def _task_name(obj):
    meta = obj["metadata"]
    return "%s %s%s" % (obj["kind"], (meta["namespace"] + "/") if meta.get("namespace") else "", meta["name"])


TITLES = {
    "inference_service": "InferenceServices",
    "triton_server": "Triton servers",
    "fluid_dataset": "Fluid datasets and runtimes",
    "training_job": "Training jobs",
    "dcgm_exporter": "DCGM exporter",
    "tensorboard": "TensorBoard",
    "istio_policy": "Istio security policies",
}


def collection_playbook(prefix, style):
    """style "batch": one module call per family (option batch); "loop": an Ansible loop over the
    family module, one module run per item."""
    tasks = [
        {
            "name": "Namespaces, priority classes, quotas, limits, training configuration",
            "aiinfra.cluster.resources": {"definitions": plain_objects(prefix), "wait": False},
        }
    ]
    for name, items in family_items(prefix).items():
        if style == "batch":
            batch = [dict((k, v) for k, v in args.items() if k != "wait") for args in items]
            tasks.append({"name": TITLES[name], "aiinfra.cluster." + name: {"wait": False, "batch": batch}})
        else:
            tasks.append({"name": TITLES[name], "aiinfra.cluster." + name: "{{ item }}", "loop": items, "loop_control": {"label": "{{ item.name }}"}})
    return [{"name": "Benchmark workload through aiinfra.cluster, %s (%s)" % (style, prefix), "hosts": "localhost", "gather_facts": False, "tasks": tasks}]


def roles_inventory(prefix):
    """The family items as the workload roles' inventory lists (group_vars of k8s_control). The
    plain bundle creates the namespaces, and nothing waits, as in the other phases."""
    items = family_items(prefix)
    ns = namespaces(prefix)

    def entries(name):
        return [dict((k, v) for k, v in args.items() if k != "wait") for args in items[name]]

    dcgm = items["dcgm_exporter"][0]
    return {
        "model_serving_create_namespaces": False,
        "model_serving_wait": False,
        "model_serving_inference_services": entries("inference_service"),
        "model_serving_triton_servers": entries("triton_server"),
        "datasets_create_namespaces": False,
        "datasets_wait": False,
        "datasets_fluid": entries("fluid_dataset"),
        "training_create_namespaces": False,
        "training_wait": False,
        "training_jobs": entries("training_job"),
        "observability_create_namespaces": False,
        "observability_wait": False,
        "observability_namespace": dcgm["namespace"],
        "observability_dcgm_service_monitor": dcgm["service_monitor"],
        "observability_tensorboard_namespace": ns["training"],
        "observability_tensorboards": entries("tensorboard"),
        "mesh_security_policies": entries("istio_policy"),
    }


def roles_playbook(prefix):
    plain = collection_playbook(prefix, "batch")[0]
    plain["tasks"] = plain["tasks"][:1]
    plain["name"] = "Benchmark workload: the plain objects (%s)" % prefix
    tier = {"name": "Benchmark workload through the workload tier's roles (%s)" % prefix, "ansible.builtin.import_playbook": "aiinfra.cluster.workloads"}
    return [plain, tier]


def k8s_playbook(objects, prefix):
    tasks = [{"name": _task_name(obj), "kubernetes.core.k8s": {"state": "present", "definition": obj}} for obj in objects]
    return [{"name": "Benchmark workload through kubernetes.core.k8s (%s)" % prefix, "hosts": "localhost", "gather_facts": False, "tasks": tasks}]


def write(out_dir, prefix):
    os.makedirs(out_dir, exist_ok=True)
    objects = all_objects(prefix)
    kinds = {}
    for obj in objects:
        kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1

    def dump(data):
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=200)

    for style in ("batch", "loop"):
        with open(os.path.join(out_dir, "collection-%s.yml" % style), "w") as handle:
            handle.write("---\n" + dump(collection_playbook(prefix, style)))
    with open(os.path.join(out_dir, "roles.yml"), "w") as handle:
        handle.write("---\n" + dump(roles_playbook(prefix)))
    os.makedirs(os.path.join(out_dir, "inventory", "group_vars"), exist_ok=True)
    with open(os.path.join(out_dir, "inventory", "hosts.yml"), "w") as handle:
        handle.write("---\n" + dump({"all": {"children": {"k8s_control": {"hosts": {"localhost": {"ansible_connection": "local"}}}}}}))
    with open(os.path.join(out_dir, "inventory", "group_vars", "k8s_control.yml"), "w") as handle:
        handle.write("---\n" + dump(roles_inventory(prefix)))
    with open(os.path.join(out_dir, "k8s.yml"), "w") as handle:
        handle.write("---\n" + dump(k8s_playbook(objects, prefix)))
    with open(os.path.join(out_dir, "workload.yaml"), "w") as handle:
        handle.write("".join("---\n" + dump(obj) for obj in objects))
    with open(os.path.join(out_dir, "manifests.json"), "w") as handle:
        json.dump({"count": len(objects), "kinds": kinds, "objects": objects}, handle, indent=1)
    return objects, kinds


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    objects, kinds = write(argv[1], argv[2])
    print(json.dumps({"count": len(objects), "kinds": kinds}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
