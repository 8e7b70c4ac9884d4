"""A second run sends no write, for every module that applies objects, with quantities and ints
written in forms the API server normalises (GPU count as an int, `cpu: 0.5`, `memory: 1024Mi`;
ports as strings where module options take them). The server, not the test, decides the
canonical form. (Raw manifests with a string in an integer field are rejected by the server.)"""

import pytest

from ansible_collections.aiinfra.cluster.plugins.modules.dcgm_exporter import operator_exporter

# The operators' CRDs (and charts) from ../shared: skipped on a plain clone (tests/conftest.py).
pytestmark = pytest.mark.upstream

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def run_twice(module_runner, name, args):
    first = module_runner(name, args)
    assert first.get("failed") is not True, first.get("msg")
    second = module_runner(name, args)
    assert second.get("failed") is not True, second.get("msg")
    writes = dict((verb, n) for verb, n in second["api_requests"].items() if verb in WRITES)
    assert second["changed"] is False and not writes, (second["changed"], writes, second["api_requests"])
    return first, second


def test_inference_service(module_runner, namespace):
    run_twice(
        module_runner,
        "inference_service",
        {
            "name": "m",
            "namespace": namespace,
            "model_format": {"name": "onnx"},
            "storage_uri": "s3://models/resnet50",
            "gpus": 1,
            "resources": {"requests": {"cpu": 0.5, "memory": "1024Mi"}, "limits": {"memory": "1024Mi"}},
            "transformer": {"image": "registry.example.com/t:1", "resources": {"requests": {"cpu": 0.25, "memory": "512Mi"}}},
            "wait": False,
        },
    )


def test_triton_server(module_runner, namespace, getter):
    run_twice(
        module_runner,
        "triton_server",
        {
            "name": "triton",
            "namespace": namespace,
            "model_repository": "s3://models/triton",
            "gpus": 1,
            "replicas": 1,
            "resources": {"requests": {"cpu": 0.5, "memory": "1024Mi"}, "limits": {"memory": "2048Mi"}},
            "shm_size": "1024Mi",
            "monitoring": "none",
            "wait": False,
        },
    )
    # The server did normalise what it was sent, so the comparison had work to do.
    container = getter("apps/v1", "Deployment", "triton", namespace)["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}


def test_fluid_dataset(module_runner, namespace):
    run_twice(
        module_runner,
        "fluid_dataset",
        {
            "name": "imagenet",
            "namespace": namespace,
            "mounts": [{"mount_point": "s3://imagenet/train/", "name": "train"}],
            "replicas": 2,
            "tiered_store": [{"medium": "MEM", "path": "/dev/shm", "quota": "4096Mi", "high": "0.95", "low": "0.7"}],
            "wait": False,
        },
    )


def test_data_version(module_runner, namespace):
    run_twice(
        module_runner,
        "data_version",
        {
            "name": "subset",
            "namespace": namespace,
            "repo_url": "https://github.com/example/data-registry",
            "revision": "v1",
            "path": "datasets/subset",
            "pvc": {"name": "training-data"},
            "resources": {"requests": {"cpu": 0.5, "memory": "512Mi"}, "limits": {"memory": "0.5Gi"}},
            "wait": False,
        },
    )


def test_training_job(module_runner, namespace, getter):
    run_twice(
        module_runner,
        "training_job",
        {
            "name": "ddp",
            "namespace": namespace,
            "script": "/workspace/train.py",
            "nodes": 1,
            "gpus_per_node": 1,
            "cpu": "0.5",
            "memory": "1024Mi",
            "shm_size": "1024Mi",
            "rdzv_port": "29400",
            "wait": False,
        },
    )
    pod = getter("batch/v1", "Job", "ddp", namespace)["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_dcgm_exporter(module_runner, kube, namespace, nvidia_runtime_class):
    run_twice(
        module_runner,
        "dcgm_exporter",
        {
            "namespace": namespace,
            "resources": {"requests": {"cpu": 0.1, "memory": "128Mi"}, "limits": {"memory": "0.25Gi"}},
            "on_gpu_operator": "deploy" if operator_exporter(kube) else "fail",
            "wait": False,
        },
    )


def test_tensorboard(module_runner, namespace):
    run_twice(
        module_runner,
        "tensorboard",
        {
            "name": "tb",
            "namespace": namespace,
            "log_dir_uri": "gs://ml-runs/resnet",
            "resources": {"requests": {"cpu": 0.25, "memory": "1024Mi"}, "limits": {"memory": "2048Mi"}},
            "wait": False,
        },
    )


def test_istio_policy(module_runner, namespace):
    run_twice(
        module_runner,
        "istio_policy",
        {
            "name": "triton",
            "namespace": namespace,
            "selector": {"app": "triton"},
            "peer_authentication": {"mode": "STRICT", "port_level_mtls": {8002: "PERMISSIVE"}},
            "authorization": {"action": "ALLOW", "rules": [{"service_accounts": ["ml-serving/scraper"], "ports": [8002, "8000"]}]},
        },
    )


@pytest.mark.parametrize("wait", [False, True])
def test_resources(module_runner, namespace, wait):
    container = {
        "name": "web",
        "image": "registry.local/web:1",
        "ports": [{"containerPort": 8080, "name": "http"}],
        "resources": {"requests": {"cpu": 0.5, "memory": "1024Mi"}, "limits": {"nvidia.com/gpu": 1, "memory": "1.5Gi"}},
    }
    definitions = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "gpus", "namespace": namespace},
            "spec": {"hard": {"requests.nvidia.com/gpu": 16, "requests.cpu": 64.5, "limits.memory": "2048Gi"}},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": namespace},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}}},
        },
    ]
    run_twice(module_runner, "resources", {"definitions": definitions, "wait": wait, "wait_timeout": 60})
