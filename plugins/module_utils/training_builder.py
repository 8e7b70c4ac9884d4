# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Pure builders for distributed training jobs: params -> list of manifests (no cluster needed).

Backends:
  pytorch  + job         batch/v1 Indexed Job + headless Service, torchrun c10d rendezvous on index 0
  pytorch  + pytorchjob  kubeflow.org/v1 PyTorchJob (Training Operator v1)
  pytorch  + trainjob    trainer.kubeflow.org/v1alpha1 TrainJob (Kubeflow Trainer v2)
  tensorflow + job       Indexed Job + headless Service, per-pod TF_CONFIG (MultiWorkerMirroredStrategy)
  tensorflow + tfjob     kubeflow.org/v1 TFJob (TF_CONFIG set by the operator)
  tensorflow + jobset    jobset.x-k8s.io/v1alpha2 JobSet, chief/ps/worker with stable DNS and TF_CONFIG
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import json
import re

from ansible_collections.aiinfra.cluster.plugins.module_utils import dra, queueing
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError

DEFAULT_IMAGES = {
    # The image Kubeflow Trainer v2.3.0's torch-distributed runtime uses.
    "pytorch": "pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime",
    "tensorflow": "tensorflow/tensorflow:2.21.0-gpu",
}
C10D_PORT = 29400
TF_PORT = 2222
MANAGER = "aiinfra.cluster"
# TrainJob runtimePatches[].manager: the Trainer's webhook requires a domain-prefixed path.
RUNTIME_PATCH_MANAGER = "aiinfra.cluster/training-job"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
BACKENDS = {
    "pytorch": ("job", "pytorchjob", "trainjob"),
    "tensorflow": ("job", "tfjob", "jobset"),
}

# What each backend's main object reports when it is done: (apiVersion, kind, success, failure).
OUTCOMES = {
    "Job": ("Complete", "Failed"),
    "PyTorchJob": ("Succeeded", "Failed"),
    "TFJob": ("Succeeded", "Failed"),
    "TrainJob": ("Complete", "Failed"),
    "JobSet": ("Completed", "Failed"),
}
# Label that selects a backend's pods, for failure reports.
POD_SELECTORS = {
    "Job": "batch.kubernetes.io/job-name=%s",
    "PyTorchJob": "training.kubeflow.org/job-name=%s",
    "TFJob": "training.kubeflow.org/job-name=%s",
    "TrainJob": "jobset.sigs.k8s.io/jobset-name=%s",
    "JobSet": "jobset.sigs.k8s.io/jobset-name=%s",
}


def _labels(params, component="worker"):
    return {
        "app.kubernetes.io/name": params["name"],
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "aiinfra-training",
        "app.kubernetes.io/managed-by": MANAGER,
        "aiinfra.cluster/training-job": params["name"],
    }


def _meta(params, labels=None):
    return {"name": params["name"], "namespace": params["namespace"], "labels": labels or _labels(params, "training")}


def validate(params):
    """Checks done before any request; raise InputError naming the option and the fix."""
    name = params["name"]
    # Pod host names are <name>-<index> (63 chars max) and JobSet adds "-<rjob>-0-<i>".
    if not DNS_LABEL.match(name) or len(name) > 40:
        raise InputError("option name %r: use a DNS label of at most 40 characters (lower case letters, digits, '-', starting with a letter)" % name)
    framework, backend = params["framework"], params["backend"]
    if backend not in BACKENDS[framework]:
        raise InputError("option backend %r does not run framework %s: use one of %s" % (backend, framework, ", ".join(BACKENDS[framework])))
    if params["nodes"] < 1:
        raise InputError("option nodes must be at least 1, got %d" % params["nodes"])
    if params["gpus_per_node"] < 0:
        raise InputError("option gpus_per_node must be 0 or more, got %d" % params["gpus_per_node"])
    if params.get("procs_per_node") is not None and params["procs_per_node"] < 1:
        raise InputError("option procs_per_node must be at least 1")
    if not params.get("script") and not params.get("command"):
        raise InputError("set option script (the training entry point, run under torchrun / python) or command (the full container command)")
    elastic = params.get("elastic")
    if elastic:
        if framework != "pytorch":
            raise InputError("option elastic is for framework pytorch only (torchrun --nnodes=min:max)")
        if backend == "trainjob":
            raise InputError("option elastic is not supported with backend trainjob; use backend job or pytorchjob")
        low, high = elastic.get("min_nodes"), elastic.get("max_nodes") or params["nodes"]
        if low is None or low < 1 or low > high:
            raise InputError("option elastic: need 1 <= elastic.min_nodes <= elastic.max_nodes (max_nodes defaults to nodes), got %s:%s" % (low, high))
    strategy = params.get("strategy")
    if framework == "tensorflow":
        if strategy == "parameter_server" and backend == "job":
            raise InputError(
                "option strategy=parameter_server needs backend tfjob or jobset (parameter servers never complete, an Indexed Job would not finish)"
            )
        if strategy == "multi_worker_mirrored" and params.get("ps_replicas"):
            raise InputError("option ps_replicas is only used with strategy=parameter_server")
        if strategy == "parameter_server" and not params.get("ps_replicas"):
            raise InputError("option strategy=parameter_server needs ps_replicas >= 1")
    elif params.get("ps_replicas"):
        raise InputError("option ps_replicas is for framework tensorflow only")
    data = params.get("data") or {}
    if data and bool(data.get("claim_name")) == bool(data.get("dataset")):
        raise InputError("option data: set exactly one of data.claim_name (a PVC) or data.dataset (a Fluid Dataset, whose PVC has its name)")
    for opt in ("checkpoint", "log_dir"):
        if params.get(opt) and not params[opt].get("claim_name"):
            raise InputError("option %s needs %s.claim_name (the PVC to mount)" % (opt, opt))
    if backend == "trainjob" and params.get("priority_class_name"):
        raise InputError("option priority_class_name is not settable on a TrainJob (the runtime owns it); use backend job or set it in the TrainingRuntime")
    if params.get("restart_policy") not in (None, "Never", "OnFailure"):
        raise InputError("option restart_policy must be Never or OnFailure")
    if dra.check_allocation(params.get("gpu_allocation"), params.get("gpu_selector"), params["gpus_per_node"], "gpus_per_node") and backend == "trainjob":
        raise InputError("option gpu_allocation=dra: a TrainJob's runtime patches cannot add resource claims; use backend job or jobset")


def _dra(params):
    return params.get("gpu_allocation") == "dra" and params["gpus_per_node"] > 0


def _gpu_selector(params):
    """gpu_selector, with gpu_product as its product when it names none."""
    return dra.selector_with_product(params.get("gpu_selector"), params.get("gpu_product"))


def _procs(params):
    if params.get("procs_per_node"):
        return params["procs_per_node"]
    return params["gpus_per_node"] or 1


def _volumes(params):
    """(volumes, mounts, env) for shm, data, checkpoint and log dir; one volume per PVC."""
    volumes, mounts, env, claims = [], [], [], {}

    def claim_volume(claim, read_only):
        if claim not in claims:
            claims[claim] = "pvc-%d" % len(claims)
            volumes.append({"name": claims[claim], "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}})
        elif not read_only:
            for vol in volumes:
                if vol["name"] == claims[claim]:
                    vol["persistentVolumeClaim"]["readOnly"] = False
        return claims[claim]

    shm = params.get("shm_size")
    if shm and shm != "0":
        # NCCL uses /dev/shm for intra-node transport; the runtime default (64 MiB) is far too small.
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm}})
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    for opt, default_path, read_only_default, env_name in (
        ("data", "/data", True, "DATA_DIR"),
        ("checkpoint", "/checkpoints", False, "CHECKPOINT_DIR"),
        ("log_dir", "/logs", False, "TENSORBOARD_LOG_DIR"),
    ):
        spec = params.get(opt)
        if not spec:
            continue
        claim = spec.get("claim_name") or spec.get("dataset")
        read_only = spec.get("read_only")
        if read_only is None:
            read_only = read_only_default
        path = spec.get("mount_path") or default_path
        mount = {"name": claim_volume(claim, read_only), "mountPath": path, "readOnly": read_only}
        if spec.get("sub_path"):
            mount["subPath"] = spec["sub_path"]
        mounts.append(mount)
        env.append({"name": env_name, "value": path})
    return volumes, mounts, env


def _resources(params):
    requests, limits = {}, {}
    if params.get("cpu"):
        requests["cpu"] = params["cpu"]
    if params.get("memory"):
        requests["memory"] = limits["memory"] = params["memory"]
    if params["gpus_per_node"] and not _dra(params):
        # A quantity string, as the API server stores it (a webhook-defaulted kind such as JobSet
        # stores "8" for 8, and a number would then differ from the live object on every run).
        # Requests too: a pod template keeps only what it is given (the API server copies limits to
        # requests on Pods only), and Kueue counts a template's requests, after a LimitRange's
        # defaultRequest (0 GPUs in gpu_scheduling's team namespaces) has filled them in.
        limits["nvidia.com/gpu"] = requests["nvidia.com/gpu"] = str(params["gpus_per_node"])
    out = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    if _dra(params):
        out["claims"] = list(dra.CONTAINER_CLAIMS)
    return out


def _user_env(params):
    env = params.get("env") or {}
    return [{"name": k, "value": str(v)} for k, v in sorted(env.items())]


def _pod_spec(params, container, restart_policy=None, extra_volumes=None):
    volumes, mounts, _env = _volumes(params)
    if mounts:
        container["volumeMounts"] = mounts
    spec = {"restartPolicy": restart_policy or params.get("restart_policy") or "Never", "containers": [container]}
    volumes = (extra_volumes or []) + volumes
    if volumes:
        spec["volumes"] = volumes
    node_selector = dict(params.get("node_selector") or {})
    if params.get("gpu_product") and not _dra(params):  # under DRA the claim's selector picks the product
        node_selector["nvidia.com/gpu.product"] = params["gpu_product"]
    if node_selector:
        spec["nodeSelector"] = node_selector
    tolerations = list(params.get("tolerations") or [])
    if params["gpus_per_node"] and not any(t.get("key") == "nvidia.com/gpu" for t in tolerations):
        # GPU nodes are commonly tainted nvidia.com/gpu:NoSchedule so only GPU pods land there.
        tolerations.append({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})
    if tolerations:
        spec["tolerations"] = tolerations
    if params.get("priority_class_name"):
        spec["priorityClassName"] = params["priority_class_name"]
    if params.get("service_account_name"):
        spec["serviceAccountName"] = params["service_account_name"]
    if params.get("image_pull_secrets"):
        spec["imagePullSecrets"] = [{"name": n} for n in params["image_pull_secrets"]]
    if _dra(params):
        spec["resourceClaims"] = dra.pod_resource_claims(params["name"])
    return spec


def _container(params, name, command, env):
    _vols, _mounts, volume_env = _volumes(params)
    container = {"name": name, "image": params.get("image") or DEFAULT_IMAGES[params["framework"]], "command": command}
    if params.get("image_pull_policy"):
        container["imagePullPolicy"] = params["image_pull_policy"]
    if params.get("working_dir"):
        container["workingDir"] = params["working_dir"]
    all_env = env + volume_env + _user_env(params)
    if all_env:
        container["env"] = all_env
    resources = _resources(params)
    if resources:
        container["resources"] = resources
    return container


def _entry(params):
    """The user program: [script, *args] or the full command."""
    if params.get("command"):
        return list(params["command"]) + list(params.get("args") or [])
    return [params["script"]] + list(params.get("args") or [])


def _index_env(name):
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['%s']" % INDEX_ANNOTATION}}}


def _headless_service(params, ports):
    labels = _labels(params, "rendezvous")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": params["name"], "namespace": params["namespace"], "labels": labels},
        "spec": {
            "clusterIP": "None",
            # Peers must resolve before they are Ready: rendezvous happens before readiness.
            "publishNotReadyAddresses": True,
            "selector": {"aiinfra.cluster/training-job": params["name"]},
            "ports": [{"name": n, "port": p, "targetPort": p, "protocol": "TCP"} for n, p in ports],
        },
    }


def _indexed_job(params, container, completions):
    job_spec = {
        "completionMode": "Indexed",
        "completions": completions,
        "parallelism": completions,
        "backoffLimit": params.get("backoff_limit", 0),
        "template": {
            "metadata": {"labels": _labels(params)},
            "spec": dict(_pod_spec(params, container), subdomain=params["name"]),
        },
    }
    if params.get("ttl_seconds_after_finished") is not None:
        job_spec["ttlSecondsAfterFinished"] = params["ttl_seconds_after_finished"]
    if params.get("active_deadline_seconds"):
        job_spec["activeDeadlineSeconds"] = params["active_deadline_seconds"]
    if params.get("backoff_limit_per_index") is not None:
        job_spec["backoffLimitPerIndex"] = params["backoff_limit_per_index"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _meta(params), "spec": job_spec}


def rendezvous_endpoint(params):
    """index 0's stable DNS name: <job>-0.<headless service>:<port>."""
    return "%s-0.%s:%d" % (params["name"], params["name"], params.get("rdzv_port") or C10D_PORT)


def _nnodes(params):
    elastic = params.get("elastic")
    if elastic:
        return "%d:%d" % (elastic["min_nodes"], elastic.get("max_nodes") or params["nodes"])
    return str(params["nodes"])


def build_pytorch_job(params):
    nodes, procs = params["nodes"], _procs(params)
    elastic = params.get("elastic")
    pods = (elastic.get("max_nodes") or nodes) if elastic else nodes
    port = params.get("rdzv_port") or C10D_PORT
    endpoint = rendezvous_endpoint(params)
    env = [
        _index_env("NODE_RANK"),
        {"name": "NNODES", "value": _nnodes(params)},
        {"name": "NPROC_PER_NODE", "value": str(procs)},
        {"name": "WORLD_SIZE", "value": str(pods * procs)},
        {"name": "MASTER_ADDR", "value": "%s-0.%s" % (params["name"], params["name"])},
        {"name": "MASTER_PORT", "value": str(port)},
        {"name": "RDZV_ENDPOINT", "value": endpoint},
    ]
    if params.get("command"):
        command = _entry(params)
    else:
        command = [
            "torchrun",
            "--nnodes=%s" % _nnodes(params),
            "--nproc-per-node=%d" % procs,
            "--node-rank=$(NODE_RANK)",
            "--rdzv-backend=c10d",
            "--rdzv-endpoint=%s" % endpoint,
            "--rdzv-id=%s" % params["name"],
        ]
        if elastic:
            command.append("--max-restarts=%d" % elastic.get("max_restarts", 3))
        command += _entry(params)
    container = _container(params, "pytorch", command, env)
    container["ports"] = [{"name": "c10d", "containerPort": port, "protocol": "TCP"}]
    return [_headless_service(params, [("c10d", port)]), _indexed_job(params, container, pods)]


def _run_policy(params):
    policy = {"backoffLimit": params.get("backoff_limit", 0), "cleanPodPolicy": "None"}
    if params.get("ttl_seconds_after_finished") is not None:
        policy["ttlSecondsAfterFinished"] = params["ttl_seconds_after_finished"]
    if params.get("active_deadline_seconds"):
        policy["activeDeadlineSeconds"] = params["active_deadline_seconds"]
    if params.get("priority_class_name"):
        policy["schedulingPolicy"] = {"priorityClass": params["priority_class_name"]}
    return policy


def _replica(params, container, replicas, restart_policy=None):
    return {
        "replicas": replicas,
        "restartPolicy": restart_policy or params.get("restart_policy") or "Never",
        "template": {"metadata": {"labels": _labels(params)}, "spec": _without_restart(_pod_spec(params, container))},
    }


def _without_restart(spec):
    # The operators set restartPolicy on pods from the replica spec.
    spec = dict(spec)
    spec.pop("restartPolicy", None)
    return spec


def build_pytorchjob(params):
    procs = _procs(params)
    command = _entry(params) if params.get("command") else ["torchrun"] + _entry(params)
    container = _container(params, "pytorch", command, [])
    spec = {"nprocPerNode": str(procs), "runPolicy": _run_policy(params), "pytorchReplicaSpecs": {}}
    elastic = params.get("elastic")
    if elastic:
        high = elastic.get("max_nodes") or params["nodes"]
        spec["elasticPolicy"] = {
            "minReplicas": elastic["min_nodes"],
            "maxReplicas": high,
            "rdzvBackend": "c10d",
            "maxRestarts": elastic.get("max_restarts", 3),
        }
        spec["pytorchReplicaSpecs"]["Worker"] = _replica(params, container, params["nodes"])
    else:
        spec["pytorchReplicaSpecs"]["Master"] = _replica(params, container, 1)
        if params["nodes"] > 1:
            spec["pytorchReplicaSpecs"]["Worker"] = _replica(params, container, params["nodes"] - 1)
    return [{"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": _meta(params), "spec": spec}]


def build_trainjob(params):
    procs = _procs(params)
    trainer = {
        "image": params.get("image") or DEFAULT_IMAGES["pytorch"],
        "numNodes": params["nodes"],
        "numProcPerNode": procs,
        # The torch plugin sets PET_NNODES/PET_NPROC_PER_NODE/PET_NODE_RANK/PET_MASTER_*; torchrun reads them.
        "command": _entry(params) if params.get("command") else ["torchrun"] + _entry(params),
    }
    # The volumes' env (CHECKPOINT_DIR, ...) goes here too: the Trainer's webhook refuses env in a
    # runtime patch of the node container.
    env = _user_env(params) + _volumes(params)[2]
    if env:
        trainer["env"] = env
    resources = _resources(params)
    if resources:
        trainer["resourcesPerNode"] = resources
    spec = {"runtimeRef": {"name": params.get("runtime") or "torch-distributed"}, "trainer": trainer}
    if params.get("active_deadline_seconds"):
        spec["activeDeadlineSeconds"] = params["active_deadline_seconds"]
    # Pod-level settings the runtime allows us to patch: volumes, node selection, tolerations.
    pod = _pod_spec(params, {"name": "node"})
    pod.pop("restartPolicy", None)
    pod_patch = dict((k, pod[k]) for k in ("volumes", "nodeSelector", "tolerations", "imagePullSecrets", "serviceAccountName") if k in pod)
    node_container = {"name": "node"}
    mounts = _volumes(params)[1]
    if mounts:
        node_container["volumeMounts"] = mounts
    if len(node_container) > 1:
        pod_patch["containers"] = [node_container]
    if pod_patch:
        spec["runtimePatches"] = [
            {
                "manager": RUNTIME_PATCH_MANAGER,
                "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [{"name": "node", "template": {"spec": {"template": {"spec": pod_patch}}}}]}}},
            }
        ]
    return [{"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "metadata": _meta(params), "spec": spec}]


def tf_cluster(params, hosts_by_type):
    return dict((t, ["%s:%d" % (h, params.get("tf_port") or TF_PORT) for h in hosts]) for t, hosts in hosts_by_type.items() if hosts)


def _tf_config_env(cluster, task_type):
    """TF_CONFIG with the task index filled in by the kubelet from TF_TASK_INDEX (dependent env var)."""
    template = '{"cluster": %s, "task": {"type": %s, "index": $(TF_TASK_INDEX)}}' % (json.dumps(cluster, sort_keys=True), json.dumps(task_type))
    return [_index_env("TF_TASK_INDEX"), {"name": "TF_CONFIG", "value": template}]


def build_tensorflow_job(params):
    name, nodes, port = params["name"], params["nodes"], params.get("tf_port") or TF_PORT
    cluster = tf_cluster(params, {"worker": ["%s-%d.%s" % (name, i, name) for i in range(nodes)]})
    command = _entry(params) if params.get("command") else ["python", params["script"]] + list(params.get("args") or [])
    container = _container(params, "tensorflow", command, _tf_config_env(cluster, "worker"))
    container["ports"] = [{"name": "tf-grpc", "containerPort": port, "protocol": "TCP"}]
    return [_headless_service(params, [("tf-grpc", port)]), _indexed_job(params, container, nodes)]


def build_tfjob(params):
    port = params.get("tf_port") or TF_PORT
    command = _entry(params) if params.get("command") else ["python", params["script"]] + list(params.get("args") or [])
    container = _container(params, "tensorflow", command, [])
    container["ports"] = [{"name": "tfjob-port", "containerPort": port, "protocol": "TCP"}]
    replicas = {"Worker": _replica(params, container, params["nodes"])}
    if params.get("strategy") == "parameter_server":
        replicas["Chief"] = _replica(params, container, 1)
        ps_params = dict(params, gpus_per_node=0)
        ps_container = _container(ps_params, "tensorflow", command, [])
        ps_container["ports"] = container["ports"]
        # Parameter servers run until the job ends; restarting them on failure keeps training alive.
        replicas["PS"] = _replica(ps_params, ps_container, params["ps_replicas"], restart_policy="OnFailure")
    spec = {"tfReplicaSpecs": replicas, "runPolicy": _run_policy(params)}
    if params.get("success_policy") == "all_workers":
        spec["successPolicy"] = "AllWorkers"
    return [{"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": _meta(params), "spec": spec}]


def build_tf_jobset(params):
    name, port = params["name"], params.get("tf_port") or TF_PORT
    counts = {"worker": params["nodes"]}
    if params.get("strategy") == "parameter_server":
        counts.update({"chief": 1, "ps": params["ps_replicas"]})
    # JobSet pod DNS: <jobset>-<replicatedJob>-<jobIndex>-<podIndex>.<subdomain (= jobset name)>
    hosts = dict((t, ["%s-%s-0-%d.%s" % (name, t, i, name) for i in range(n)]) for t, n in counts.items())
    cluster = tf_cluster(params, hosts)
    command = _entry(params) if params.get("command") else ["python", params["script"]] + list(params.get("args") or [])
    replicated = []
    for task_type in ("chief", "ps", "worker"):
        if task_type not in counts:
            continue
        task_params = dict(params, gpus_per_node=0) if task_type == "ps" else params
        container = _container(task_params, "tensorflow", command, _tf_config_env(cluster, task_type))
        container["ports"] = [{"name": "tf-grpc", "containerPort": port, "protocol": "TCP"}]
        job_spec = {
            "completionMode": "Indexed",
            "completions": counts[task_type],
            "parallelism": counts[task_type],
            "backoffLimit": params.get("backoff_limit", 0),
            "template": {"metadata": {"labels": _labels(params, task_type)}, "spec": _pod_spec(task_params, container)},
        }
        replicated.append({"name": task_type, "replicas": 1, "template": {"spec": job_spec}})
    targets = ["chief", "worker"] if params.get("success_policy", "all_workers") == "all_workers" else ["chief"]
    targets = [t for t in targets if t in counts]
    spec = {
        "network": {"enableDNSHostnames": True, "subdomain": name, "publishNotReadyAddresses": True},
        # Parameter servers never exit: the JobSet succeeds when the chief/workers do.
        "successPolicy": {"operator": "All", "targetReplicatedJobs": targets},
        "failurePolicy": {"maxRestarts": params.get("backoff_limit", 0)},
        "replicatedJobs": replicated,
    }
    if params.get("ttl_seconds_after_finished") is not None:
        spec["ttlSecondsAfterFinished"] = params["ttl_seconds_after_finished"]
    return [{"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": _meta(params), "spec": spec}]


BUILDERS = {
    ("pytorch", "job"): build_pytorch_job,
    ("pytorch", "pytorchjob"): build_pytorchjob,
    ("pytorch", "trainjob"): build_trainjob,
    ("tensorflow", "job"): build_tensorflow_job,
    ("tensorflow", "tfjob"): build_tfjob,
    ("tensorflow", "jobset"): build_tf_jobset,
}

PARAM_DEFAULTS = {
    "namespace": "default",
    "gpu_allocation": "device_plugin",
    "framework": "pytorch",
    "backend": "job",
    "strategy": "multi_worker_mirrored",
    "nodes": 1,
    "gpus_per_node": 1,
    "backoff_limit": 0,
    "restart_policy": "Never",
    "shm_size": "16Gi",
    "ttl_seconds_after_finished": 86400,
    "success_policy": "all_workers",
}


# Kueue reads the queue and the workload priority from the job's own labels (queueing.py), and the
# topology a pod set needs from its pod template's annotations.
TOPOLOGY_ANNOTATIONS = {"required": "kueue.x-k8s.io/podset-required-topology", "preferred": "kueue.x-k8s.io/podset-preferred-topology"}
# Short names for the topology levels the collection's inventories use (any node label works too).
TOPOLOGY_LEVELS = {"block": "aiinfra.cluster/topology-block", "rack": "aiinfra.cluster/topology-rack", "host": "kubernetes.io/hostname",
                   "hostname": "kubernetes.io/hostname"}


def _validate_queueing(params):
    queueing.queue_labels(params)
    topology = params.get("topology") or {}
    placed = [k for k in ("required", "preferred") if topology.get(k)]
    if not topology:
        return
    if len(placed) != 1:
        raise InputError("option topology: set exactly one of topology.required or topology.preferred (a level: block, rack, host or a node label)")
    if not params.get("queue_name"):
        raise InputError("option topology is placed by Kueue's topology-aware scheduling: set queue_name to a LocalQueue whose flavors have a Topology")
    if params["backend"] == "trainjob":
        raise InputError("option topology: a TrainJob's runtime patches cannot annotate its pods in v2.3; use backend job, jobset or pytorchjob")
    if params.get("gpu_allocation") == "dra":
        raise InputError("option topology with gpu_allocation=dra: Kueue places pods by the GPUs they request (nvidia.com/gpu); use the device plugin")


def topology_level(level):
    """block/rack/host, or a node label key as given."""
    return TOPOLOGY_LEVELS.get(level, level)


def pod_templates(obj):
    """The pod templates of a training object, where its pods' labels and annotations go."""
    spec = obj.get("spec") or {}
    if obj["kind"] == "Job":
        return [spec["template"]]
    if obj["kind"] == "JobSet":
        return [rjob["template"]["spec"]["template"] for rjob in spec["replicatedJobs"]]
    for key in ("pytorchReplicaSpecs", "tfReplicaSpecs"):
        if key in spec:
            return [spec[key][name]["template"] for name in sorted(spec[key])]
    return []


def _queueing(params, objects):
    """Kueue's labels on the main object, the topology and the user's annotations on its pods."""
    main = main_object(objects)
    main["metadata"].setdefault("labels", {}).update(queueing.queue_labels(params))
    annotations = dict(params.get("pod_annotations") or {})
    for key, annotation in TOPOLOGY_ANNOTATIONS.items():
        if (params.get("topology") or {}).get(key):
            annotations[annotation] = topology_level(params["topology"][key])
    if annotations:
        for template in pod_templates(main):
            template.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)


def build_training_job(params):
    """params (module options) -> the bundle of manifests for the chosen framework/backend."""
    full = dict(PARAM_DEFAULTS)
    full.update(dict((k, v) for k, v in params.items() if v is not None))
    validate(full)
    _validate_queueing(full)
    if full.get("pod_annotations") and full["backend"] == "trainjob":
        raise InputError("option pod_annotations: a TrainJob's runtime patches cannot annotate its pods in v2.3; use backend job, jobset or pytorchjob")
    objects = BUILDERS[(full["framework"], full["backend"])](full)
    _queueing(full, objects)
    if _dra(full):
        # Each pod claims its GPUs from this template; it comes first so the pods find it.
        objects = [dra.claim_template(full["name"], full["namespace"], _labels(full), full["gpus_per_node"], _gpu_selector(full))] + objects
    return objects


def main_object(objects):
    """The object whose status says how the training went (the last one of the bundle)."""
    return objects[-1]


# A finished run is remembered in a ConfigMap of its own (no owner reference), so that it outlives the
# Job that ttlSecondsAfterFinished garbage-collects, and a later converge does not train again.
RECORD_LABEL = "aiinfra.cluster/training-record"
SPEC_HASH_KEY = "spec-hash"


def spec_hash(objects):
    """Hash of the bundle as built: a changed option is a different run, the same options the same run."""
    return hashlib.sha256(json.dumps(objects, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()[:16]


def record_name(name):
    return "%s-training-record" % name


def build_run_record(params, main_obj, digest, state, reason=None, timings=None):
    """The ConfigMap that remembers a run of this spec: its outcome and when (values are strings)."""
    labels = dict(_labels(params, "training-record"), **{RECORD_LABEL: "true"})
    data = {SPEC_HASH_KEY: digest, "kind": main_obj["kind"], "apiVersion": main_obj["apiVersion"], "state": state}
    if reason:
        data["reason"] = reason
    for key, value in sorted((timings or {}).items()):
        if value is not None and key != "waited_seconds":
            data[key.replace("_", "-")] = str(value)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(_meta(params, labels), name=record_name(params["name"])), "data": data}


def recorded_run(record, digest):
    """What a record says about the run of spec `digest`: None when it is about another spec (or none)."""
    data = (record or {}).get("data") or {}
    if data.get(SPEC_HASH_KEY) != digest:
        return None
    timings = {}
    for key in ("start_time", "completion_time", "duration_seconds"):
        value = data.get(key.replace("_", "-"))
        timings[key] = int(value) if key == "duration_seconds" and value and value.isdigit() else value
    return {"state": data.get("state"), "reason": data.get("reason"), "kind": data.get("kind"), "timings": timings}


def training_outcome(obj):
    """(state, reason) for a training object: state is running, succeeded or failed."""
    success, failure = OUTCOMES[obj["kind"]]
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if str(cond.get("status")) != "True":
            continue
        if cond.get("type") == success:
            return "succeeded", cond.get("reason")
        if cond.get("type") == failure:
            return "failed", "%s: %s" % (cond.get("reason"), cond.get("message"))
    return "running", None


def training_timings(obj):
    """Start/completion times and duration from what the controller recorded."""
    status = obj.get("status") or {}
    start = status.get("startTime")
    end = status.get("completionTime")
    if not start or not end:
        for cond in status.get("conditions") or []:
            if cond.get("type") in OUTCOMES[obj["kind"]] and str(cond.get("status")) == "True":
                end = end or cond.get("lastTransitionTime")
            if cond.get("type") in ("Created", "Running") and not start:
                start = cond.get("lastTransitionTime")
    if not start:
        start = (obj.get("metadata") or {}).get("creationTimestamp")
    return {"start_time": start, "completion_time": end, "duration_seconds": _seconds_between(start, end)}


def _seconds_between(start, end):
    if not start or not end:
        return None
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    try:
        return int((datetime.datetime.strptime(end, fmt) - datetime.datetime.strptime(start, fmt)).total_seconds())
    except ValueError:
        return None
