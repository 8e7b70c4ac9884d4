#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: training_job
short_description: Run distributed PyTorch or TensorFlow training on Kubernetes and wait for it
version_added: 0.1.0
author: aiinfra.cluster contributors (@aiinfra)
description:
  - Builds and applies, in one call, everything a distributed training run needs, then waits for
    it to finish. On failure it fails fast with the failing pod's reason and log tail.
  - "PyTorch, O(backend=job) (default, no operator needed): a C(batch/v1) Indexed Job plus a headless
    Service named after the job; every pod gets the stable DNS name C(<name>-<index>.<name>) and runs
    C(torchrun) with C10d rendezvous on index 0 (C(<name>-0.<name>:29400))."
  - PyTorch, O(backend=pytorchjob) (Kubeflow Training Operator v1, C(kubeflow.org/v1)) or
    O(backend=trainjob) (Kubeflow Trainer v2, C(trainer.kubeflow.org/v1alpha1)) when those operators are installed.
  - "TensorFlow, O(strategy=multi_worker_mirrored): an Indexed Job plus headless Service; each pod's
    C(TF_CONFIG) lists every worker by stable DNS name and carries the pod's own task index."
  - TensorFlow, O(strategy=parameter_server) through a TFJob (O(backend=tfjob)) or a JobSet
    (O(backend=jobset), chief/ps/worker with stable DNS); parameter servers are not waited for.
  - Finished jobs are removed after O(ttl_seconds_after_finished), which also removes their pods.
    The run itself is remembered in a ConfigMap C(<name>-training-record) in the job's namespace (labelled
    C(aiinfra.cluster/training-record=true), no owner, so it outlives the job), keyed by a hash of the job's
    spec; it is written when the job is created and updated when the module sees the outcome. A later run with
    the same options whose job is gone does not train again; it reports the recorded outcome and when it
    completed, with C(changed=false). Set O(rerun=true), change an option, or delete the record to train again.
options:
  <<: &module_options
    name:
      description:
        - Name of the job (and of its headless Service). A DNS label of at most 40 characters.
      type: str
      required: true
    namespace:
      description: Namespace of the job.
      type: str
      default: default
    framework:
      description: The training framework.
      type: str
      choices: [pytorch, tensorflow]
      default: pytorch
    backend:
      description:
        - What runs the pods. V(job) needs no operator.
        - V(pytorchjob) and V(trainjob) are for PyTorch; V(tfjob) and V(jobset) are for TensorFlow.
      type: str
      choices: [job, pytorchjob, trainjob, tfjob, jobset]
      default: job
    strategy:
      description:
        - TensorFlow distribution strategy. V(parameter_server) needs O(backend=tfjob) or O(backend=jobset)
          and O(ps_replicas).
      type: str
      choices: [multi_worker_mirrored, parameter_server]
      default: multi_worker_mirrored
    image:
      description:
        - Training image. Defaults to C(pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime) or
          C(tensorflow/tensorflow:2.21.0-gpu); set it to your own image or a mirror.
      type: str
    image_pull_policy:
      description: Image pull policy of the training container.
      type: str
      choices: [Always, IfNotPresent, Never]
    image_pull_secrets:
      description: Names of Secrets to pull the image with.
      type: list
      elements: str
    script:
      description:
        - The training entry point (for example V(/workspace/train.py)), run under C(torchrun) (PyTorch)
          or C(python) (TensorFlow) with O(args).
      type: str
    command:
      description:
        - The full container command instead of O(script); the rendezvous settings are then only given
          as environment variables.
      type: list
      elements: str
    args:
      description: Arguments after O(script) or O(command).
      type: list
      elements: str
    working_dir:
      description: Working directory of the training container.
      type: str
    env:
      description: Extra environment variables for the training container.
      type: dict
    nodes:
      description: Number of nodes (pods). For TensorFlow, the number of workers.
      type: int
      default: 1
    procs_per_node:
      description: Processes per node (C(torchrun --nproc-per-node)); defaults to O(gpus_per_node), or 1.
      type: int
    gpus_per_node:
      description: C(nvidia.com/gpu) per pod. V(0) for CPU-only runs.
      type: int
      default: 1
    cpu:
      description: CPU request per pod, for example V(16).
      type: str
    memory:
      description: Memory request and limit per pod, for example V(128Gi).
      type: str
    elastic:
      description:
        - Elastic PyTorch training (C(torchrun --nnodes=min:max)). O(backend=job) starts C(max_nodes) pods;
          training proceeds once C(min_nodes) have joined.
      type: dict
      suboptions:
        min_nodes:
          description: Fewest nodes to train with.
          type: int
          required: true
        max_nodes:
          description: Most nodes; defaults to O(nodes).
          type: int
        max_restarts:
          description: How often torchrun restarts the worker group after a failure.
          type: int
          default: 3
    rdzv_port:
      description: Port of the C10d rendezvous store on index 0.
      type: int
      default: 29400
    tf_port:
      description: gRPC port of each TensorFlow task.
      type: int
      default: 2222
    ps_replicas:
      description: Number of TensorFlow parameter servers (O(strategy=parameter_server)).
      type: int
    success_policy:
      description:
        - When a parameter-server job succeeds. V(all_workers) waits for the chief and every worker;
          V(chief) only for the chief (TF2 workers that serve forever).
      type: str
      choices: [all_workers, chief]
      default: all_workers
    backoff_limit:
      description: Pod failures tolerated before the job fails. V(0) fails fast on the first failure.
      type: int
      default: 0
    backoff_limit_per_index:
      description: Failures tolerated per index (O(backend=job) only).
      type: int
    restart_policy:
      description: Pod restart policy. V(OnFailure) restarts the container in place (same host name).
      type: str
      choices: [Never, OnFailure]
      default: Never
    active_deadline_seconds:
      description: Fail the job after this many seconds.
      type: int
    ttl_seconds_after_finished:
      description:
        - Delete the finished job (and its pods) after this many seconds. V(0) deletes it at once, before the
          module may have seen the outcome; keep it above a few seconds when O(wait=true).
      type: int
      default: 86400
    priority_class_name:
      description: PriorityClass of the pods (not settable with O(backend=trainjob)).
      type: str
    queue_name:
      description:
        - Kueue LocalQueue in the job's namespace (label C(kueue.x-k8s.io/queue-name)). Kueue creates the job
          suspended and starts it only when its ClusterQueue can admit all of its pods at once (quota, and with
          O(topology) the placement). No pod exists, and no GPU is held, while it waits.
        - The role C(aiinfra.cluster.gpu_scheduling) creates a LocalQueue C(gpu) in every team namespace.
        - While the job is queued, a wait that ends reports the reason Kueue gives (for example insufficient quota).
      type: str
    workload_priority_class:
      description:
        - Kueue WorkloadPriorityClass of the job (label C(kueue.x-k8s.io/priority-class)). It orders the queue and
          decides what the job may preempt there.
        - C(aiinfra.cluster.gpu_scheduling) creates one per PriorityClass, with the same name. Without it Kueue
          uses the pods' O(priority_class_name).
      type: str
    topology:
      description:
        - Where Kueue's topology-aware scheduling places the job's pods (each pod set of it), all or nothing. Needs
          O(queue_name) and a flavor with a Topology (C(gpu_scheduling_topology_levels)).
        - A level is V(block), V(rack), V(host) (the labels C(aiinfra.cluster/topology-block),
          C(aiinfra.cluster/topology-rack), C(kubernetes.io/hostname)) or any node label of a Topology level.
        - Not with O(backend=trainjob) or O(gpu_allocation=dra).
      type: dict
      suboptions:
        required:
          description:
            - Every pod in one domain of this level (pod annotation C(kueue.x-k8s.io/podset-required-topology)).
            - The job waits until one domain has room.
          type: str
        preferred:
          description: As few domains of this level as possible (pod annotation C(kueue.x-k8s.io/podset-preferred-topology)).
          type: str
    pod_annotations:
      description: Annotations for the job's pods (not with O(backend=trainjob)).
      type: dict
    gpu_product:
      description:
        - Only schedule on nodes whose GPU Feature Discovery label C(nvidia.com/gpu.product) has this
          value, for example V(NVIDIA-H100-80GB-HBM3).
        - With O(gpu_allocation=dra), the product of O(gpu_selector) when that names none.
      type: str
    gpu_allocation:
      description:
        - How the pods get their GPUs. V(device_plugin) asks C(nvidia.com/gpu) limits.
        - V(dra) claims them through Dynamic Resource Allocation. A ResourceClaimTemplate
          C(<name>-gpus) asks O(gpus_per_node) devices of DeviceClass C(gpu.nvidia.com) (NVIDIA's DRA
          driver), matching O(gpu_selector). Each pod gets its own claim, which the kube-scheduler
          allocates.
        - V(dra) is not available with O(backend=trainjob).
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
    node_selector:
      description: Extra node selector labels.
      type: dict
    tolerations:
      description:
        - Pod tolerations. With GPUs, a toleration for the C(nvidia.com/gpu) taint is added unless one is given.
      type: list
      elements: dict
    service_account_name:
      description: ServiceAccount of the pods.
      type: str
    shm_size:
      description:
        - Size of the memory-backed C(/dev/shm) that NCCL needs (counts against the pod's memory). V(0) for none.
      type: str
      default: 16Gi
    data:
      description: The training data volume.
      type: dict
      suboptions:
        claim_name:
          description: A PersistentVolumeClaim.
          type: str
        dataset:
          description: A Fluid Dataset in the same namespace; its PVC has the Dataset's name.
          type: str
        mount_path:
          description: Where to mount it; exported as C(DATA_DIR).
          type: str
          default: /data
        sub_path:
          description: Sub-directory of the volume.
          type: str
        read_only:
          description: Mount read-only.
          type: bool
          default: true
    checkpoint:
      description: The checkpoint volume; its path is exported as C(CHECKPOINT_DIR).
      type: dict
      suboptions:
        claim_name:
          description: A PersistentVolumeClaim (ReadWriteMany when several nodes write).
          type: str
          required: true
        mount_path:
          description: Where to mount it.
          type: str
          default: /checkpoints
        sub_path:
          description: Sub-directory of the volume.
          type: str
        read_only:
          description: Mount read-only.
          type: bool
          default: false
    log_dir:
      description:
        - The TensorBoard log volume; its path is exported as C(TENSORBOARD_LOG_DIR) (see M(aiinfra.cluster.tensorboard)).
      type: dict
      suboptions:
        claim_name:
          description: A PersistentVolumeClaim (may be the checkpoint one).
          type: str
          required: true
        mount_path:
          description: Where to mount it.
          type: str
          default: /logs
        sub_path:
          description: Sub-directory of the volume.
          type: str
        read_only:
          description: Mount read-only.
          type: bool
          default: false
    runtime:
      description: The (Cluster)TrainingRuntime of a TrainJob.
      type: str
      default: torch-distributed
    rerun:
      description:
        - Run the training again although a run of the same spec is recorded as finished. A finished job that
          still exists is deleted (with its pods) and created anew; a running one is left alone.
        - With V(false), a finished run whose job was removed (after O(ttl_seconds_after_finished)) is not
          repeated. A recorded failure is reported as a failure (with O(wait=true)) until O(rerun=true).
        - Every run with V(true) trains again; set it for one run, not in inventory.
      type: bool
      default: false
      version_added: 1.1.0
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
  - With O(wait=true) (the default) the module waits up to O(wait_timeout) seconds for the training to
    finish; for long runs set O(wait=false) and poll, or raise O(wait_timeout).
  - A Job's pod template cannot change once created; to change a job, delete it (O(state=absent)) or
    use a new O(name).
  - O(state=absent) also deletes the run's record.
  - O(backend=job) needs cluster DNS (ClusterFirst) for the C(<name>-<index>.<name>) host names.
"""

EXAMPLES = r"""
- name: 2 nodes x 8 H100 PyTorch DDP, no operator needed
  aiinfra.cluster.training_job:
    name: resnet-ddp
    namespace: ml-training
    image: registry.example.com/ml/resnet:1.4
    script: /workspace/train.py
    args: ["--epochs", "90"]
    nodes: 2
    gpus_per_node: 8
    gpu_product: NVIDIA-H100-80GB-HBM3
    priority_class_name: gpu-training
    data: {dataset: imagenet}
    checkpoint: {claim_name: resnet-ckpt}
    log_dir: {claim_name: resnet-ckpt, sub_path: tb}
    wait_timeout: 86400

- name: 64 GPUs through Kueue, all 8 pods in one topology block, started only when one has room
  aiinfra.cluster.training_job:
    name: llm-pretrain
    namespace: team-research
    script: /workspace/pretrain.py
    nodes: 8
    gpus_per_node: 8
    queue_name: gpu
    workload_priority_class: gpu-training
    topology: {required: block}
    wait_timeout: 86400

- name: GPUs through DRA, H200s with at least 140Gi each, allocated by the scheduler
  aiinfra.cluster.training_job:
    name: llm-dra
    namespace: ml-training
    script: /workspace/pretrain.py
    nodes: 2
    gpus_per_node: 8
    gpu_allocation: dra
    gpu_selector: {product: NVIDIA-H200, min_memory: 140Gi}

- name: Elastic run on 2 to 4 nodes
  aiinfra.cluster.training_job:
    name: llm-elastic
    namespace: ml-training
    script: /workspace/pretrain.py
    nodes: 4
    gpus_per_node: 8
    elastic: {min_nodes: 2, max_nodes: 4}
    wait: false

- name: TensorFlow MultiWorkerMirroredStrategy on 3 workers
  aiinfra.cluster.training_job:
    name: tf-mwms
    namespace: ml-training
    framework: tensorflow
    script: /workspace/train_tf.py
    nodes: 3
    gpus_per_node: 4

- name: TensorFlow parameter servers through JobSet
  aiinfra.cluster.training_job:
    name: tf-ps
    namespace: ml-training
    framework: tensorflow
    strategy: parameter_server
    backend: jobset
    script: /workspace/train_ps.py
    nodes: 4
    ps_replicas: 2

- name: Train once more with the same options, although the earlier run completed
  aiinfra.cluster.training_job:
    name: resnet-ddp
    namespace: ml-training
    image: registry.example.com/ml/resnet:1.4
    script: /workspace/train.py
    nodes: 2
    gpus_per_node: 8
    rerun: true

- name: Through the Kubeflow Trainer v2 instead
  aiinfra.cluster.training_job:
    name: resnet-trainjob
    namespace: ml-training
    backend: trainjob
    script: /workspace/train.py
    nodes: 2
    gpus_per_node: 8
"""

RETURN = r"""
batch:
  description:
    - With O(batch), one result per element, in the order given, each holding what a run with that element's
      options returns; the other return values are then not set at the top level.
  returned: when O(batch) is set
  type: list
  elements: dict
training:
  description: The run's main object and how it went.
  returned: when state=present
  type: dict
  sample:
    kind: Job
    name: resnet-ddp
    state: succeeded
    reason: CompletionsReached
    rendezvous_endpoint: resnet-ddp-0.resnet-ddp:29400
    status: {succeeded: 2, completionTime: "2026-11-29T23:50:11Z"}
    timings: {start_time: "2026-11-29T23:49:58Z", completion_time: "2026-11-29T23:50:11Z", duration_seconds: 13, waited_seconds: 14.2}
    already_ran: false
    record: resnet-ddp-training-record
  contains:
    state:
      description:
        - V(pending), V(running), V(succeeded) or V(failed); V(finished) when the recorded run's job was removed
          before the module saw its outcome.
      type: str
    already_ran:
      description:
        - True when nothing was created because the record says this spec already ran and its job is gone;
          O(rerun=true) runs it again. C(reason) then says when it completed, C(timings) what was recorded.
      type: bool
      version_added: 1.1.0
    record:
      description: Name of the ConfigMap that records the run.
      type: str
      version_added: 1.1.0
removed:
  description: With O(rerun=true), the finished training object deleted before it was created again.
  returned: when O(rerun=true) removed one
  type: list
  elements: dict
  version_added: 1.1.0
resources:
  description: One entry per object applied (or deleted), in order.
  returned: always
  type: list
  elements: dict
  sample:
    - {apiVersion: v1, kind: Service, name: resnet-ddp, namespace: ml-training, changed: true, action: created}
    - {apiVersion: batch/v1, kind: Job, name: resnet-ddp, namespace: ml-training, changed: true, action: created}
failed_pod:
  description: On failure, the first failed pod, its reason and log tail (null when the kubelet serves no logs).
  returned: on failure
  type: dict
  sample: {pod: resnet-ddp-1-x7k2q, reason: "pytorch: Error exit 1 ", log_tail: null}
api_requests:
  description: API requests sent, by HTTP verb.
  returned: always
  type: dict
  sample: {GET: 4, PATCH: 2}
"""

import time

from ansible_collections.aiinfra.cluster.plugins.module_utils.apply import FIELD_MANAGER, ApplyEngine
from ansible_collections.aiinfra.cluster.plugins.module_utils.dra import SELECTOR_OPTIONS
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import KubeError, WaitFailed, WaitTimeout
from ansible_collections.aiinfra.cluster.plugins.module_utils.resources import ResourceResolver
from ansible_collections.aiinfra.cluster.plugins.module_utils.runner import execute, kube_module, run_bundle
from ansible_collections.aiinfra.cluster.plugins.module_utils.training_builder import (
    POD_SELECTORS,
    build_run_record,
    build_training_job,
    main_object,
    record_name,
    recorded_run,
    rendezvous_endpoint,
    spec_hash,
    training_outcome,
    training_timings,
)
from ansible_collections.aiinfra.cluster.plugins.module_utils.waiters import pause, pod_failure_summary, recent_events, wait_for

VOLUME_OPTIONS = {
    "claim_name": {"type": "str"},
    "mount_path": {"type": "str"},
    "sub_path": {"type": "str"},
    "read_only": {"type": "bool"},
}

ARGUMENT_SPEC = {
    "name": {"type": "str", "required": True},
    "namespace": {"type": "str", "default": "default"},
    "framework": {"type": "str", "default": "pytorch", "choices": ["pytorch", "tensorflow"]},
    "backend": {"type": "str", "default": "job", "choices": ["job", "pytorchjob", "trainjob", "tfjob", "jobset"]},
    "strategy": {"type": "str", "default": "multi_worker_mirrored", "choices": ["multi_worker_mirrored", "parameter_server"]},
    "image": {"type": "str"},
    "image_pull_policy": {"type": "str", "choices": ["Always", "IfNotPresent", "Never"]},
    "image_pull_secrets": {"type": "list", "elements": "str", "no_log": False},
    "script": {"type": "str"},
    "command": {"type": "list", "elements": "str"},
    "args": {"type": "list", "elements": "str"},
    "working_dir": {"type": "str"},
    "env": {"type": "dict"},
    "nodes": {"type": "int", "default": 1},
    "procs_per_node": {"type": "int"},
    "gpus_per_node": {"type": "int", "default": 1},
    "cpu": {"type": "str"},
    "memory": {"type": "str"},
    "elastic": {
        "type": "dict",
        "options": {
            "min_nodes": {"type": "int", "required": True},
            "max_nodes": {"type": "int"},
            "max_restarts": {"type": "int", "default": 3},
        },
    },
    "rdzv_port": {"type": "int", "default": 29400},
    "tf_port": {"type": "int", "default": 2222},
    "ps_replicas": {"type": "int"},
    "success_policy": {"type": "str", "default": "all_workers", "choices": ["all_workers", "chief"]},
    "backoff_limit": {"type": "int", "default": 0},
    "backoff_limit_per_index": {"type": "int"},
    "restart_policy": {"type": "str", "default": "Never", "choices": ["Never", "OnFailure"]},
    "active_deadline_seconds": {"type": "int"},
    "ttl_seconds_after_finished": {"type": "int", "default": 86400},
    "priority_class_name": {"type": "str"},
    "queue_name": {"type": "str"},
    "workload_priority_class": {"type": "str"},
    "topology": {"type": "dict", "options": {"required": {"type": "str"}, "preferred": {"type": "str"}}, "mutually_exclusive": [["required", "preferred"]]},
    "pod_annotations": {"type": "dict"},
    "gpu_product": {"type": "str"},
    "gpu_allocation": {"type": "str", "default": "device_plugin", "choices": ["device_plugin", "dra"]},
    "gpu_selector": {"type": "dict", "options": SELECTOR_OPTIONS},
    "node_selector": {"type": "dict"},
    "tolerations": {"type": "list", "elements": "dict"},
    "service_account_name": {"type": "str"},
    "shm_size": {"type": "str", "default": "16Gi"},
    "data": {
        "type": "dict",
        "options": dict(VOLUME_OPTIONS, dataset={"type": "str"}, mount_path={"type": "str", "default": "/data"}, read_only={"type": "bool", "default": True}),
        "mutually_exclusive": [["claim_name", "dataset"]],
        "required_one_of": [["claim_name", "dataset"]],
    },
    "checkpoint": {
        "type": "dict",
        "options": dict(
            VOLUME_OPTIONS,
            claim_name={"type": "str", "required": True},
            mount_path={"type": "str", "default": "/checkpoints"},
            read_only={"type": "bool", "default": False},
        ),
    },
    "log_dir": {
        "type": "dict",
        "options": dict(
            VOLUME_OPTIONS,
            claim_name={"type": "str", "required": True},
            mount_path={"type": "str", "default": "/logs"},
            read_only={"type": "bool", "default": False},
        ),
    },
    "runtime": {"type": "str", "default": "torch-distributed"},
    "rerun": {"type": "bool", "default": False},
}

# rerun is how to run, not what: it is no part of the spec, nor of the spec's hash.
BUILDER_KEYS = [k for k in ARGUMENT_SPEC if k != "rerun"]


def wait_for_training(module, client, obj):
    """Wait until the run succeeds; fail fast with the failing pod when it fails."""
    params = module.params
    meta = obj["metadata"]
    rt = ResourceResolver(client).resolve(obj["apiVersion"], obj["kind"])
    started = time.monotonic()
    if obj["kind"] == "Job":
        # The shared Job waiter already fails fast with the failed pod's reason and log tail.
        last = wait_for(client, rt, meta["name"], meta["namespace"], {"type": "job"}, timeout=params["wait_timeout"])
        return last, time.monotonic() - started
    deadline, interval = started + params["wait_timeout"], 0.2
    while True:
        last = client.get(rt.item_path(meta["name"], meta["namespace"]))
        state, reason = training_outcome(last)
        if state == "succeeded":
            return last, time.monotonic() - started
        if state == "failed":
            pod = pod_failure_summary(client, meta["namespace"], POD_SELECTORS[obj["kind"]] % meta["name"])
            msg = "%s %s/%s failed: %s" % (obj["kind"], meta["namespace"], meta["name"], reason)
            if pod:
                msg += "; pod %s: %s" % (pod["pod"], pod["reason"])
                if (pod.get("log_tail") or "").strip():
                    msg += "; log tail:\n" + pod["log_tail"]
            raise WaitFailed(msg, failed_pod=pod, last_status=last.get("status"), events=recent_events(client, last))
        if time.monotonic() >= deadline:
            events = recent_events(client, last)
            msg = "%s %s/%s not finished after %ss (conditions: %s)" % (
                obj["kind"],
                meta["namespace"],
                meta["name"],
                params["wait_timeout"],
                ", ".join("%s=%s" % (c.get("type"), c.get("status")) for c in (last.get("status") or {}).get("conditions") or []) or "none yet",
            )
            if events:
                msg += "; recent events: " + " | ".join(events)
            raise WaitTimeout(msg, last_status=last.get("status"), events=events)
        pause(interval)  # in a batch, the other elements poll meanwhile
        interval = min(interval * 2, 2.0)


def _engine(module, client):
    params = module.params
    return ApplyEngine(
        client, field_manager=params.get("field_manager") or FIELD_MANAGER, force_conflicts=params.get("force_conflicts", False), check_mode=module.check_mode
    )


def remember(module, client, result, main_obj, digest, obj):
    """Write what this run observed of the training object into its record (nothing when it already says so)."""
    state, reason = training_outcome(obj) if obj.get("status") else ("pending", None)
    if state in ("succeeded", "failed"):
        timings = training_timings(obj)
    else:
        # Only what cannot change while it runs, so that a re-run during training writes nothing.
        state, reason, timings = "running", None, {"start_time": (obj.get("metadata") or {}).get("creationTimestamp")}
    record = build_run_record(module.params, main_obj, digest, state, reason, timings)
    applied, diffs = _engine(module, client).apply_all([record], want_diff=bool(module._diff))
    entry = applied[0]
    entry.pop("object", None)
    # One entry for the record, however often this run wrote it (created, then its outcome).
    for earlier in [r for r in result["resources"] if (r["kind"], r["name"]) == (entry["kind"], entry["name"])]:
        result["resources"].remove(earlier)
        if earlier["changed"]:
            entry.update(changed=True, action="created" if earlier["action"] == "created" else "updated")
    result["resources"].append(entry)
    result["changed"] = result["changed"] or entry["changed"]
    if module._diff:
        result.setdefault("diff", []).extend(diffs)


def remembered_run(module, client, main_obj, digest):
    """The recorded run of this very spec whose training object is gone (garbage-collected after
    ttlSecondsAfterFinished, or deleted), else None."""
    params = module.params
    engine = _engine(module, client)
    record_rt = engine.resolver.resolve("v1", "ConfigMap")
    run = recorded_run(engine.get(record_rt, record_name(params["name"]), params["namespace"]), digest)
    if run is None:
        return None
    rt = engine.resolver.resolve(main_obj["apiVersion"], main_obj["kind"])
    if engine.get(rt, params["name"], params["namespace"]) is not None:
        return None
    return run


def report_remembered(module, main_obj, run):
    """The result of a run that is not repeated: what the record says, and how to train again."""
    params = module.params
    where = "ConfigMap %s/%s" % (params["namespace"], record_name(params["name"]))
    when = run["timings"].get("completion_time") or run["timings"].get("start_time") or "an earlier run"
    done = {
        "succeeded": "already completed at %s" % when,
        "failed": "already ran and failed at %s (%s)" % (when, run.get("reason")),
    }.get(run["state"], "already ran (started %s); the %s was removed before its outcome was seen" % (when, main_obj["kind"]))
    reason = "%s %s/%s %s (recorded in %s); set rerun: true to run it again" % (main_obj["kind"], params["namespace"], params["name"], done, where)
    if run["state"] == "failed" and params["wait"] and not module.check_mode:
        raise WaitFailed(reason, last_status=None)
    return {
        "changed": False,
        "resources": [],
        "training": {
            "kind": main_obj["kind"],
            "name": params["name"],
            "namespace": params["namespace"],
            "state": run["state"] if run["state"] in ("succeeded", "failed") else "finished",
            "reason": reason,
            "already_ran": True,
            "record": record_name(params["name"]),
            "status": {},
            "timings": dict(run["timings"], waited_seconds=None),
        },
    }


def clear_finished(module, client, main_obj):
    """rerun: remove a finished training object so that it can be created again; a running one is kept."""
    params = module.params
    engine = _engine(module, client)
    rt = engine.resolver.resolve(main_obj["apiVersion"], main_obj["kind"])
    current = engine.get(rt, params["name"], params["namespace"])
    if current is None or training_outcome(current)[0] == "running":
        return []
    results, _diffs = engine.delete_all([main_obj], propagation_policy="Foreground")
    if not module.check_mode:
        wait_for(client, rt, params["name"], params["namespace"], {"type": "deleted"}, timeout=params["wait_timeout"])
    return [r for r in results if r["changed"]]


def main():
    module = kube_module(
        ARGUMENT_SPEC,
        creates_namespaces=True,
        mutually_exclusive=[["script", "command"]], required_one_of=[["script", "command"]])
    params = module.params

    def body(client):
        objects = build_training_job(dict((k, params.get(k)) for k in BUILDER_KEYS))
        main_obj = main_object(objects)
        digest = spec_hash(objects)
        if params["state"] == "absent":
            record = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": record_name(params["name"]), "namespace": params["namespace"]}}
            return run_bundle(module, client, [record] + objects)
        rerun_results = []
        if params["rerun"]:
            rerun_results = clear_finished(module, client, main_obj)
        else:
            run = remembered_run(module, client, main_obj, digest)
            if run is not None:
                return report_remembered(module, main_obj, run)
        try:
            # The bundle's own waits are skipped: the training object is waited for below, with its outcome.
            result = run_bundle(module, client, objects, waits=dict((i, None) for i in range(len(objects))))
        except KubeError as exc:
            if exc.details.get("status") == 422 and "field is immutable" in exc.msg:
                # The server echoes the whole pod template; name the fields and the way out instead.
                fields = sorted(set(c.get("field") for c in exc.details.get("causes") or [] if "immutable" in (c.get("message") or "")))
                exc.msg = "%s %s/%s: %s cannot change once the job exists; delete it first (state: absent) or use a new name" % (
                    main_obj["kind"],
                    params["namespace"],
                    params["name"],
                    ", ".join(f for f in fields if f) or "its spec",
                )
                exc.details["causes"] = [{"field": f, "message": "field is immutable"} for f in fields]
            raise
        if rerun_results:
            result["changed"] = True
            result["removed"] = [dict((k, r[k]) for k in ("apiVersion", "kind", "name", "namespace")) for r in rerun_results]
        training = {"kind": main_obj["kind"], "name": params["name"], "namespace": params["namespace"], "already_ran": False}
        if params["backend"] == "job" and params["framework"] == "pytorch":
            training["rendezvous_endpoint"] = rendezvous_endpoint(params)
        last = result["resources"][-1].get("object") or {}
        waited = None
        finished = last.get("status") and training_outcome(last)[0] != "running"
        if not module.check_mode and not (params["wait"] and finished):
            # Recorded before the wait, so that a run cut short (task timeout, cancelled job) is remembered.
            remember(module, client, result, main_obj, digest, last)
        if params["wait"] and not module.check_mode:
            try:
                last, waited = wait_for_training(module, client, main_obj)
            except WaitFailed as exc:
                pod = exc.details.get("failed_pod")
                if pod and not (pod.get("log_tail") or "").strip():
                    pod["log_tail"] = None
                    exc.msg += " (log tail unavailable: the node's kubelet served no logs for the pod)"
                engine = _engine(module, client)
                failed = engine.get(engine.resolver.resolve(main_obj["apiVersion"], main_obj["kind"]), params["name"], params["namespace"])
                if failed is not None:
                    remember(module, client, result, main_obj, digest, failed)
                raise
            remember(module, client, result, main_obj, digest, last)
        state, reason = training_outcome(last) if last.get("status") else ("pending", None)
        training.update(state=state, reason=reason, status=last.get("status") or {})
        training["timings"] = training_timings(last) if last else {}
        training["timings"]["waited_seconds"] = round(waited, 1) if waited is not None else None
        training["record"] = record_name(params["name"])
        result["training"] = training
        return result

    execute(module, body)


if __name__ == "__main__":
    main()
