"""The preflight's pure checks: each refuses what would fail later and passes what is fine."""

import yaml

from ansible_collections.aiinfra.cluster.plugins.module_utils import preflight as pf
from ansible_collections.aiinfra.cluster.plugins.module_utils.gpu_inventory import driver_version, summarize_inventory
from ansible_collections.aiinfra.cluster.plugins.module_utils.waiters import _pod_references, reference_grace

H100 = "NVIDIA-H100-80GB-HBM3"
CUDA_TABLE = {"11": 450, "12": 525, "13": 580}


def node(name, gpus=8, product=H100, labels=None, mig=None, ready=True):
    all_labels = {"nvidia.com/gpu.product": product, "nvidia.com/gpu.count": str(gpus)}
    all_labels.update(labels or {})
    cap = {"nvidia.com/gpu": str(gpus)}
    cap.update(mig or {})
    return {"metadata": {"name": name, "labels": all_labels}, "status": {
        "capacity": cap, "allocatable": dict(cap), "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def inventory(*nodes):
    return summarize_inventory(list(nodes), [])


def verdicts(rows):
    return [r["verdict"] for r in rows]


def cuda_images():
    from ansible_collections.aiinfra.cluster.plugins.plugin_utils.preflight_plan import compatibility_data
    return compatibility_data()["cuda_images"]


# Versions ------------------------------------------------------------------------------------
def test_kubernetes_version_refuses_below_minimum_and_passes_inside():
    comps = [{"name": "KServe", "version": "v0.20.0", "kubernetes_min": "1.32", "kubernetes_max": None, "source": "docs"}]
    refused = pf.check_kubernetes_version("v1.31.4", comps)
    assert verdicts(refused) == ["fail"] and "older than 1.32" in refused[0]["why"], refused
    assert verdicts(pf.check_kubernetes_version("v1.37.2", comps)) == ["ok"]
    capped = [dict(comps[0], kubernetes_max="1.35")]
    assert verdicts(pf.check_kubernetes_version("v1.36.0", capped)) == ["fail"]


# Workload shapes -----------------------------------------------------------------------------
def test_shapes_follow_module_defaults():
    shapes = pf.workload_shapes({
        "training_jobs": [{"name": "t", "namespace": "a", "image": "x:1", "data": {"claim_name": "d"}, "checkpoint": {"claim_name": "c"}}],
        "triton_servers": [{"name": "s", "namespace": "b", "model_repository": "pvc://models/triton", "storage_secret": "s3"}],
        "inference_services": [{"name": "i", "namespace": "b", "gpus": 2, "storage_uri": "pvc://m/x", "service_account": "sa"}],
        "fluid_datasets": [{"name": "gone", "namespace": "c", "state": "absent"}],
    })
    train, isvc, triton = shapes
    assert (train["pods"], train["gpus"], train["pvcs"]) == (1, 1, ["d", "c"])  # training_job: 1 node x 1 GPU
    assert (triton["gpus"], triton["pvcs"], triton["secrets"]) == (1, ["models"], ["s3"])
    assert triton["images"] == ["nvcr.io/nvidia/tritonserver:26.07-py3"]
    assert (isvc["gpus"], isvc["pvcs"], isvc["service_accounts"]) == (2, ["m"], ["sa"])
    assert len(shapes) == 3  # state absent is left out


# CRDs ----------------------------------------------------------------------------------------
def test_crds_refuse_missing_kind_and_pass_installed_by_run():
    shapes = pf.workload_shapes({"training_jobs": [{"name": "t", "backend": "trainjob"}]})
    refused = pf.check_crds(shapes, set(), set())
    assert verdicts(refused) == ["fail"] and "trainjobs.trainer.kubeflow.org" == refused[0]["object"]
    assert "training_platform" in refused[0]["fix"]
    assert verdicts(pf.check_crds(shapes, set(), {"trainer.kubeflow.org"})) == ["ok"]
    assert verdicts(pf.check_crds(shapes, {"trainjobs.trainer.kubeflow.org"}, set())) == ["ok"]
    # Mesh policies without Istio only warn unless mesh_security_require_istio.
    mesh = pf.workload_shapes({"istio_policies": [{"name": "p", "namespace": "a"}]})
    assert verdicts(pf.check_crds(mesh, set(), set())) == ["warn"]
    assert verdicts(pf.check_crds(mesh, set(), set(), istio_required=True)) == ["fail"]


# GPU capacity, quota -------------------------------------------------------------------------
def test_gpu_capacity_refuses_more_gpus_per_pod_than_any_node_and_unknown_products():
    inv = inventory(node("a"), node("b"), node("c", gpus=4, product="NVIDIA-L40S"))
    nine = pf.workload_shapes({"training_jobs": [{"name": "big", "namespace": "t", "gpus_per_node": 9, "gpu_product": H100}]})
    rows = pf.check_gpu_capacity(nine, inv)
    assert verdicts(rows) == ["fail"] and "asks 9 nvidia.com/gpu per pod; the largest of the 2 %s nodes has 8" % H100 in rows[0]["why"], rows
    other = pf.workload_shapes({"triton_servers": [{"name": "s", "namespace": "t", "gpu_product": "NVIDIA-B200"}]})
    rows = pf.check_gpu_capacity(other, inv)
    assert verdicts(rows) == ["fail"] and "NVIDIA-B200, which no Ready node has" in rows[0]["why"] and "NVIDIA-L40S: 1 nodes" in rows[0]["why"]
    too_many = pf.workload_shapes({"training_jobs": [{"name": "wide", "namespace": "t", "nodes": 3, "gpus_per_node": 8, "gpu_product": H100}]})
    assert verdicts(pf.check_gpu_capacity(too_many, inv)) == ["fail"]
    fits = pf.workload_shapes({"training_jobs": [{"name": "ok", "namespace": "t", "nodes": 2, "gpus_per_node": 8, "gpu_product": H100}]})
    assert verdicts(pf.check_gpu_capacity(fits, inv)) == ["ok"]


def test_gpu_capacity_without_gpu_nodes_warns_when_the_operator_comes_with_the_run():
    shapes = pf.workload_shapes({"training_jobs": [{"name": "t", "namespace": "a"}]})
    assert verdicts(pf.check_gpu_capacity(shapes, inventory(), gpu_operator_in_run=True)) == ["warn"]
    assert verdicts(pf.check_gpu_capacity(shapes, inventory())) == ["fail"]


def test_mig_profile_resources_are_counted():
    inv = inventory(node("m", gpus=0, mig={"nvidia.com/mig-1g.10gb": "7"}))
    shapes = pf.workload_shapes({"triton_servers": [{"name": "s", "namespace": "a", "gpu_resource_name": "nvidia.com/mig-1g.10gb", "gpus": 2}]})
    assert verdicts(pf.check_gpu_capacity(shapes, inv)) == ["ok"]
    shapes[0]["gpus"] = 8
    assert verdicts(pf.check_gpu_capacity(shapes, inv)) == ["fail"]


def test_gpu_quota_refuses_over_team_quota_and_per_pod_cap():
    shapes = pf.workload_shapes({"training_jobs": [{"name": "a", "namespace": "team", "nodes": 2, "gpus_per_node": 8},
                                                   {"name": "b", "namespace": "team", "gpus_per_node": 4}]})
    rows = pf.check_gpu_quota(shapes, [{"name": "team", "gpu_quota": 16, "max_gpus_per_pod": 8}], {})
    assert verdicts(rows) == ["fail"] and "ask 20 GPUs together, the team quota (gpu_quota) is 16" in rows[0]["why"], rows
    assert verdicts(pf.check_gpu_quota(shapes, [{"name": "team", "gpu_quota": 16, "borrowing_limit": 4}], {})) == ["ok"]
    # Queued jobs wait for Kueue; only one that can never fit is refused.
    for shape in shapes:
        shape["queue"] = "gpu"
    assert verdicts(pf.check_gpu_quota(shapes, [{"name": "team", "gpu_quota": 16}], {})) == ["ok"]
    assert verdicts(pf.check_gpu_quota(shapes, [{"name": "team", "gpu_quota": 12}], {})) == ["fail", "ok"]
    for shape in shapes:
        shape["queue"] = None
    rows = pf.check_gpu_quota(shapes, [{"name": "team", "gpu_quota": 32, "max_gpus_per_pod": 4}], {})
    assert verdicts(rows) == ["fail", "ok"] and "allows 4 per pod" in rows[0]["why"]
    assert verdicts(pf.check_gpu_quota(shapes, [{"name": "team", "gpu_quota": 24}], {})) == ["ok"]
    # A namespace the run does not manage: its ResourceQuota counts.
    assert verdicts(pf.check_gpu_quota(shapes, [], {"team": (8, "ResourceQuota gpu")})) == ["fail"]
    assert pf.check_gpu_quota(shapes, [], {}) == []


def test_queued_serving_pods_count_against_the_quota():
    """Kueue gates a queued serving pod, which the ResourceQuota already counts; a queued job has no pod yet."""
    shapes = pf.workload_shapes({"triton_servers": [{"name": "s", "namespace": "team", "gpus": 2, "replicas": 3, "queue_name": "gpu"}],
                                 "training_jobs": [{"name": "j", "namespace": "team", "nodes": 2, "gpus_per_node": 2, "queue_name": "gpu"}]})
    rows = pf.check_gpu_quota(shapes, [{"name": "team", "gpu_quota": 4}], {})
    assert verdicts(rows) == ["fail"] and "s (6)" in rows[0]["why"] and "j (" not in rows[0]["why"], rows
    assert verdicts(pf.check_gpu_quota(shapes, [{"name": "team", "gpu_quota": 6}], {})) == ["ok"]
    # Each serving pod is admitted on its own: only a pod larger than the quota can never be.
    rows = pf.check_gpu_quota(shapes, [{"name": "team", "gpu_quota": 1}], {})
    assert [r["why"].split(",")[0] for r in rows if r["object"] == "triton_server team/s"] == ["asks 2 GPUs per pod"], rows


# Driver --------------------------------------------------------------------------------------
def test_image_cuda_from_the_table():
    images = cuda_images()
    assert pf.image_cuda("docker.io/pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime", images)[0] == (13, 0)
    assert pf.image_cuda("nvidia/cuda:12.4.1-runtime-ubuntu22.04", images)[0] == (12, 4)
    assert pf.image_cuda("nvcr.io/nvidia/tritonserver:26.07-py3", images)[0] == (13, 0)
    assert pf.image_cuda("nvcr.io/nvidia/tritonserver:24.05-py3", images)[0] == (12, 1)
    assert pf.image_cuda("registry.local/ml/trainer:1.0", images) is None


def test_driver_refuses_older_branch_with_the_versions_named():
    old = {"nvidia.com/cuda.driver-version.major": "535", "nvidia.com/cuda.driver-version.full": "535.104.12"}
    new = {"nvidia.com/cuda.driver.major": "580", "nvidia.com/cuda.driver.minor": "95", "nvidia.com/cuda.driver.rev": "05"}
    assert driver_version(new) == (580, "580.95.05") and driver_version({}) == (None, None)
    shapes = pf.workload_shapes({"training_jobs": [{"name": "t", "namespace": "a", "image": "pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime"}]})
    rows = pf.check_driver(shapes, inventory(node("a", labels=old)), CUDA_TABLE, cuda_images())
    assert verdicts(rows) == ["fail"] and "CUDA 13.0 needs driver >= 580" in rows[0]["why"] and "a (535.104.12)" in rows[0]["why"], rows
    assert verdicts(pf.check_driver(shapes, inventory(node("a", labels=old), node("b", labels=new)), CUDA_TABLE, cuda_images())) == ["warn"]
    assert verdicts(pf.check_driver(shapes, inventory(node("b", labels=new)), CUDA_TABLE, cuda_images())) == ["ok"]
    assert verdicts(pf.check_driver(shapes, inventory(node("c")), CUDA_TABLE, cuda_images())) == ["skip"]


# MIG -----------------------------------------------------------------------------------------
def test_mig_strategy_against_the_nodes():
    layouts = {"inference-mixed": [{"devices": "all", "mig-enabled": True, "mig-devices": {"1g.10gb": 2, "3g.40gb": 1}}],
               "inference-1g": [{"devices": "all", "mig-enabled": True, "mig-devices": {"1g.10gb": 7}}]}
    mixed_node = node("a", labels={"nvidia.com/mig.config": "inference-mixed"})
    rows = pf.check_mig([], inventory(mixed_node), "single", layouts)
    assert verdicts(rows) == ["fail"] and "one MIG profile per node" in rows[0]["why"]
    assert verdicts(pf.check_mig([], inventory(node("b", labels={"nvidia.com/mig.config": "inference-1g"})), "single", layouts)) == ["ok"]
    assert verdicts(pf.check_mig([], inventory(mixed_node), "mixed", layouts)) == ["ok"]
    switching = node("c", labels={"nvidia.com/mig.strategy": "mixed"})
    assert verdicts(pf.check_mig([], inventory(switching), "single", layouts)) == ["warn"]
    asks_profile = pf.workload_shapes({"triton_servers": [{"name": "s", "namespace": "a", "gpu_resource_name": "nvidia.com/mig-1g.10gb"}]})
    assert "fail" in verdicts(pf.check_mig(asks_profile, inventory(node("d")), "single", layouts))


# References ----------------------------------------------------------------------------------
def test_references_refuse_missing_objects_and_pass_created_ones():
    workloads = {
        "training_jobs": [{"name": "t", "namespace": "a", "priority_class_name": "gpu-training", "data": {"dataset": "imagenet"},
                           "checkpoint": {"claim_name": "ckpt"}, "service_account_name": "trainer", "queue_name": "team-a"}],
        "tensorboards": [{"name": "tb", "namespace": "a", "log_dir": {"claim_name": "ckpt"}, "storage_secret": "s3"}],
        "fluid_datasets": [{"name": "imagenet", "namespace": "a", "credentials": {"k": "v"}}],
    }
    shapes = pf.workload_shapes(workloads)
    created = pf.created_by_run(workloads, {"priority_classes": ["gpu-training"]})
    empty = {"pvcs": set(), "secrets": set(), "service_accounts": set(), "local_queues": set(), "datasets": set(), "priority_classes": set()}
    rows = pf.check_references(shapes, empty, created)
    missing = sorted(r["object"] for r in rows if r["verdict"] == "fail")
    assert missing == ["LocalQueue a/team-a", "PersistentVolumeClaim a/ckpt", "Secret a/s3", "ServiceAccount a/trainer"], rows
    existing = dict(empty, pvcs={("a", "ckpt")}, secrets={("a", "s3")}, service_accounts={("a", "trainer")}, local_queues={("a", "team-a")})
    assert verdicts(pf.check_references(shapes, existing, created)) == ["ok"]
    # Without the run's PriorityClass and Dataset they are missing too.
    rows = pf.check_references(shapes, existing, pf.created_by_run({}, {}))
    assert sorted(r["object"] for r in rows if r["verdict"] == "fail") == ["Dataset a/imagenet", "PriorityClass gpu-training"]


# Permissions ---------------------------------------------------------------------------------
def test_permissions_from_rules_reviews():
    scopes = [{"source": "rbac/workloads.yml", "namespaces": ["a"],
               "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create"]},
                         {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]}]
    admin = {"a": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]}
    assert verdicts(pf.check_permissions(scopes, admin, {})) == ["ok"]
    reader = {"a": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["secrets", "nodes"]},
                    {"verbs": ["create"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["one"]}]}
    rows = pf.check_permissions(scopes, reader, {})
    assert verdicts(rows) == ["fail"] and rows[0]["object"] == "namespace a" and "secrets: create" in rows[0]["why"], rows
    # An access review (asked where the rules review was incomplete) wins over the rules.
    assert verdicts(pf.check_permissions(scopes, reader, {("create", "", "secrets", "a"): True})) == ["ok"]


def test_table_and_overall():
    rows = [pf.row("api", "x", "ok", "fine"), pf.row("crds", "y", "fail", "missing", "install it")]
    lines = pf.render_table(rows)
    assert lines[0].startswith("check") and "verdict" in lines[0] and len(lines) == 4
    assert lines[3].endswith("missing | install it") and lines[2].endswith("fine")
    assert pf.overall(rows) == "fail" and pf.overall(rows[:1] + [pf.row("driver", "z", "skip", "unknown")]) == "ok"


# Waits: what a pod cannot start without -----------------------------------------------------
def test_pod_references_for_fail_fast_waits(monkeypatch):
    pod = {"spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                                {"name": "s", "secret": {"secretName": "creds"}},
                                {"name": "o", "secret": {"secretName": "maybe", "optional": True}}],
                    "containers": [{"name": "c", "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "key", "key": "k"}}}],
                                    "envFrom": [{"secretRef": {"name": "env"}}]}]}}
    assert _pod_references(pod) == [("PersistentVolumeClaim", "data"), ("Secret", "creds"), ("Secret", "key"), ("Secret", "env")]
    monkeypatch.delenv("AIINFRA_WAIT_REFERENCE_GRACE", raising=False)
    assert reference_grace({}) == 30.0 and reference_grace({"reference_grace": 2}) == 2.0
    monkeypatch.setenv("AIINFRA_WAIT_REFERENCE_GRACE", "5")
    assert reference_grace({}) == 5.0


def test_compatibility_data_is_complete():
    from ansible_collections.aiinfra.cluster.plugins.plugin_utils.preflight_plan import COLLECTION_ROOT
    with open(COLLECTION_ROOT + "/meta/compatibility.yml") as handle:
        data = yaml.safe_load(handle)
    names = [c["name"] for c in data["components"]]
    for wanted in ("NVIDIA GPU Operator", "KServe", "Fluid", "Kubeflow Trainer", "JobSet", "Kueue", "cert-manager"):
        assert wanted in names
    for comp in data["components"]:
        assert pf.minor_version(comp["kubernetes"]["min"]) and comp["source"].startswith("https://"), comp
