"""The operators' own controllers on the local control plane: KServe, JobSet and the Kubeflow
Trainer run as host processes (tools/local_cluster.py up), serve the charts' webhooks (registered
through the helm post-renderer at 127.0.0.1) and write every status these tests wait on. Nothing
here sets an operator's status."""

import threading
import time

import pytest

# The operators' CRDs (and charts) from ../shared: skipped on a plain clone (tests/conftest.py).
pytestmark = pytest.mark.upstream

ISVC = ("serving.kserve.io/v1beta1", "InferenceService")
PRODUCT_LABEL = "nvidia.com/gpu.product"


def isvc_args(namespace, product, **extra):
    args = {
        "name": "iris",
        "namespace": namespace,
        "model_format": {"name": "sklearn"},
        "storage_uri": "gs://kfserving-examples/models/sklearn/1.0/model",
        "gpus": 1,
        "gpu_product": product,
        "deployment_mode": "Standard",
        "wait_timeout": 180,
    }
    args.update(extra)
    return args


def predictor_pods(kube, namespace, name):
    query = {"labelSelector": "serving.kserve.io/inferenceservice=%s" % name}
    return kube.get("/api/v1/namespaces/%s/pods" % namespace, query=query)["items"]


def storage_uri(deployment):
    """The model URI KServe gives the storage initializer of a predictor Deployment's pods."""
    return deployment["spec"]["template"]["metadata"]["annotations"].get("internal.serving.kserve.io/storage-initializer-sourceuri")


def test_inference_service_ready_through_kserve(module_runner, kube, namespace, operators, gpu_pool, getter):
    product, nodes = gpu_pool(1)
    args = isvc_args(namespace, product)
    res = module_runner("inference_service", args)
    assert res.get("failed") is not True, res.get("msg")
    assert res["changed"] is True and res["ready"] is True, res
    isvc = getter(*ISVC, "iris", namespace)
    # The URL and conditions are KServe's own: the module returns what the controller wrote.
    assert isvc["status"]["url"] and res["url"] == isvc["status"]["url"], (res["url"], isvc["status"])
    assert {"PredictorReady", "Ready"} <= set(c["type"] for c in isvc["status"]["conditions"] if c["status"] == "True")
    # KServe's defaulting webhook ran (it fills the predictor's resources and protocol).
    assert isvc["spec"]["predictor"]["model"].get("protocolVersion") or isvc["spec"]["predictor"]["model"].get("resources"), isvc["spec"]

    # The predictor Deployment is KServe's; its pods landed on the GPU product the module selected.
    deployment = kube.get("/apis/apps/v1/namespaces/%s/deployments/iris-predictor" % namespace)
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "InferenceService"
    pods = predictor_pods(kube, namespace, "iris")
    assert pods and all(p["spec"]["nodeName"] in nodes for p in pods), [(p["metadata"]["name"], p["spec"].get("nodeName")) for p in pods]
    assert all(p["spec"]["nodeSelector"] == {PRODUCT_LABEL: product} for p in pods)
    assert storage_uri(deployment) == args["storage_uri"]
    # KServe's pod mutating webhook added the storage initializer to the pods.
    for pod in pods:
        init = [c for c in pod["spec"].get("initContainers") or [] if c["name"] == "storage-initializer"]
        assert init and init[0]["args"][0] == args["storage_uri"], pod["spec"].get("initContainers")

    # Second run while KServe keeps writing status and annotations: nothing to change, no write.
    again = module_runner("inference_service", args)
    assert again["changed"] is False and "PATCH" not in again["api_requests"], again["api_requests"]
    assert again["ready"] is True and again["url"] == res["url"]


def test_inference_service_update_waits_for_new_generation(module_runner, kube, namespace, operators, gpu_pool, getter):
    product, _nodes = gpu_pool(1)
    args = isvc_args(namespace, product)
    assert module_runner("inference_service", args)["ready"] is True
    generation = getter(*ISVC, "iris", namespace)["metadata"]["generation"]

    new_uri = "gs://kfserving-examples/models/sklearn/1.1/model"
    res = module_runner("inference_service", dict(args, storage_uri=new_uri))
    assert res.get("failed") is not True, res.get("msg")
    assert res["changed"] is True and res["ready"] is True
    isvc = getter(*ISVC, "iris", namespace)
    assert isvc["metadata"]["generation"] > generation
    # Returned only once KServe had observed the new generation.
    assert isvc["status"].get("observedGeneration") == isvc["metadata"]["generation"], isvc["status"]
    deployment = kube.get("/apis/apps/v1/namespaces/%s/deployments/iris-predictor" % namespace)
    assert storage_uri(deployment) == new_uri


def test_kserve_webhook_rejects_what_the_schema_accepts(module_runner, namespace, operators, getter):
    # The CRD schema accepts any annotation; KServe's validating webhook knows the autoscaler classes.
    args = isvc_args(namespace, "NVIDIA-H100-80GB-HBM3", annotations={"serving.kserve.io/autoscalerClass": "bogus"}, wait=False)
    res = module_runner("inference_service", args)
    assert res.get("failed") is True, res
    assert "[bogus] is not a supported autoscaler class type" in res["msg"], res["msg"]
    assert "inferenceservice.kserve-webhook-server.validator" in res["msg"], res["msg"]
    assert getter(*ISVC, "iris", namespace) is None
    # Check mode asks the server too (dry run), so the webhook answers there as well.
    res = module_runner("inference_service", args, check_mode=True)
    assert res.get("failed") is True and "[bogus] is not a supported autoscaler class type" in res["msg"], res["msg"]


def test_trainjob_completes_through_trainer_and_jobset(module_runner, kube, namespace, operators, gpu_pool, getter):
    product, nodes = gpu_pool(2)
    args = {
        "name": "ddp", "namespace": namespace, "backend": "trainjob", "script": "/workspace/train.py",
        "nodes": 2, "gpus_per_node": 8, "gpu_product": product, "wait_timeout": 180,
    }
    res = module_runner("training_job", args)
    assert res.get("failed") is not True, res.get("msg")
    assert res["training"]["state"] == "succeeded" and res["training"]["kind"] == "TrainJob", res["training"]
    trainjob = getter("trainer.kubeflow.org/v1alpha1", "TrainJob", "ddp", namespace)
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in trainjob["status"]["conditions"]), trainjob["status"]
    # The Trainer made a JobSet, the JobSet controller made the Jobs, KWOK ran their pods.
    jobset = getter("jobset.x-k8s.io/v1alpha2", "JobSet", "ddp", namespace)
    assert jobset["metadata"]["ownerReferences"][0]["kind"] == "TrainJob"
    assert any(c["type"] == "Completed" and c["status"] == "True" for c in jobset["status"]["conditions"]), jobset["status"]
    jobs = kube.get("/apis/batch/v1/namespaces/%s/jobs" % namespace, query={"labelSelector": "jobset.sigs.k8s.io/jobset-name=ddp"})["items"]
    assert jobs and all(j["metadata"]["ownerReferences"][0]["kind"] == "JobSet" for j in jobs)
    pods = kube.get("/api/v1/namespaces/%s/pods" % namespace, query={"labelSelector": "jobset.sigs.k8s.io/jobset-name=ddp"})["items"]
    # On the pool's nodes (its product label). Not necessarily one pod per node: KWOK completes a pod
    # as soon as it runs, so the second may be placed where the first already finished.
    assert len(pods) == 2 and set(p["spec"]["nodeName"] for p in pods) <= set(nodes), [p["spec"].get("nodeName") for p in pods]

    again = module_runner("training_job", args)
    assert again["changed"] is False, again["resources"]
    assert again["training"]["state"] == "succeeded"


def test_jobset_parameter_servers_complete_through_jobset(module_runner, namespace, operators, getter):
    args = {
        "name": "tfps", "namespace": namespace, "framework": "tensorflow", "strategy": "parameter_server", "backend": "jobset",
        "script": "/w/train.py", "nodes": 2, "ps_replicas": 2, "wait_timeout": 180,
    }
    res = module_runner("training_job", args)
    assert res.get("failed") is not True, res.get("msg")
    assert res["training"]["state"] == "succeeded" and res["training"]["kind"] == "JobSet", res["training"]
    jobset = getter("jobset.x-k8s.io/v1alpha2", "JobSet", "tfps", namespace)
    # The defaults JobSet's mutating webhook sets (without them its controller cannot run the JobSet).
    assert jobset["spec"]["network"]["enableDNSHostnames"] is True
    assert jobset["spec"]["startupPolicy"]["startupPolicyOrder"] == "AnyOrder"
    completed = [c for c in jobset["status"]["conditions"] if c["type"] == "Completed" and c["status"] == "True"]
    assert completed and completed[0]["reason"] == "AllJobsCompleted", jobset["status"]
    assert module_runner("training_job", args)["changed"] is False


def test_jobset_failure_fails_fast_with_controller_reason(module_runner, kube, namespace, operators):
    # JobSet rather than TrainJob: the module's JobSet has backoffLimit 0 and maxRestarts 0, while
    # the Trainer's torch-distributed runtime keeps the Job default (6 retries, minutes of backoff).
    out = {}
    args = {
        "name": "oom", "namespace": namespace, "framework": "tensorflow", "strategy": "parameter_server", "backend": "jobset",
        "script": "/w/train.py", "nodes": 2, "ps_replicas": 1, "node_selector": {"pool": "none"}, "wait_timeout": 240,
    }
    runner = threading.Thread(target=lambda: out.setdefault("result", module_runner("training_job", args)))
    started = time.time()
    runner.start()
    pod = None
    while time.time() - started < 90 and pod is None:
        pods = kube.get("/api/v1/namespaces/%s/pods" % namespace, query={"labelSelector": "jobset.sigs.k8s.io/jobset-name=oom"})["items"]
        pod = pods[0] if pods else None
        time.sleep(0.3)
    assert pod is not None, "the JobSet controller created no pod"
    # The kubelet's part, which KWOK does not play for a Pending pod: the container fails.
    status = {
        "phase": "Failed",
        "containerStatuses": [{
            "name": pod["spec"]["containers"][0]["name"], "image": "x", "imageID": "", "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": "CUDA out of memory"}},
        }],
    }
    kube.request("PATCH", "/api/v1/namespaces/%s/pods/%s/status" % (namespace, pod["metadata"]["name"]),
                 body={"status": status}, content_type="application/merge-patch+json")
    runner.join(240)
    result = out["result"]
    assert result["failed"] is True, result
    assert time.time() - started < 150, "must fail as soon as the controllers report it, not at wait_timeout"
    # The reason and message are the JobSet controller's.
    assert "ReachedMaxRestarts: jobset failed due to reaching max number of restarts" in result["msg"], result["msg"]
    assert "CUDA out of memory" in result["msg"], result["msg"]
    assert "not finished after" not in result["msg"], result["msg"]
