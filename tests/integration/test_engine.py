"""The apply engine against the real local control plane, through the `resources` module."""

import json
import os
import socket
import threading

from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params


def configmap(ns, name="cm", data=None):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data or {"a": "1"}}


def deployment(ns, name="web", replicas=1, gpus=0, image="registry.local/web:1"):
    container = {"name": "web", "image": image}
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
        },
    }


def test_create_update_noop_delete(module_runner, namespace, getter):
    objs = [configmap(namespace), deployment(namespace, gpus=1)]
    first = module_runner("resources", {"definitions": objs})
    assert first["changed"] and [r["action"] for r in first["resources"]] == ["created", "created"], first
    # The real scheduler bound the pod and KWOK ran it: the rollout wait succeeded.
    assert first["resources"][1]["object"]["status"]["availableReplicas"] == 1

    second = module_runner("resources", {"definitions": objs})
    assert not second["changed"], second
    assert "PATCH" not in second["api_requests"], second["api_requests"]

    objs[0]["data"] = {"a": "2"}
    third = module_runner("resources", {"definitions": objs}, diff=True)
    assert [r["action"] for r in third["resources"]] == ["updated", "unchanged"]
    assert getter("v1", "ConfigMap", "cm", namespace)["data"] == {"a": "2"}
    diff = third["diff"][0]
    assert diff["before"]["data"] == {"a": "1"} and diff["after"]["data"] == {"a": "2"}
    assert "managedFields" not in json.dumps(diff) and "resourceVersion" not in json.dumps(diff)

    gone = module_runner("resources", {"definitions": objs, "state": "absent"})
    assert gone["changed"] and getter("apps/v1", "Deployment", "web", namespace) is None
    again = module_runner("resources", {"definitions": objs, "state": "absent"})
    assert not again["changed"] and [r["action"] for r in again["resources"]] == ["absent", "absent"]


def test_dropped_field_is_pruned(module_runner, namespace, getter):
    module_runner("resources", {"definitions": [configmap(namespace, data={"a": "1", "b": "2"})]})
    result = module_runner("resources", {"definitions": [configmap(namespace, data={"a": "1"})]})
    assert result["changed"]
    assert getter("v1", "ConfigMap", "cm", namespace)["data"] == {"a": "1"}


def test_check_mode_creates_nothing_and_still_validates(module_runner, namespace, getter):
    result = module_runner("resources", {"definitions": [configmap(namespace)]}, check_mode=True, diff=True)
    assert result["changed"] and result["resources"][0]["action"] == "created"
    assert result["diff"][0]["after"]["data"] == {"a": "1"}
    assert getter("v1", "ConfigMap", "cm", namespace) is None

    bad = deployment(namespace, replicas=-1)
    result = module_runner("resources", {"definitions": [bad]}, check_mode=True)
    assert result.get("failed") and "spec.replicas" in result["msg"], result
    assert getter("apps/v1", "Deployment", "web", namespace) is None


def test_validation_error_names_field_and_leaves_bundle_unapplied(module_runner, namespace, getter):
    objs = [configmap(namespace), deployment(namespace, replicas=-3)]
    result = module_runner("resources", {"definitions": objs})
    assert result.get("failed"), result
    assert "Deployment %s/web rejected by the API server" % namespace in result["msg"]
    assert "spec.replicas" in result["msg"] and "nothing in this bundle was changed" in result["msg"]
    assert getter("v1", "ConfigMap", "cm", namespace) is None


def test_unknown_field_is_rejected_by_the_schema(module_runner, namespace):
    obj = configmap(namespace)
    obj["spec"] = {"oops": True}
    result = module_runner("resources", {"definitions": [obj]})
    assert result.get("failed") and ".spec: field not declared in schema" in result["msg"], result
    assert "rejected by the API server" in result["msg"] and result["api_requests"]["PATCH"] == 1


def test_bundle_with_its_own_namespace(module_runner, kube, namespace):
    ns = namespace + "-b"
    objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, configmap(ns)]
    try:
        result = module_runner("resources", {"definitions": objs})
        assert [r["action"] for r in result["resources"]] == ["created", "created"], result
    finally:
        module_runner("resources", {"definitions": objs[:1], "state": "absent", "wait": False})


def test_field_manager_conflict_needs_force(module_runner, kube, namespace, getter):
    other = configmap(namespace, data={"a": "theirs"})
    kube.apply_patch("/api/v1/namespaces/%s/configmaps/cm" % namespace, other, "someone-else")
    result = module_runner("resources", {"definitions": [configmap(namespace, data={"a": "ours"})]})
    assert result.get("failed") and "conflict" in result["msg"] and "force_conflicts" in result["msg"], result
    assert ".data.a" in result["msg"] and "someone-else" in result["msg"]
    assert getter("v1", "ConfigMap", "cm", namespace)["data"] == {"a": "theirs"}
    result = module_runner("resources", {"definitions": [configmap(namespace, data={"a": "ours"})], "force_conflicts": True})
    assert result["changed"] and getter("v1", "ConfigMap", "cm", namespace)["data"] == {"a": "ours"}


def test_missing_crd_is_named_with_its_installer(module_runner, namespace):
    obj = {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue", "metadata": {"name": "q"}, "spec": {}}
    result = module_runner("resources", {"definitions": [obj]})
    assert result.get("failed") and "clusterqueues.kueue.x-k8s.io" in result["msg"], result
    # A version of a known group that this cluster does not serve: the installer is named.
    obj = {"apiVersion": "serving.kserve.io/v1alpha9", "kind": "InferenceService", "metadata": {"name": "m", "namespace": namespace}, "spec": {}}
    result = module_runner("resources", {"definitions": [obj]})
    assert result.get("failed") and "inferenceservices.serving.kserve.io" in result["msg"], result
    assert "KServe (role aiinfra.cluster.kserve)" in result["msg"] and result["api_requests"] == {"GET": 1}


def test_wait_timeout_reports_last_status_and_events(module_runner, namespace):
    result = module_runner("resources", {"definitions": [deployment(namespace, gpus=100)], "wait_timeout": 4})
    assert result.get("failed") and "not ready after 4s" in result["msg"], result
    assert "0/1 replicas updated" in result["msg"] or "replicas" in result["msg"]
    assert "ScalingReplicaSet" in result["msg"], result["msg"]
    assert "Unschedulable" in result["msg"] and "Insufficient nvidia.com/gpu" in result["msg"], result["msg"]
    assert result["last_status"] is not None


def test_condition_wait_uses_operator_status(module_runner, namespace, operators):
    # KServe's controller writes the InferenceService's conditions (tools/local_cluster.py runs it).
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m", "namespace": namespace},
        "spec": {"predictor": {"nodeSelector": {"pool": "none"}, "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://bucket/model"}}},
    }
    result = module_runner("resources", {"definitions": [isvc], "wait_timeout": 15})
    assert result.get("failed") and "condition Ready is False" in result["msg"], result.get("msg")
    assert "Deployment does not have minimum availability" in result["msg"] or "MinimumReplicasUnavailable" in result["msg"], result["msg"]
    del isvc["spec"]["predictor"]["nodeSelector"]
    result = module_runner("resources", {"definitions": [isvc], "wait_timeout": 120})
    assert not result.get("failed") and result["changed"], result.get("msg")


def test_bad_connection_settings(module_runner, tmp_path, kubeconfig):
    result = module_runner("resources", {"definitions": [configmap("default")], "kubeconfig": str(tmp_path / "nope")})
    assert result.get("failed") and "nope does not exist" in result["msg"]

    result = module_runner("resources", {"definitions": [configmap("default")], "context": "staging"})
    assert result.get("failed") and "context 'staging' not found" in result["msg"] and "aiinfra-local" in result["msg"]

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = module_runner("resources", {"definitions": [configmap("default")], "host": "https://127.0.0.1:%d" % port, "validate_certs": False})
    assert result.get("failed") and "cannot reach the Kubernetes API server at https://127.0.0.1:%d" % port in result["msg"]


def test_client_survives_dropped_connections(kubeconfig):
    """A TCP proxy in front of the real API server that cuts the first two connections."""
    cfg = config_from_params({"kubeconfig": kubeconfig})
    upstream_addr = (cfg.hostname, cfg.port)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    drops = {"left": 2}

    def pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve():
        while True:
            try:
                conn = listener.accept()[0]
            except OSError:
                return
            if drops["left"] > 0:
                drops["left"] -= 1
                conn.close()
                continue
            upstream = socket.create_connection(upstream_addr)
            threading.Thread(target=pipe, args=(conn, upstream), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        cfg.hostname, cfg.port = "127.0.0.1", listener.getsockname()[1]
        cfg.ssl_context.check_hostname = True  # the serving cert names 127.0.0.1
        client = KubeClient(cfg, backoff=0.05)
        assert client.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"
        assert drops["left"] == 0
        client.close()
    finally:
        listener.close()


def test_gpu_node_info_reports_simulated_gpus(module_runner, namespace):
    base = module_runner("gpu_node_info", {})
    assert base["totals"]["nodes"] >= 4 and base["api_requests"] == {"GET": 2}
    h100 = base["products"]["NVIDIA-H100-80GB-HBM3"]
    assert h100["gpu_capacity"] == 8 * h100["nodes"]
    module_runner("resources", {"definitions": [deployment(namespace, replicas=2, gpus=3)]})
    after = module_runner("gpu_node_info", {"product": "NVIDIA-H100-80GB-HBM3"})
    assert after["products"]["NVIDIA-H100-80GB-HBM3"]["gpu_requested"] == h100["gpu_requested"] + 6
    assert all(n["product"] == "NVIDIA-H100-80GB-HBM3" for n in after["nodes"])
    none = module_runner("gpu_node_info", {"product": "Tesla-K80"})
    assert none["nodes"] == [] and none["totals"]["nodes"] == 0
    cpu = module_runner("gpu_node_info", {"only_gpu_nodes": False, "label_selector": "!nvidia.com/gpu.present"})
    assert cpu["nodes"] and all(n["gpu_capacity"] == 0 for n in cpu["nodes"])
    assert os.environ["K8S_AUTH_KUBECONFIG"]


def test_secret_values_never_appear_in_results_or_diffs(module_runner, namespace, getter):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": namespace}, "stringData": {"token": "s3cr3t-value"}}
    first = module_runner("resources", {"definitions": [secret]}, diff=True)
    first.pop("invocation")  # the task's own arguments; tasks passing secrets set no_log
    assert first["changed"] and "s3cr3t-value" not in json.dumps(first)
    assert "czNjcjN0LXZhbHVl" not in json.dumps(first)  # nor its base64
    assert getter("v1", "Secret", "s", namespace)["data"]["token"] == "czNjcjN0LXZhbHVl"
    assert not module_runner("resources", {"definitions": [secret]})["changed"]
    secret["stringData"]["token"] = "n3w-value"
    changed = module_runner("resources", {"definitions": [secret]}, diff=True)
    changed.pop("invocation")
    assert changed["changed"] and "n3w-value" not in json.dumps(changed)


def test_missing_namespace_is_named_not_mistaken_for_a_missing_crd(module_runner, namespace):
    obj = configmap(namespace + "-absent")
    result = module_runner("resources", {"definitions": [obj]})
    assert result.get("failed") and "namespace %s-absent does not exist" % namespace in result["msg"], result
    # In check mode (a play whose namespace task did not really run) the object would be created.
    result = module_runner("resources", {"definitions": [obj]}, check_mode=True)
    assert not result.get("failed") and result["resources"][0]["action"] == "created", result


def test_batch_checks_state_dependent_requirements_before_anything(module_runner, namespace, getter):
    """triton_server requires model_repository with state=present: in a batch too, checked for every
    element before the first is applied."""
    good = {"name": "t1", "namespace": namespace, "model_repository": "gs://bucket/models"}
    bad = {"name": "t2", "namespace": namespace}
    result = module_runner("triton_server", {"batch": [good, bad], "wait": False})
    assert result.get("failed") and "batch[1] t2" in result["msg"] and "model_repository" in result["msg"], result
    assert getter("apps/v1", "Deployment", "t1", namespace) is None
    result = module_runner("triton_server", {"batch": [good], "wait": False})
    assert not result.get("failed") and result["changed"], result
