"""inference_service and triton_server against the local control plane (real KServe and
Prometheus Operator CRDs; KWOK nodes with GPU Feature Discovery labels). KServe's own controller
and webhooks run beside it (tools/local_cluster.py), so InferenceService status is KServe's."""


import pytest

# The operators' CRDs (and charts) from ../shared: skipped on a plain clone (tests/conftest.py).
pytestmark = pytest.mark.upstream

ISVC = ("serving.kserve.io/v1beta1", "InferenceService")
PRODUCT_LABEL = "nvidia.com/gpu.product"


def isvc_args(namespace, **extra):
    args = {
        "name": "resnet",
        "namespace": namespace,
        "model_format": {"name": "onnx", "version": "1"},
        "runtime": "kserve-tritonserver",
        "runtime_version": "26.07-py3",
        "protocol_version": "v2",
        "storage_uri": "s3://models/resnet50",
        "service_account": "models-s3",
        "gpus": 1,
        "gpu_product": "NVIDIA-H100-80GB-HBM3",
        "resources": {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "8Gi"}},
        "min_replicas": 1,
        "max_replicas": 3,
        "scale_metric": "cpu",
        "scale_target": 70,
        "transformer": {"image": "registry.example.com/resnet-transformer:1.0", "args": ["--model_name=resnet"]},
        "explainer": {"type": "art", "config": {"nb_classes": "10"}},
        "wait": False,
    }
    args.update(extra)
    return args


def test_inference_service_lifecycle(module_runner, namespace, getter):
    # check mode: validated by the server, nothing stored
    res = module_runner("inference_service", isvc_args(namespace), check_mode=True)
    assert res["changed"] is True, res
    assert getter(*ISVC, "resnet", namespace) is None

    res = module_runner("inference_service", isvc_args(namespace), diff=True)
    assert res["changed"] is True and res["resources"][0]["action"] == "created", res
    assert res["diff"][0]["after"]["spec"]["predictor"]["model"]["storageUri"] == "s3://models/resnet50"
    obj = getter(*ISVC, "resnet", namespace)
    pred = obj["spec"]["predictor"]
    assert obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert pred["model"]["modelFormat"] == {"name": "onnx", "version": "1"}
    assert pred["model"]["runtimeVersion"] == "26.07-py3"
    assert pred["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pred["nodeSelector"] == {PRODUCT_LABEL: "NVIDIA-H100-80GB-HBM3"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pred["tolerations"]
    assert pred["serviceAccountName"] == "models-s3"
    assert (pred["minReplicas"], pred["maxReplicas"], pred["scaleMetric"], pred["scaleTarget"]) == (1, 3, "cpu", 70)
    assert obj["spec"]["explainer"]["art"]["type"] == "SquareAttack"
    assert obj["spec"]["transformer"]["containers"][0]["image"] == "registry.example.com/resnet-transformer:1.0"

    # idempotence: no write at all on the second run
    res = module_runner("inference_service", isvc_args(namespace))
    assert res["changed"] is False, res
    assert "PATCH" not in res["api_requests"], res["api_requests"]

    # update
    res = module_runner("inference_service", isvc_args(namespace, max_replicas=5), diff=True)
    assert res["changed"] is True and res["resources"][0]["action"] == "updated"
    assert getter(*ISVC, "resnet", namespace)["spec"]["predictor"]["maxReplicas"] == 5

    # delete, then delete again (absent is not a change)
    res = module_runner("inference_service", {"name": "resnet", "namespace": namespace, "state": "absent"})
    assert res["changed"] is True, res
    assert getter(*ISVC, "resnet", namespace) is None
    res = module_runner("inference_service", {"name": "resnet", "namespace": namespace, "state": "absent"})
    assert res["changed"] is False


def test_inference_service_waits_for_ready(module_runner, kube, namespace, operators, getter):
    # KServe's controller runs (tools/local_cluster.py): the wait reads the status it writes, and a
    # timeout reports KServe's own reasons. First: KServe's defaults give the predictor a 1-CPU
    # limit, so 2 CPUs requested without a limit make the Deployment it builds invalid. A separate
    # object (a short name: KServe's host name must stay a DNS label): KServe's work queue backs off exponentially per object on each failed reconcile (up
    # to 1000 s), so fixing this one in place could leave the fix unobserved for minutes.
    args = isvc_args(namespace, transformer=None, explainer=None, wait=True, wait_timeout=8)
    res = module_runner("inference_service", dict(args, name="bad"))
    assert res.get("failed") is True
    assert "not ready after 8s" in res["msg"] and "ReconcileFailed" in res["msg"], res["msg"]
    assert "must be less than or equal to cpu limit of 1" in res["msg"], res["msg"]
    module_runner("inference_service", {"name": "bad", "namespace": namespace, "state": "absent"})

    # Then: the Deployment is valid but its pods need the service account, which does not exist.
    fixed = dict(args, resources={"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}})
    res = module_runner("inference_service", dict(fixed, wait_timeout=10))
    assert res.get("failed") is True
    assert 'PredictorReady False (FailedCreate: pods "resnet-predictor-' in res["msg"], res["msg"]
    assert 'serviceaccount "models-s3" not found' in res["msg"], res["msg"]

    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "models-s3"}}
    kube.request("POST", "/api/v1/namespaces/%s/serviceaccounts" % namespace, body=account)
    res = module_runner("inference_service", dict(fixed, wait_timeout=120))
    assert res.get("failed") is not True, res.get("msg")
    assert res["ready"] is True and res["changed"] is False
    status = getter(*ISVC, "resnet", namespace)["status"]
    assert res["url"] == status["url"] and res["url"].startswith("http://resnet-%s." % namespace), (res["url"], status)
    assert {"PredictorReady", "Ready"} <= {c["type"] for c in res["conditions"] if c["status"] == "True"}


def test_inference_service_check_mode_reports_server_validation(module_runner, namespace, kube):
    # Passes the module's own checks; the API server rejects it (the name is no DNS-1123 label).
    res = module_runner("inference_service", isvc_args(namespace, name="ResNet_50"), check_mode=True)
    assert res.get("failed") is True
    assert "rejected by the API server" in res["msg"] and "metadata.name" in res["msg"], res["msg"]
    assert kube.get("/apis/serving.kserve.io/v1beta1/namespaces/%s/inferenceservices" % namespace)["items"] == []


@pytest.mark.parametrize(
    "extra, words",
    [
        ({"model_format": {"name": "onnx", "flavour": "x"}}, ["model_format", "flavour"]),
        ({"min_replicas": -1}, ["min_replicas", "negative"]),
        ({"storage_uri": "ftp://models/resnet"}, ["storage_uri", "scheme"]),
        ({"storage_uri": "s3://AKIAXXXX:secret@minio/models"}, ["storage_uri", "Secret"]),
        ({"explainer": {"type": "alibi"}}, ["Alibi", "removed", "art"]),
        ({"scale_metric": "rps"}, ["scale_metric", "Knative"]),
        ({"canary_traffic_percent": 10}, ["canary_traffic_percent", "Knative"]),
    ],
)
def test_inference_service_bad_input(module_runner, namespace, getter, extra, words):
    res = module_runner("inference_service", isvc_args(namespace, **extra))
    assert res.get("failed") is True, res
    for word in words:
        assert word in res["msg"], res["msg"]
    assert not res.get("api_requests"), "bad input must fail before any request: %s" % res.get("api_requests")
    assert "Traceback" not in res["msg"]
    assert getter(*ISVC, "resnet", namespace) is None


# Triton ---------------------------------------------------------------------------------
def triton_args(namespace, **extra):
    args = {
        "name": "triton",
        "namespace": namespace,
        "model_repository": "s3://models/triton",
        "storage_secret": "triton-s3",
        "gpus": 2,
        "gpu_product": "NVIDIA-H100-80GB-HBM3",
        "replicas": 2,
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        "monitoring": "service_monitor",
        "wait_timeout": 90,
    }
    args.update(extra)
    return args


def pods_of(kube, namespace, name):
    items = kube.get("/api/v1/namespaces/%s/pods" % namespace, query={"labelSelector": "app.kubernetes.io/instance=%s" % name})["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def test_triton_server_lifecycle(module_runner, namespace, getter, kube):
    res = module_runner("triton_server", triton_args(namespace), check_mode=True)
    assert res["changed"] is True, res
    assert getter("apps/v1", "Deployment", "triton", namespace) is None

    res = module_runner("triton_server", triton_args(namespace))
    assert res.get("failed") is not True, res
    assert [r["kind"] for r in res["resources"]] == ["Deployment", "Service", "ServiceMonitor"]
    dep = getter("apps/v1", "Deployment", "triton", namespace)
    assert dep["status"]["availableReplicas"] == 2
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nvcr.io/nvidia/tritonserver:26.07-py3"
    assert "--model-repository=s3://models/triton" in container["args"]
    assert "--model-control-mode=none" in container["args"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["envFrom"] == [{"secretRef": {"name": "triton-s3"}}]
    svc = getter("v1", "Service", "triton", namespace)
    assert sorted(p["port"] for p in svc["spec"]["ports"]) == [8000, 8001, 8002]
    monitor = getter("monitoring.coreos.com/v1", "ServiceMonitor", "triton", namespace)
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    ep = res["endpoints"]
    assert ep["http"] == "http://triton.%s.svc:8000" % namespace
    assert ep["cluster_ip"] == svc["spec"]["clusterIP"]
    assert len(ep["ready_addresses"]) == 2, ep

    res = module_runner("triton_server", triton_args(namespace))
    assert res["changed"] is False, res
    assert "PATCH" not in res["api_requests"]

    # update: explicit model control, a PodMonitor instead, an HPA owning the replica count
    res = module_runner(
        "triton_server",
        triton_args(namespace, model_control_mode="explicit", load_models=["resnet"], monitoring="pod_monitor",
                    autoscaling={"enabled": True, "max_replicas": 4}),
    )
    assert res.get("failed") is not True, res
    assert res["changed"] is True
    args = getter("apps/v1", "Deployment", "triton", namespace)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--model-control-mode=explicit" in args and "--load-model=resnet" in args
    hpa = getter("autoscaling/v2", "HorizontalPodAutoscaler", "triton", namespace)
    assert hpa["spec"]["maxReplicas"] == 4
    assert getter("monitoring.coreos.com/v1", "PodMonitor", "triton", namespace)["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"

    res = module_runner("triton_server", {"name": "triton", "namespace": namespace, "state": "absent"})
    assert res["changed"] is True
    for api_version, kind in (("apps/v1", "Deployment"), ("v1", "Service"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
                              ("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PodMonitor")):
        assert getter(api_version, kind, "triton", namespace) is None, kind
    res = module_runner("triton_server", {"name": "triton", "namespace": namespace, "state": "absent"})
    assert res["changed"] is False


@pytest.fixture
def l40s_node(kube):
    """Relabel one simulated GPU node as another product for the test; restore it afterwards."""
    node = "gpu-node-3"
    before = kube.get("/api/v1/nodes/%s" % node)["metadata"]["labels"][PRODUCT_LABEL]

    def label(value):
        kube.request("PATCH", "/api/v1/nodes/%s" % node, body={"metadata": {"labels": {PRODUCT_LABEL: value}}}, content_type="application/merge-patch+json")

    label("NVIDIA-L40S")
    yield node
    label(before)


def test_triton_pods_land_only_on_requested_gpu_product(module_runner, namespace, kube, l40s_node):
    res = module_runner("triton_server", triton_args(namespace, monitoring="none", gpu_product="NVIDIA-L40S", gpus=4, replicas=2))
    assert res.get("failed") is not True, res
    pods = pods_of(kube, namespace, "triton")
    assert len(pods) == 2
    assert {p["spec"]["nodeName"] for p in pods} == {l40s_node}
    assert all(p["status"]["phase"] == "Running" for p in pods)

    # A third replica does not fit (8 GPUs on the only L40S node): it stays Pending and the
    # wait times out with the rollout state instead of spilling onto H100 nodes.
    res = module_runner("triton_server", triton_args(namespace, monitoring="none", gpu_product="NVIDIA-L40S", gpus=4, replicas=3, wait_timeout=4))
    assert res.get("failed") is True
    assert "not ready after 4s" in res["msg"], res["msg"]
    nodes = [p["spec"].get("nodeName") for p in pods_of(kube, namespace, "triton")]
    assert sorted(n for n in nodes if n) == [l40s_node, l40s_node] and nodes.count(None) == 1


def test_triton_check_mode_reports_server_validation(module_runner, namespace, kube):
    res = module_runner("triton_server", triton_args(namespace, name="Triton_1"), check_mode=True)
    assert res.get("failed") is True
    assert "rejected by the API server" in res["msg"] and "metadata.name" in res["msg"], res["msg"]
    assert kube.get("/apis/apps/v1/namespaces/%s/deployments" % namespace)["items"] == []


@pytest.mark.parametrize(
    "extra, words",
    [
        ({"replicas": -2}, ["replicas", "negative"]),
        ({"model_repository": "ftp://models"}, ["model_repository"]),
        ({"model_repository": "s3://AKIA:secret@minio:9000/models"}, ["model_repository", "Secret"]),
        ({"load_models": ["a"]}, ["load_models", "explicit"]),
        ({"autoscaling": {"enabled": True}}, ["autoscaling.max_replicas"]),
        ({"gpus": -1}, ["gpus", "negative"]),
        ({"shm_size": "lots"}, ["shm_size", "quantity"]),
    ],
)
def test_triton_bad_input(module_runner, namespace, getter, extra, words):
    res = module_runner("triton_server", triton_args(namespace, **extra))
    assert res.get("failed") is True, res
    for word in words:
        assert word in res["msg"], res["msg"]
    assert not res.get("api_requests"), "bad input must fail before any request: %s" % res.get("api_requests")
    assert getter("apps/v1", "Deployment", "triton", namespace) is None
