"""fluid_dataset and data_version against the local control plane (real Fluid CRDs; Jobs run on
KWOK nodes, which complete the pods of Jobs)."""

import base64
import threading
import time

import pytest

# The operators' CRDs (and charts) from ../shared: skipped on a plain clone (tests/conftest.py).
pytestmark = pytest.mark.upstream

DATASET = ("data.fluid.io/v1alpha1", "Dataset")
ALLUXIO = ("data.fluid.io/v1alpha1", "AlluxioRuntime")
JUICEFS = ("data.fluid.io/v1alpha1", "JuiceFSRuntime")
DATALOAD = ("data.fluid.io/v1alpha1", "DataLoad")
SECRET_VALUE = "s3cr3t-value-never-logged"


def dataset_args(namespace, **extra):
    args = {
        "name": "imagenet",
        "namespace": namespace,
        "mounts": [
            {
                "mount_point": "s3://imagenet/train/",
                "name": "train",
                "options": {"alluxio.underfs.s3.endpoint": "http://minio.storage:9000", "alluxio.underfs.s3.disable.dns.buckets": "true"},
            }
        ],
        "credentials": {"aws.accessKeyId": "AKIAEXAMPLE", "aws.secretKey": SECRET_VALUE},
        "replicas": 2,
        "tiered_store": [{"medium": "MEM", "path": "/dev/shm", "quota": "4Gi", "high": "0.95", "low": "0.7"}],
        "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        "dataload": {"enabled": True, "paths": ["/train"]},
        "wait": False,
    }
    args.update(extra)
    return args


def test_fluid_dataset_lifecycle(module_runner, namespace, getter):
    res = module_runner("fluid_dataset", dataset_args(namespace), check_mode=True)
    assert res["changed"] is True, res
    assert getter(*DATASET, "imagenet", namespace) is None
    assert getter("v1", "Secret", "imagenet-fluid-credentials", namespace) is None

    res = module_runner("fluid_dataset", dataset_args(namespace), diff=True)
    assert res.get("failed") is not True, res
    assert [r["kind"] for r in res["resources"]] == ["Secret", "Dataset", "AlluxioRuntime", "DataLoad"]
    assert SECRET_VALUE not in str(res), "secret value leaked into the result"
    assert base64.b64encode(SECRET_VALUE.encode()).decode() not in str(res), "secret value leaked (base64) into the result or diff"
    secret_diff = [d for d in res["diff"] if d["after_header"].startswith("Secret ")][0]
    assert secret_diff["after"]["data"] == {"aws.accessKeyId": "(hidden)", "aws.secretKey": "(hidden)"}
    assert res["pvc_name"] == "imagenet"

    secret = getter("v1", "Secret", "imagenet-fluid-credentials", namespace)
    assert base64.b64decode(secret["data"]["aws.secretKey"]).decode() == SECRET_VALUE
    ds = getter(*DATASET, "imagenet", namespace)
    mount = ds["spec"]["mounts"][0]
    assert "aws.secretKey" not in mount.get("options", {})
    assert {e["name"]: e["valueFrom"]["secretKeyRef"] for e in mount["encryptOptions"]} == {
        "aws.accessKeyId": {"name": "imagenet-fluid-credentials", "key": "aws.accessKeyId"},
        "aws.secretKey": {"name": "imagenet-fluid-credentials", "key": "aws.secretKey"},
    }
    expr = ds["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert expr == {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-H100-80GB-HBM3"]}
    runtime = getter(*ALLUXIO, "imagenet", namespace)
    assert runtime["spec"]["replicas"] == 2
    assert runtime["spec"]["tieredstore"]["levels"][0]["mediumtype"] == "MEM"
    load = getter(*DATALOAD, res["dataload_name"], namespace)
    assert res["dataload_name"].startswith("imagenet-warmup-")
    assert load["spec"]["dataset"] == {"name": "imagenet", "namespace": namespace}
    assert load["spec"]["target"] == [{"path": "/train"}]

    load_name = res["dataload_name"]
    res = module_runner("fluid_dataset", dataset_args(namespace))
    assert res["changed"] is False, res
    assert "PATCH" not in res["api_requests"] and "DELETE" not in res["api_requests"], res["api_requests"]

    credentials = {"aws.accessKeyId": "AKIAEXAMPLE", "aws.secretKey": "rotated"}
    res = module_runner("fluid_dataset", dataset_args(namespace, replicas=3, credentials=credentials), diff=True)
    assert res.get("changed") is True, res.get("msg")
    assert base64.b64encode(SECRET_VALUE.encode()).decode() not in str(res["diff"])
    assert getter(*ALLUXIO, "imagenet", namespace)["spec"]["replicas"] == 3
    assert base64.b64decode(getter("v1", "Secret", "imagenet-fluid-credentials", namespace)["data"]["aws.secretKey"]) == b"rotated"

    absent = {"name": "imagenet", "namespace": namespace, "credentials": {"aws.secretKey": "x"}, "state": "absent", "wait_timeout": 30}
    res = module_runner("fluid_dataset", absent, diff=True)
    assert res["changed"] is True, res
    assert base64.b64encode(b"rotated").decode() not in str(res["diff"])
    for kind in (DATASET, ALLUXIO):
        assert getter(*kind, "imagenet", namespace) is None
    assert getter(*DATALOAD, load_name, namespace) is None
    assert getter("v1", "Secret", "imagenet-fluid-credentials", namespace) is None
    assert module_runner("fluid_dataset", absent)["changed"] is False


def dataloads(kube, namespace):
    return sorted(d["metadata"]["name"] for d in kube.get("/apis/data.fluid.io/v1alpha1/namespaces/%s/dataloads" % namespace)["items"])


def test_changed_dataload_is_a_new_dataload_and_the_old_one_goes(module_runner, namespace, kube, status_patcher):
    # A DataLoad of the fixed name that releases before 1.1.0 created, finished as Fluid leaves it.
    legacy = {
        "apiVersion": "data.fluid.io/v1alpha1",
        "kind": "DataLoad",
        "metadata": {"name": "imagenet-warmup", "labels": {"app.kubernetes.io/managed-by": "aiinfra.cluster"}},
        "spec": {"dataset": {"name": "imagenet", "namespace": namespace}, "loadMetadata": True, "target": [{"path": "/train"}]},
    }
    kube.request("POST", "/apis/data.fluid.io/v1alpha1/namespaces/%s/dataloads" % namespace, body=legacy)
    first = module_runner("fluid_dataset", dataset_args(namespace))
    assert first.get("failed") is not True, first
    assert first["removed_dataloads"] == ["imagenet-warmup"]
    assert dataloads(kube, namespace) == [first["dataload_name"]]
    status_patcher(*DATALOAD, first["dataload_name"], namespace, {"phase": "Complete", "conditions": [], "duration": "12s"})

    changed = module_runner("fluid_dataset", dataset_args(namespace, dataload={"enabled": True, "paths": ["/train", "/val"]}), diff=True)
    assert changed.get("failed") is not True, changed
    assert changed["changed"] is True
    new = changed["dataload_name"]
    assert new != first["dataload_name"] and new.startswith("imagenet-warmup-")
    created = [r for r in changed["resources"] if r["kind"] == "DataLoad" and r["action"] == "created"]
    assert [r["name"] for r in created] == [new], "a new DataLoad, not a patch of the finished one"
    assert changed["removed_dataloads"] == [first["dataload_name"]]
    deadline = time.time() + 20
    while time.time() < deadline and len(dataloads(kube, namespace)) > 1:
        time.sleep(0.2)
    assert dataloads(kube, namespace) == [new]
    assert kube.get("/apis/data.fluid.io/v1alpha1/namespaces/%s/dataloads/%s" % (namespace, new))["spec"]["target"] == [{"path": "/train"}, {"path": "/val"}]

    same = module_runner("fluid_dataset", dataset_args(namespace, dataload={"enabled": True, "paths": ["/train", "/val"]}))
    assert same["changed"] is False and same["removed_dataloads"] == [], same

    off = module_runner("fluid_dataset", dataset_args(namespace, dataload={"enabled": False}))
    assert off["changed"] is True and off["removed_dataloads"] == [new]
    deadline = time.time() + 20
    while time.time() < deadline and dataloads(kube, namespace):
        time.sleep(0.2)
    assert dataloads(kube, namespace) == []


def runtime_status(master, worker, fuse="Ready", workers=2):
    """An AlluxioRuntime status as Fluid's controller writes it (the schema requires the counters)."""
    ready = workers if worker == "Ready" else 0
    return {
        "masterPhase": master, "workerPhase": worker, "fusePhase": fuse, "valueFile": "imagenet-alluxio-values",
        "currentMasterNumberScheduled": 1, "desiredMasterNumberScheduled": 1, "masterNumberReady": 1 if master == "Ready" else 0,
        "currentWorkerNumberScheduled": workers, "desiredWorkerNumberScheduled": workers, "workerNumberReady": ready,
        "currentFuseNumberScheduled": 0, "desiredFuseNumberScheduled": 0, "fuseNumberReady": 0,
    }


def test_fluid_dataset_waits_for_bound_and_runtime(module_runner, namespace, status_patcher):
    args = dataset_args(namespace, dataload={"enabled": False})
    module_runner("fluid_dataset", args)
    status_patcher(*ALLUXIO, "imagenet", namespace, runtime_status("Ready", "NotReady"))
    status_patcher(*DATASET, "imagenet", namespace, {"phase": "NotBound", "conditions": []})
    res = module_runner("fluid_dataset", dict(args, wait=True, wait_timeout=2))
    assert res.get("failed") is True
    assert "Dataset %s/imagenet not ready after 2s: status.phase is 'NotBound'" % namespace in res["msg"], res["msg"]
    assert res["last_status"]["phase"] == "NotBound"

    status_patcher(*DATASET, "imagenet", namespace, {"phase": "Bound", "conditions": []})
    res = module_runner("fluid_dataset", dict(args, wait=True, wait_timeout=2))
    assert res.get("failed") is True
    assert "AlluxioRuntime %s/imagenet not ready after 2s: status.workerPhase is 'NotReady'" % namespace in res["msg"], res["msg"]

    # Set status the way Fluid's controllers do: runtime Ready, then the Dataset Bound.
    status_patcher(*ALLUXIO, "imagenet", namespace, runtime_status("Ready", "Ready"))
    res = module_runner("fluid_dataset", dict(args, wait=True, wait_timeout=20))
    assert res.get("failed") is not True, res
    assert res["changed"] is False
    assert res["phase"] == "Bound"
    assert res["pvc_name"] == "imagenet"
    assert res["runtime_status"] == {"masterPhase": "Ready", "workerPhase": "Ready", "fusePhase": "Ready"}


def test_fluid_juicefs_runtime(module_runner, namespace, getter):
    args = {
        "name": "features",
        "namespace": namespace,
        "runtime": "juicefs",
        "secret_name": "juicefs-secret",
        "mounts": [
            {
                "mount_point": "juicefs:///features",
                "options": {"bucket": "http://minio.storage:9000/juicefs", "storage": "minio"},
                "encrypt_options": [{"name": "metaurl"}, {"name": "access-key"}, {"name": "secret-key"}],
            }
        ],
        "tiered_store": [{"medium": "SSD", "path": "/var/cache/juicefs", "quota": "40Gi", "low": "0.1"}],
        "wait": False,
    }
    res = module_runner("fluid_dataset", args)
    assert res.get("failed") is not True, res
    assert [r["kind"] for r in res["resources"]] == ["Dataset", "JuiceFSRuntime"]
    refs = [e["valueFrom"]["secretKeyRef"] for e in getter(*DATASET, "features", namespace)["spec"]["mounts"][0]["encryptOptions"]]
    assert refs[0] == {"name": "juicefs-secret", "key": "metaurl"}
    assert getter(*JUICEFS, "features", namespace)["spec"]["tieredstore"]["levels"][0]["mediumtype"] == "SSD"
    assert module_runner("fluid_dataset", args)["changed"] is False


def test_fluid_check_mode_reports_server_validation(module_runner, namespace, getter):
    args = dataset_args(namespace, tiered_store=[{"medium": "MEM", "path": "/dev/shm", "quota": "lots"}])
    res = module_runner("fluid_dataset", args, check_mode=True)
    assert res.get("failed") is True
    assert "rejected by the API server" in res["msg"] and "quota" in res["msg"], res["msg"]
    assert getter(*DATASET, "imagenet", namespace) is None


@pytest.mark.parametrize(
    "extra, words",
    [
        (
            {"mounts": [{"mount_point": "s3://b/", "options": {"aws.secretKey": SECRET_VALUE}}]},
            ["mounts[0].options.aws.secretKey", "Secret", "encrypt_options"],
        ),
        ({"mounts": [{"mount_point": "s3://b/", "optoins": {}}]}, ["optoins"]),
        ({"replicas": -1}, ["replicas"]),
        ({"runtime": "juicefs", "mounts": [{"mount_point": "juicefs:///x", "encrypt_options": [{"name": "access-key"}]}]}, ["metaurl"]),
        ({"mounts": []}, ["mounts"]),
    ],
)
def test_fluid_bad_input(module_runner, namespace, getter, extra, words):
    res = module_runner("fluid_dataset", dataset_args(namespace, **extra))
    assert res.get("failed") is True, res
    for word in words:
        assert word in res["msg"], res["msg"]
    assert not res.get("api_requests"), "bad input must fail before any request: %s" % res.get("api_requests")
    assert SECRET_VALUE not in str(res)
    assert getter(*DATASET, "imagenet", namespace) is None


# DVC ------------------------------------------------------------------------------------
@pytest.fixture
def data_pvc(kube, namespace):
    """A PVC bound to a hostPath PV (the local control plane has no provisioner)."""
    pv_name = "pv-%s" % namespace
    kube.request(
        "POST",
        "/api/v1/persistentvolumes",
        body={
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv_name},
            "spec": {
                "capacity": {"storage": "10Gi"},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "hostPath": {"path": "/tmp/%s" % pv_name},
                "claimRef": {"namespace": namespace, "name": "training-data"},
            },
        },
    )
    kube.request(
        "POST",
        "/api/v1/namespaces/%s/persistentvolumeclaims" % namespace,
        body={
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "training-data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": pv_name, "resources": {"requests": {"storage": "10Gi"}}},
        },
    )
    yield "training-data"
    kube.delete("/api/v1/persistentvolumes/%s" % pv_name)


def dvc_args(namespace, **extra):
    args = {
        "name": "imagenet-subset",
        "namespace": namespace,
        "repo_url": "https://github.com/example/data-registry",
        "revision": "v2.1.0",
        "path": "datasets/imagenet-subset",
        "remote": "storage",
        "remote_config": {"endpointurl": "http://minio.storage:9000"},
        "credentials_secret": "dvc-s3",
        "pvc": {"name": "training-data"},
        "wait_timeout": 60,
    }
    args.update(extra)
    return args


def jobs(kube, namespace):
    return kube.get("/apis/batch/v1/namespaces/%s/jobs" % namespace, query={"labelSelector": "aiinfra.cluster/data-version=imagenet-subset"})["items"]


def test_data_version_lifecycle(module_runner, namespace, kube, data_pvc):
    res = module_runner("data_version", dvc_args(namespace), check_mode=True)
    assert res["changed"] is True, res
    assert jobs(kube, namespace) == []

    res = module_runner("data_version", dvc_args(namespace))
    assert res.get("failed") is not True, res
    assert res["changed"] is True
    job = kube.get("/apis/batch/v1/namespaces/%s/jobs/%s" % (namespace, res["job_name"]))
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"])
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == [
        "--rev", "v2.1.0", "--remote", "storage", "--remote-config", "endpointurl=http://minio.storage:9000",
        "https://github.com/example/data-registry", "datasets/imagenet-subset",
    ]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["DVC_VERSION"] == "3.67.1" and env["OUT_DIR"] == "/data/imagenet-subset"
    assert container["envFrom"] == [{"secretRef": {"name": "dvc-s3"}}]
    assert job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == data_pvc
    first = res["job_name"]

    # Same revision: the same completed Job, nothing sent.
    res = module_runner("data_version", dvc_args(namespace))
    assert res["changed"] is False, res
    assert res["job_name"] == first
    assert "PATCH" not in res["api_requests"] and "POST" not in res["api_requests"]

    # New revision: a new Job; the old one is removed after the new one succeeded.
    res = module_runner("data_version", dvc_args(namespace, revision="v2.2.0"))
    assert res.get("failed") is not True, res
    assert res["changed"] is True and res["job_name"] != first
    assert res["removed_jobs"] == [first]
    deadline = time.time() + 20
    while time.time() < deadline and len(jobs(kube, namespace)) > 1:
        time.sleep(0.5)
    assert [j["metadata"]["name"] for j in jobs(kube, namespace)] == [res["job_name"]]

    res = module_runner("data_version", {"name": "imagenet-subset", "namespace": namespace, "state": "absent"})
    assert res["changed"] is True
    assert jobs(kube, namespace) == []
    assert kube.get("/api/v1/namespaces/%s/persistentvolumeclaims/%s" % (namespace, data_pvc))  # data is kept
    assert module_runner("data_version", {"name": "imagenet-subset", "namespace": namespace, "state": "absent"})["changed"] is False


def test_data_version_without_wait_removes_other_revisions_jobs(module_runner, namespace, kube, data_pvc):
    first = module_runner("data_version", dvc_args(namespace, wait=False))
    assert first.get("failed") is not True, first
    second = module_runner("data_version", dvc_args(namespace, revision="v2.2.0", wait=False, ttl_seconds_after_finished=600))
    assert second.get("failed") is not True, second
    assert second["removed_jobs"] == [first["job_name"]]
    deadline = time.time() + 20
    while time.time() < deadline and len(jobs(kube, namespace)) > 1:
        time.sleep(0.5)
    [job] = jobs(kube, namespace)
    assert job["metadata"]["name"] == second["job_name"]
    assert job["spec"]["ttlSecondsAfterFinished"] == 600


def test_data_version_fails_fast_with_pod_reason(module_runner, namespace, kube):
    """The claim does not exist, so the pod stays Pending; we fail it the way a kubelet reports
    a failed container, and the module must stop at once with the pod's reason."""
    args = dvc_args(namespace, pvc={"name": "missing-claim"}, backoff_limit=0, wait_timeout=60)
    result = {}
    runner = threading.Thread(target=lambda: result.update(module_runner("data_version", args)))
    started = time.time()
    runner.start()
    pod = None
    while time.time() - started < 30 and pod is None:
        items = kube.get("/api/v1/namespaces/%s/pods" % namespace, query={"labelSelector": "aiinfra.cluster/data-version=imagenet-subset"})["items"]
        pod = items[0] if items else None
        time.sleep(0.3)
    assert pod is not None, "the Job created no pod"
    kube.request(
        "PATCH",
        "/api/v1/namespaces/%s/pods/%s/status" % (namespace, pod["metadata"]["name"]),
        body={
            "status": {
                "phase": "Failed",
                "containerStatuses": [
                    {
                        "name": "dvc",
                        "image": "python:3.12-slim",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": "ERROR: unexpected error - revision v2.1.0 not found"}},
                    }
                ],
            }
        },
        content_type="application/merge-patch+json",
    )
    runner.join(60)
    assert result.get("failed") is True, result
    assert time.time() - started < 45, "did not fail fast"
    assert "failed" in result["msg"] and "BackoffLimitExceeded" in result["msg"], result["msg"]
    assert "revision v2.1.0 not found" in result["msg"], result["msg"]
    assert result["failed_pod"]["pod"] == pod["metadata"]["name"]


@pytest.mark.parametrize(
    "extra, words",
    [
        ({"repo_url": "https://user:ghp_token@github.com/example/data-registry"}, ["repo_url", "Secret"]),
        ({"remote_config": {"secret_access_key": "x"}}, ["remote_config.secret_access_key", "Secret"]),
        ({"backoff_limit": -1}, ["backoff_limit", "negative"]),
        ({"revision": ""}, ["revision"]),
    ],
)
def test_data_version_bad_input(module_runner, namespace, kube, extra, words):
    res = module_runner("data_version", dvc_args(namespace, **extra))
    assert res.get("failed") is True, res
    for word in words:
        assert word in res["msg"], res["msg"]
    assert not res.get("api_requests"), "bad input must fail before any request: %s" % res.get("api_requests")
    assert "ghp_token" not in res["msg"]
    assert jobs(kube, namespace) == []
