"""Unit tests for the training builders: params -> manifests, no cluster."""

import json
import re

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError
from ansible_collections.aiinfra.cluster.plugins.module_utils.training_builder import (
    build_run_record,
    build_training_job,
    main_object,
    recorded_run,
    spec_hash,
    training_outcome,
    training_timings,
)


def by_kind(objects):
    return dict((o["kind"], o) for o in objects)


def env_of(container):
    return dict((e["name"], e.get("value", e.get("valueFrom"))) for e in container.get("env") or [])


def expand(value, env):
    """What the kubelet does with $(VAR) references in env values and commands."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: str(env.get(m.group(1), m.group(0))), value)


BASE = {"name": "resnet", "namespace": "ml", "script": "/w/train.py", "args": ["--epochs", "2"]}


def test_pytorch_job_is_indexed_job_with_headless_service_and_c10d_rendezvous():
    objs = build_training_job(dict(BASE, nodes=2, gpus_per_node=8, gpu_product="NVIDIA-H100-80GB-HBM3", priority_class_name="gpu-training"))
    assert [o["kind"] for o in objs] == ["Service", "Job"]
    svc, job = objs
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["metadata"]["name"] == "resnet"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == 2
    assert spec["backoffLimit"] == 0 and spec["ttlSecondsAfterFinished"] == 86400
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == "resnet" and pod["restartPolicy"] == "Never"
    # The Service selects the pods.
    labels = spec["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pod["priorityClassName"] == "gpu-training"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    (ctr,) = pod["containers"]
    assert ctr["resources"]["limits"]["nvidia.com/gpu"] == "8"
    cmd = ctr["command"]
    assert cmd[0] == "torchrun"
    assert "--nnodes=2" in cmd and "--nproc-per-node=8" in cmd and "--rdzv-backend=c10d" in cmd
    assert "--rdzv-endpoint=resnet-0.resnet:29400" in cmd and "--node-rank=$(NODE_RANK)" in cmd
    assert cmd[-3:] == ["/w/train.py", "--epochs", "2"]
    env = env_of(ctr)
    assert env["NODE_RANK"] == {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}
    assert env["WORLD_SIZE"] == "16" and env["MASTER_ADDR"] == "resnet-0.resnet" and env["NNODES"] == "2"
    shm = [v for v in pod["volumes"] if v["name"] == "dshm"][0]
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in ctr["volumeMounts"]


def test_volumes_data_from_fluid_dataset_checkpoint_and_logs_share_a_claim():
    objs = build_training_job(
        dict(BASE, data={"dataset": "imagenet"}, checkpoint={"claim_name": "ckpt"}, log_dir={"claim_name": "ckpt", "sub_path": "tb"}, shm_size="0")
    )
    pod = objs[-1]["spec"]["template"]["spec"]
    claims = [v["persistentVolumeClaim"] for v in pod["volumes"]]
    assert claims == [{"claimName": "imagenet", "readOnly": True}, {"claimName": "ckpt", "readOnly": False}]
    ctr = pod["containers"][0]
    mounts = dict((m["mountPath"], m) for m in ctr["volumeMounts"])
    assert mounts["/data"]["readOnly"] is True and mounts["/logs"]["subPath"] == "tb"
    assert "/dev/shm" not in mounts
    env = env_of(ctr)
    assert env["DATA_DIR"] == "/data" and env["CHECKPOINT_DIR"] == "/checkpoints" and env["TENSORBOARD_LOG_DIR"] == "/logs"


def test_elastic_runs_max_pods_with_min_max_nnodes():
    job = build_training_job(dict(BASE, nodes=4, gpus_per_node=8, elastic={"min_nodes": 2, "max_nodes": 4, "max_restarts": 5}))[-1]
    assert job["spec"]["completions"] == 4
    cmd = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--nnodes=2:4" in cmd and "--max-restarts=5" in cmd


def test_tensorflow_mwms_tf_config_per_index_is_valid_json():
    objs = build_training_job(dict(BASE, framework="tensorflow", nodes=3, gpus_per_node=4))
    svc, job = objs
    ctr = job["spec"]["template"]["spec"]["containers"][0]
    assert ctr["command"][:2] == ["python", "/w/train.py"]
    env = env_of(ctr)
    for index in range(3):
        tf_config = json.loads(expand(env["TF_CONFIG"], {"TF_TASK_INDEX": index}))
        assert tf_config == {
            "cluster": {"worker": ["resnet-0.resnet:2222", "resnet-1.resnet:2222", "resnet-2.resnet:2222"]},
            "task": {"type": "worker", "index": index},
        }
    assert svc["spec"]["ports"][0]["port"] == 2222


def test_tensorflow_parameter_server_jobset_succeeds_on_workers_only():
    js = build_training_job(dict(BASE, framework="tensorflow", strategy="parameter_server", backend="jobset", nodes=2, ps_replicas=2, gpus_per_node=1))[0]
    assert js["kind"] == "JobSet"
    assert js["spec"]["successPolicy"] == {"operator": "All", "targetReplicatedJobs": ["chief", "worker"]}
    assert js["spec"]["network"]["enableDNSHostnames"] is True
    rjobs = dict((r["name"], r) for r in js["spec"]["replicatedJobs"])
    assert set(rjobs) == {"chief", "ps", "worker"}
    ps_ctr = rjobs["ps"]["template"]["spec"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in (ps_ctr.get("resources") or {}).get("limits", {})
    env = env_of(rjobs["ps"]["template"]["spec"]["template"]["spec"]["containers"][0])
    tf_config = json.loads(expand(env["TF_CONFIG"], {"TF_TASK_INDEX": 1}))
    assert tf_config["task"] == {"type": "ps", "index": 1}
    assert tf_config["cluster"]["ps"] == ["resnet-ps-0-0.resnet:2222", "resnet-ps-0-1.resnet:2222"]
    assert tf_config["cluster"]["chief"] == ["resnet-chief-0-0.resnet:2222"]


def test_tfjob_and_pytorchjob_and_trainjob_shapes():
    tfjob = build_training_job(dict(BASE, framework="tensorflow", strategy="parameter_server", backend="tfjob", nodes=2, ps_replicas=1))[0]
    assert set(tfjob["spec"]["tfReplicaSpecs"]) == {"Chief", "PS", "Worker"}
    assert tfjob["spec"]["successPolicy"] == "AllWorkers"
    assert tfjob["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["name"] == "tensorflow"
    ptj = build_training_job(dict(BASE, backend="pytorchjob", nodes=3, gpus_per_node=8))[0]
    assert ptj["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] == 1
    assert ptj["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 2
    assert ptj["spec"]["nprocPerNode"] == "8"
    assert ptj["spec"]["runPolicy"]["ttlSecondsAfterFinished"] == 86400
    tj = build_training_job(dict(BASE, backend="trainjob", nodes=2, gpus_per_node=8, checkpoint={"claim_name": "ckpt"}))[0]
    assert tj["spec"]["trainer"]["numNodes"] == 2 and tj["spec"]["trainer"]["numProcPerNode"] == 8
    assert tj["spec"]["trainer"]["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "8"
    patch = tj["spec"]["runtimePatches"][0]
    assert patch["manager"] == "aiinfra.cluster/training-job"  # the Trainer's webhook wants a domain-prefixed path
    node = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
    assert node["name"] == "node"
    # The Trainer's webhook refuses env in a runtime patch: the checkpoint env is the trainer's.
    assert all("env" not in c for c in node["template"]["spec"]["template"]["spec"]["containers"])
    assert tj["spec"]["trainer"]["env"]


@pytest.mark.parametrize(
    "extra, words",
    [
        ({"backend": "tfjob"}, "backend"),
        ({"framework": "tensorflow", "backend": "pytorchjob"}, "backend"),
        ({"framework": "tensorflow", "strategy": "parameter_server", "ps_replicas": 1}, "parameter_server"),
        ({"framework": "tensorflow", "strategy": "parameter_server", "backend": "jobset"}, "ps_replicas"),
        ({"elastic": {"min_nodes": 3, "max_nodes": 2}}, "elastic"),
        ({"framework": "tensorflow", "elastic": {"min_nodes": 1}}, "elastic"),
        ({"name": "Bad_Name"}, "name"),
        ({"nodes": 0}, "nodes"),
        ({"data": {"claim_name": "a", "dataset": "b"}}, "data"),
        ({"script": None}, "script"),
        ({"backend": "trainjob", "priority_class_name": "x"}, "priority_class_name"),
    ],
)
def test_bad_input_fails_naming_the_option(extra, words):
    with pytest.raises(InputError) as err:
        build_training_job(dict(BASE, **extra))
    assert words in err.value.msg


def test_outcome_and_timings():
    job = {
        "kind": "Job",
        "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {
            "startTime": "2026-01-01T00:00:01Z",
            "completionTime": "2026-01-01T00:01:01Z",
            "conditions": [{"type": "Complete", "status": "True", "reason": "CompletionsReached"}],
        },
    }
    assert training_outcome(job) == ("succeeded", "CompletionsReached")
    assert training_timings(job)["duration_seconds"] == 60
    failed = {
        "kind": "PyTorchJob",
        "status": {"conditions": [{"type": "Running", "status": "False"}, {"type": "Failed", "status": "True", "reason": "X", "message": "m"}]},
    }
    assert training_outcome(failed) == ("failed", "X: m")
    assert training_outcome({"kind": "JobSet", "status": {}}) == ("running", None)


def test_spec_hash_names_the_run_not_the_call():
    objs = build_training_job(dict(BASE, nodes=2))
    assert spec_hash(build_training_job(dict(BASE, nodes=2))) == spec_hash(objs)
    assert spec_hash(build_training_job(dict(BASE, nodes=3))) != spec_hash(objs)
    assert spec_hash(build_training_job(dict(BASE, nodes=2, args=["--epochs", "3"]))) != spec_hash(objs)


def test_run_record_outlives_the_job_and_is_read_back_for_its_spec_only():
    params = dict(BASE, nodes=2)
    objs = build_training_job(params)
    digest = spec_hash(objs)
    timings = {"start_time": "2026-11-29T23:49:58Z", "completion_time": "2026-11-29T23:50:11Z", "duration_seconds": 13, "waited_seconds": 3.2}
    record = build_run_record(params, main_object(objs), digest, "succeeded", "CompletionsReached", timings)
    assert record["kind"] == "ConfigMap" and record["metadata"]["name"] == "resnet-training-record"
    assert record["metadata"]["namespace"] == "ml"
    assert record["metadata"]["labels"]["aiinfra.cluster/training-record"] == "true"
    assert "ownerReferences" not in record["metadata"], "an owner would take the record with the Job"
    assert all(isinstance(v, str) for v in record["data"].values())
    assert record["data"]["spec-hash"] == digest and record["data"]["kind"] == "Job"
    run = recorded_run(record, digest)
    assert run["state"] == "succeeded" and run["reason"] == "CompletionsReached"
    assert run["timings"] == {"start_time": "2026-11-29T23:49:58Z", "completion_time": "2026-11-29T23:50:11Z", "duration_seconds": 13}
    assert recorded_run(record, spec_hash(build_training_job(dict(params, nodes=3)))) is None
    assert recorded_run(None, digest) is None
