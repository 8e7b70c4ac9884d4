import base64
import re

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.data_builder import (
    build_data_version,
    build_fluid_dataset,
    fluid_dataset_ref_objects,
    looks_secret,
    runtime_waits,
    superseded_dataloads,
)
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError


def dataset(**extra):
    params = {
        "name": "imagenet", "namespace": "data",
        "mounts": [{"mount_point": "s3://imagenet/", "options": {"alluxio.underfs.s3.endpoint": "http://minio:9000"}}],
    }
    params.update(extra)
    return build_fluid_dataset(params)


def test_dataset_and_alluxio_runtime_share_the_name():
    ds, runtime = dataset()
    assert (ds["kind"], runtime["kind"]) == ("Dataset", "AlluxioRuntime")
    assert ds["metadata"]["name"] == runtime["metadata"]["name"] == "imagenet"
    assert ds["spec"]["mounts"] == [{"mountPoint": "s3://imagenet/", "options": {"alluxio.underfs.s3.endpoint": "http://minio:9000"}}]
    assert runtime["spec"] == {
        "replicas": 1,
        "tieredstore": {"levels": [
            {"mediumtype": "MEM", "path": "/dev/shm", "quota": "2Gi", "high": "0.95", "low": "0.7", "volumeType": "hostPath", "volumeSource": {}},
        ]},
    }


def test_credentials_become_a_secret_and_encrypt_options():
    secret, ds, _runtime = dataset(credentials={"aws.accessKeyId": "AK", "aws.secretKey": "SK"})
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "imagenet-fluid-credentials"
    assert base64.b64decode(secret["data"]["aws.secretKey"]) == b"SK"
    assert "stringData" not in secret
    assert ds["spec"]["mounts"][0]["encryptOptions"] == [
        {"name": "aws.accessKeyId", "valueFrom": {"secretKeyRef": {"name": "imagenet-fluid-credentials", "key": "aws.accessKeyId"}}},
        {"name": "aws.secretKey", "valueFrom": {"secretKeyRef": {"name": "imagenet-fluid-credentials", "key": "aws.secretKey"}}},
    ]
    assert "SK" not in str(ds)


def test_existing_secret_reference_with_other_key():
    ds = dataset(secret_name="s3", mounts=[{"mount_point": "s3://b/", "encrypt_options": [{"name": "aws.secretKey", "key": "sk"}]}])[0]
    assert ds["spec"]["mounts"][0]["encryptOptions"] == [{"name": "aws.secretKey", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "sk"}}}]


def test_juicefs_runtime_affinity_and_dataload():
    objs = dataset(
        runtime="juicefs",
        secret_name="jfs",
        mounts=[{"mount_point": "juicefs:///f", "options": {"bucket": "http://minio/j", "storage": "minio"}, "encrypt_options": [{"name": "metaurl"}]}],
        tiered_store=[{"medium": "SSD", "path": "/cache", "quota": "40Gi", "low": "0.1", "volume_type": "hostPath"}],
        node_selector={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists"}],
        access_modes=["ReadOnlyMany"],
        dataload={"enabled": True, "paths": ["/f/train"]},
    )
    assert [o["kind"] for o in objs] == ["Dataset", "JuiceFSRuntime", "DataLoad"]
    ds, runtime, load = objs
    assert ds["spec"]["nodeAffinity"] == {
        "required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-H100-80GB-HBM3"]}]}]}
    }
    assert ds["spec"]["tolerations"] and ds["spec"]["accessModes"] == ["ReadOnlyMany"]
    assert runtime["spec"]["tieredstore"]["levels"] == [
        {"mediumtype": "SSD", "path": "/cache", "quota": "40Gi", "low": "0.1", "volumeType": "hostPath", "volumeSource": {}},
    ]
    assert re.match(r"^imagenet-warmup-[0-9a-f]{8}$", load["metadata"]["name"]), load["metadata"]["name"]
    assert load["metadata"]["labels"]["aiinfra.cluster/dataload-of"] == "imagenet"
    assert load["spec"] == {"dataset": {"name": "imagenet", "namespace": "data"}, "loadMetadata": True, "target": [{"path": "/f/train"}]}


def test_alluxio_properties_and_image():
    runtime = dataset(properties={"alluxio.user.file.readtype.default": "CACHE"}, runtime_image="mirror.local/alluxio:2.9.0")[1]
    assert runtime["spec"]["properties"] == {"alluxio.user.file.readtype.default": "CACHE"}
    assert runtime["spec"]["alluxioVersion"] == {"image": "mirror.local/alluxio", "imageTag": "2.9.0"}


@pytest.mark.parametrize("key", ["aws.secretKey", "aws.accessKeyId", "fs.oss.accessKeySecret", "metaurl", "secret-key", "access-key", "token", "password"])
def test_credential_like_option_names(key):
    assert looks_secret(key)
    with pytest.raises(InputError) as err:
        dataset(mounts=[{"mount_point": "s3://b/", "options": {key: "x"}}])
    assert "mounts[0].options.%s" % key in err.value.msg and "Secret" in err.value.msg


@pytest.mark.parametrize("key", ["alluxio.underfs.s3.endpoint", "bucket", "storage", "alluxio.underfs.s3.disable.dns.buckets", "fs.oss.endpoint"])
def test_plain_option_names(key):
    assert not looks_secret(key)


@pytest.mark.parametrize(
    "extra, words",
    [
        ({"mounts": []}, ["mounts"]),
        ({"mounts": [{"mount_point": "s3://ak:sk@minio/b"}]}, ["mounts[0].mount_point", "Secret"]),
        ({"mounts": [{"mount_point": "s3://b/", "encrypt_options": [{"name": "aws.secretKey"}]}]}, ["encrypt_options[0]", "Secret"]),
        ({"runtime": "juicefs", "mounts": [{"mount_point": "s3://b/"}]}, ["juicefs:///"]),
        ({"runtime": "juicefs", "secret_name": "s", "mounts": [{"mount_point": "juicefs:///x", "encrypt_options": [{"name": "access-key"}]}]}, ["metaurl"]),
        ({"replicas": 0}, ["replicas"]),
        ({"tiered_store": [{"medium": "NVME", "path": "/x", "quota": "1Gi"}]}, ["tiered_store[0].medium"]),
        ({"runtime": "juicefs", "secret_name": "s", "properties": {"a": "b"},
          "mounts": [{"mount_point": "juicefs:///x", "encrypt_options": [{"name": "metaurl"}]}]}, ["properties"]),
        ({"runtime_image": "alluxio"}, ["runtime_image"]),
    ],
)
def test_dataset_bad_input(extra, words):
    with pytest.raises(InputError) as err:
        dataset(**extra)
    for word in words:
        assert word in err.value.msg


def test_absent_refs_and_runtime_waits():
    kinds = [o["kind"] for o in fluid_dataset_ref_objects({"name": "x", "namespace": "n", "runtime": "juicefs"})]
    assert kinds == ["Dataset", "JuiceFSRuntime"]
    assert [w["path"] for w in runtime_waits("alluxio")] == ["status.masterPhase", "status.workerPhase"]
    assert [w["path"] for w in runtime_waits("juicefs")] == ["status.workerPhase"]


def test_dataload_is_named_by_what_it_loads():
    def load_name(**dataload):
        return dataset(dataload=dict({"enabled": True}, **dataload))[-1]["metadata"]["name"]

    first = load_name(paths=["/train"])
    assert load_name(paths=["/train"]) == first
    assert load_name(paths=["/train", "/val"]) != first
    assert load_name(paths=["/train"], load_metadata=False) != first
    assert len(dataset(name="d" * 60, dataload={"enabled": True})[-1]["metadata"]["name"]) <= 57


def test_superseded_dataloads_are_ours_for_this_dataset_only():
    def load(name, dataset_name="imagenet", managed=True):
        labels = {"app.kubernetes.io/managed-by": "aiinfra.cluster"} if managed else {}
        return {"metadata": {"name": name, "labels": labels}, "spec": {"dataset": {"name": dataset_name, "namespace": "data"}}}

    ours = ["imagenet-warmup", "imagenet-warmup-aaaa", "imagenet-warmup-bbbb"]
    listing = [load(n) for n in ours] + [load("other-warmup-cccc", "other"), load("hand-made", managed=False)]
    refs = superseded_dataloads(listing, "imagenet", "data", keep="imagenet-warmup-bbbb")
    assert [r["metadata"] for r in refs] == [{"name": "imagenet-warmup", "namespace": "data"}, {"name": "imagenet-warmup-aaaa", "namespace": "data"}]
    assert [r["metadata"]["name"] for r in superseded_dataloads(listing, "imagenet", "data")] == ours


# DVC ------------------------------------------------------------------------------------
def dvc(**extra):
    params = {"name": "imagenet", "namespace": "train", "repo_url": "https://git/registry", "revision": "v1", "path": "data/imagenet", "pvc": {"name": "data"}}
    params.update(extra)
    return build_data_version(params)


def test_dvc_job_shape():
    [job] = dvc(remote="s3store", remote_config={"endpointurl": "http://minio:9000"}, credentials_secret="dvc-s3")
    assert job["kind"] == "Job" and job["metadata"]["name"].startswith("imagenet-")
    assert job["metadata"]["labels"]["aiinfra.cluster/data-version"] == "imagenet"
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["restartPolicy"] == "Never"
    assert container["image"] == "python:3.12-slim"
    assert container["args"] == [
        "--rev", "v1", "--remote", "s3store", "--remote-config", "endpointurl=http://minio:9000", "https://git/registry", "data/imagenet",
    ]
    env = dict((e["name"], e["value"]) for e in container["env"])
    assert env["DVC_VERSION"] == "3.67.1" and env["OUT_DIR"] == "/data/imagenet" and env["INSTALL_DVC"] == "true"
    assert container["envFrom"] == [{"secretRef": {"name": "dvc-s3"}}]
    assert pod["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    assert job["spec"]["backoffLimit"] == 2
    # user values travel as arguments and environment, never inside the shell script
    assert "https://git/registry" not in container["command"][2]


def test_dvc_job_name_follows_the_revision():
    same = dvc()[0]["metadata"]["name"]
    assert dvc()[0]["metadata"]["name"] == same
    assert dvc(revision="v2")[0]["metadata"]["name"] != same
    assert len(dvc(name="x" * 80)[0]["metadata"]["name"]) <= 63


def test_dvc_job_ttl_only_when_asked():
    assert "ttlSecondsAfterFinished" not in dvc()[0]["spec"]
    assert dvc(ttl_seconds_after_finished=3600)[0]["spec"]["ttlSecondsAfterFinished"] == 3600


def test_dvc_creates_the_claim_when_sized():
    pvc, job = dvc(pvc={"name": "data", "size": "100Gi", "storage_class": "fast", "access_modes": ["ReadWriteMany"], "sub_path": "sets/in"})
    assert pvc["spec"] == {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "100Gi"}}, "storageClassName": "fast"}
    assert dict((e["name"], e["value"]) for e in job["spec"]["template"]["spec"]["containers"][0]["env"])["OUT_DIR"] == "/data/sets/in"


@pytest.mark.parametrize(
    "extra, words",
    [
        ({"repo_url": "https://me:ghp_x@github.com/o/r"}, ["repo_url", "Secret"]),
        ({"repo_url": None}, ["repo_url"]),
        ({"revision": ""}, ["revision"]),
        ({"path": None}, ["path"]),
        ({"pvc": {}}, ["pvc.name"]),
        ({"remote_config": {"secret_access_key": "x"}}, ["remote_config.secret_access_key", "Secret"]),
        ({"backoff_limit": -1}, ["backoff_limit"]),
        ({"ttl_seconds_after_finished": -1}, ["ttl_seconds_after_finished"]),
    ],
)
def test_dvc_bad_input(extra, words):
    with pytest.raises(InputError) as err:
        dvc(**extra)
    for word in words:
        assert word in err.value.msg
    assert "ghp_x" not in err.value.msg
