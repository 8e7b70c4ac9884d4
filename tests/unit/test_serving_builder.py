import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError
from ansible_collections.aiinfra.cluster.plugins.module_utils.serving_builder import (
    TRITON_IMAGE,
    build_inference_service,
    build_triton_server,
    inference_service_summary,
    triton_endpoints,
)


def isvc(**extra):
    params = {"name": "resnet", "namespace": "models", "model_format": {"name": "onnx", "version": "1"}, "storage_uri": "s3://m/resnet"}
    params.update(extra)
    return build_inference_service(params)


def test_inference_service_minimal_is_standard_mode():
    [obj] = isvc()
    assert obj["apiVersion"] == "serving.kserve.io/v1beta1" and obj["kind"] == "InferenceService"
    assert obj["metadata"]["annotations"] == {"serving.kserve.io/deploymentMode": "Standard"}
    assert obj["spec"] == {"predictor": {"model": {"modelFormat": {"name": "onnx", "version": "1"}, "storageUri": "s3://m/resnet"}}}


def test_inference_service_gpu_placement_and_scaling():
    [obj] = isvc(
        gpus=2,
        gpu_product="NVIDIA-H100-80GB-HBM3",
        resources={"requests": {"cpu": 2, "memory": "8Gi"}},
        min_replicas=1,
        max_replicas=4,
        scale_metric="cpu",
        scale_target=70,
        runtime="kserve-tritonserver",
        runtime_version="26.07-py3",
        protocol_version="v2",
        service_account="s3-reader",
        env={"B": 2, "A": "x"},
    )
    pred = obj["spec"]["predictor"]
    assert pred["model"]["resources"] == {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"nvidia.com/gpu": "2"}}
    assert pred["model"]["env"] == [{"name": "A", "value": "x"}, {"name": "B", "value": "2"}]
    assert pred["model"]["runtime"] == "kserve-tritonserver" and pred["model"]["protocolVersion"] == "v2"
    assert pred["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pred["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert (pred["minReplicas"], pred["maxReplicas"], pred["scaleMetric"], pred["scaleTarget"]) == (1, 4, "cpu", 70)
    assert pred["serviceAccountName"] == "s3-reader"


def test_inference_service_mig_resource_and_no_taint_toleration():
    [obj] = isvc(gpus=1, gpu_resource_name="nvidia.com/mig-1g.10gb", tolerate_gpu_taint=False)
    assert obj["spec"]["predictor"]["model"]["resources"]["limits"] == {"nvidia.com/mig-1g.10gb": "1"}
    assert "tolerations" not in obj["spec"]["predictor"]


def test_knative_canary_and_scale_to_zero():
    [obj] = isvc(deployment_mode="Knative", canary_traffic_percent=10, min_replicas=0, scale_metric="concurrency")
    assert obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert obj["spec"]["predictor"]["minReplicas"] == 0


def test_transformer_and_explainers():
    [obj] = isvc(transformer={"image": "t:1", "args": ["--x"]}, explainer={"type": "art", "config": {"nb_classes": 10}})
    assert obj["spec"]["transformer"] == {"containers": [{"name": "kserve-container", "image": "t:1", "args": ["--x"]}]}
    assert obj["spec"]["explainer"] == {"art": {"type": "SquareAttack", "config": {"nb_classes": "10"}}}
    [obj] = isvc(explainer={"type": "custom", "image": "e:1"})
    assert obj["spec"]["explainer"]["containers"][0]["image"] == "e:1"


@pytest.mark.parametrize("uri", ["s3://b/m", "gs://b/m", "pvc://claim/m", "hf://org/model", "oci://reg/model:1", "https://host/m.onnx"])
def test_known_storage_schemes(uri):
    assert isvc(storage_uri=uri)[0]["spec"]["predictor"]["model"]["storageUri"] == uri


@pytest.mark.parametrize(
    "extra, words",
    [
        ({"storage_uri": "ftp://b/m"}, ["storage_uri", "scheme"]),
        ({"storage_uri": "http://b/m"}, ["storage_uri", "scheme"]),
        ({"storage_uri": "s3://key:secret@minio/b"}, ["storage_uri", "credentials", "Secret"]),
        ({"storage_uri": "pvc:///path"}, ["storage_uri", "claim"]),
        ({"model_format": {}}, ["model_format.name"]),
        ({"min_replicas": -1}, ["min_replicas", "negative"]),
        ({"max_replicas": 0}, ["max_replicas"]),
        ({"min_replicas": 3, "max_replicas": 2}, ["max_replicas", "min_replicas"]),
        ({"min_replicas": 0}, ["min_replicas", "Knative"]),
        ({"scale_metric": "rps"}, ["scale_metric", "Knative"]),
        ({"canary_traffic_percent": 10}, ["canary_traffic_percent", "Knative"]),
        ({"deployment_mode": "Knative", "canary_traffic_percent": 101}, ["canary_traffic_percent", "100"]),
        ({"explainer": {"type": "alibi"}}, ["Alibi", "removed", "art", "custom"]),
        ({"explainer": {"type": "custom"}}, ["explainer.image"]),
        ({"gpus": -1}, ["gpus"]),
        ({"resources": {"requests": {"memory": "eight-gigs"}}}, ["resources.requests.memory", "quantity"]),
        ({"resources": {"requests": {"nvidia.com/gpu": "1"}}, "gpus": 2}, ["requests", "limits", "equal"]),
    ],
)
def test_inference_service_bad_input(extra, words):
    with pytest.raises(InputError) as err:
        isvc(**extra)
    for word in words:
        assert word in err.value.msg


def test_inference_service_summary():
    obj = {"status": {"url": "http://u", "address": {"url": "http://a"}, "conditions": [{"type": "Ready", "status": "True"}]}}
    assert inference_service_summary(obj) == {
        "url": "http://u",
        "address": "http://a",
        "predictor_url": None,
        "conditions": [{"type": "Ready", "status": "True"}],
        "ready": True,
    }
    assert inference_service_summary(None)["ready"] is False


# Triton ---------------------------------------------------------------------------------
def triton(**extra):
    params = {"name": "triton", "namespace": "inf", "model_repository": "pvc://models/triton", "gpus": 1, "replicas": 2}
    params.update(extra)
    return build_triton_server(params)


def test_triton_pvc_repository_deployment_and_service():
    dep, svc = triton(gpu_product="NVIDIA-L40S")
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == TRITON_IMAGE
    assert container["args"][:3] == ["tritonserver", "--model-repository=/models/triton", "--model-control-mode=none"]
    assert container["resources"] == {"limits": {"nvidia.com/gpu": "1"}}
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in container["volumeMounts"]
    assert {"name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}} in pod["volumes"]
    assert container["startupProbe"] == {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 10, "failureThreshold": 30}
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L40S"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("http", 8000), ("grpc", 8001), ("metrics", 8002)]


def test_triton_object_storage_with_secret_and_control_modes():
    dep = triton(model_repository="s3://bucket/triton", storage_secret="s3-creds", model_control_mode="poll", repository_poll_secs=15)[0]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert "--model-repository=s3://bucket/triton" in container["args"]
    assert "--repository-poll-secs=15" in container["args"]
    assert container["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert all(v["name"] != "models" for v in dep["spec"]["template"]["spec"]["volumes"])
    dep = triton(model_control_mode="explicit", load_models=["a", "b"])[0]
    assert dep["spec"]["template"]["spec"]["containers"][0]["args"].count("--load-model=a") == 1


def test_triton_hpa_takes_replicas_and_monitors():
    objs = triton(autoscaling={"enabled": True, "min_replicas": 1, "max_replicas": 5, "target_cpu_utilization": 60}, monitoring="service_monitor")
    assert [o["kind"] for o in objs] == ["Deployment", "Service", "HorizontalPodAutoscaler", "ServiceMonitor"]
    assert "replicas" not in objs[0]["spec"]
    assert objs[2]["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "triton"}
    assert objs[2]["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert objs[3]["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    pod_monitor = triton(monitoring="pod_monitor")[-1]
    assert pod_monitor["kind"] == "PodMonitor" and pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


def test_triton_cpu_only():
    dep = triton(gpus=0)[0]
    pod = dep["spec"]["template"]["spec"]
    assert "resources" not in pod["containers"][0]
    assert "tolerations" not in pod


@pytest.mark.parametrize(
    "extra, words",
    [
        ({"replicas": -1}, ["replicas", "negative"]),
        ({"model_repository": "ftp://x"}, ["model_repository"]),
        ({"model_repository": "s3://ak:sk@host/b"}, ["model_repository", "Secret"]),
        ({"model_repository": "pvc://"}, ["model_repository", "claim"]),
        ({"storage_secret": "s"}, ["storage_secret", "pvc"]),
        ({"repository_poll_secs": 5}, ["repository_poll_secs", "poll"]),
        ({"load_models": ["a"]}, ["load_models", "explicit"]),
        ({"autoscaling": {"enabled": True}}, ["autoscaling.max_replicas"]),
        ({"autoscaling": {"enabled": True, "min_replicas": 0, "max_replicas": 2}}, ["autoscaling.min_replicas"]),
        ({"autoscaling": {"enabled": True, "max_replicas": 2, "target_cpu_utilization": 0}}, ["target_cpu_utilization"]),
        ({"shm_size": "big"}, ["shm_size"]),
        ({"monitoring": "grafana"}, ["monitoring"]),
    ],
)
def test_triton_bad_input(extra, words):
    with pytest.raises(InputError) as err:
        triton(**extra)
    for word in words:
        assert word in err.value.msg


def test_triton_endpoints_from_slices():
    slices = [{"endpoints": [{"addresses": ["10.0.0.2"], "conditions": {"ready": True}}, {"addresses": ["10.0.0.3"], "conditions": {"ready": False}}]}]
    ep = triton_endpoints("triton", "inf", {"spec": {"clusterIP": "10.96.0.9"}}, slices)
    assert ep == {
        "http": "http://triton.inf.svc:8000",
        "grpc": "triton.inf.svc:8001",
        "metrics": "http://triton.inf.svc:8002/metrics",
        "cluster_ip": "10.96.0.9",
        "ready_addresses": ["10.0.0.2"],
    }
