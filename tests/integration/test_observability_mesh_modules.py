"""dcgm_exporter, tensorboard and istio_policy against the local control plane (real scheduler,
DaemonSet controller, Istio and Prometheus Operator CRD schemas)."""

import os
import re

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError
from ansible_collections.aiinfra.cluster.plugins.modules.dcgm_exporter import operator_exporter

UNREACHABLE = {"host": "https://127.0.0.1:9", "validate_certs": False}


# The exporter needs the nvidia RuntimeClass on GPU clusters (conftest.nvidia_runtime_class); the
# Istio and Prometheus Operator CRDs come from ../shared (skipped on a plain clone, tests/conftest.py).
pytestmark = [pytest.mark.usefixtures("nvidia_runtime_class"), pytest.mark.upstream]


def test_dcgm_exporter_runs_on_gpu_nodes_only(module_runner, kube, namespace, getter):
    # On a shared control plane a GPU Operator test may have left its exporter or ClusterPolicy.
    args = {"namespace": namespace, "wait_timeout": 90, "on_gpu_operator": "deploy" if operator_exporter(kube) else "fail"}
    check = module_runner("dcgm_exporter", args, check_mode=True)
    assert check["changed"] is True, check
    assert getter("apps/v1", "DaemonSet", "dcgm-exporter", namespace) is None

    result = module_runner("dcgm_exporter", args, diff=True)
    assert result.get("failed") is not True, result.get("msg")
    assert [r["kind"] for r in result["resources"]] == ["DaemonSet", "Service", "ServiceMonitor"]
    assert result["service_monitor"] is True
    assert result["diff"] and "managedFields" not in str(result["diff"])

    nodes = kube.get("/api/v1/nodes")["items"]
    gpu_nodes = set(n["metadata"]["name"] for n in nodes if int(n["status"]["capacity"].get("nvidia.com/gpu", "0")) > 0)
    cpu_nodes = set(n["metadata"]["name"] for n in nodes) - gpu_nodes
    assert gpu_nodes and cpu_nodes
    pods = kube.get("/api/v1/namespaces/%s/pods" % namespace, query={"labelSelector": "app.kubernetes.io/name=dcgm-exporter"})["items"]
    placed = [p["spec"]["nodeName"] for p in pods]
    assert sorted(placed) == sorted(gpu_nodes), placed
    ds = getter("apps/v1", "DaemonSet", "dcgm-exporter", namespace)
    assert ds["status"]["desiredNumberScheduled"] == len(gpu_nodes) and ds["status"]["numberAvailable"] == len(gpu_nodes)
    caps = ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]
    assert caps["add"] == ["SYS_ADMIN"]
    # What the API server stores, and the pods it admitted, carry the NVIDIA runtime and every GPU.
    assert ds["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"
    for pod in pods:
        assert pod["spec"]["runtimeClassName"] == "nvidia"
        env = dict((e["name"], e.get("value")) for e in pod["spec"]["containers"][0]["env"])
        assert env["NVIDIA_VISIBLE_DEVICES"] == "all" and env["DCGM_EXPORTER_KUBERNETES"] == "true"
    monitor = getter("monitoring.coreos.com/v1", "ServiceMonitor", "dcgm-exporter", namespace)
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"

    assert module_runner("dcgm_exporter", args)["changed"] is False

    gone = module_runner("dcgm_exporter", dict(args, state="absent"))
    assert gone["changed"] is True
    assert getter("apps/v1", "DaemonSet", "dcgm-exporter", namespace) is None


def test_dcgm_exporter_security_follows_pod_mapping_and_runtime_class_is_checked(module_runner, kube, namespace, getter):
    base = {"namespace": namespace, "wait": False, "service_monitor": "false", "on_gpu_operator": "deploy"}
    missing = module_runner("dcgm_exporter", dict(base, name="rc", runtime_class_name="nvidia-not-installed"))
    assert missing["failed"] is True
    assert "option runtime_class_name" in missing["msg"] and "nvidia-not-installed" in missing["msg"], missing["msg"]
    assert getter("apps/v1", "DaemonSet", "rc", namespace) is None
    assert not any(v in missing["api_requests"] for v in ("POST", "PATCH")), missing["api_requests"]

    mapped = module_runner("dcgm_exporter", dict(base, name="mapped", profiling_metrics=False))
    assert mapped.get("failed") is not True, mapped.get("msg")
    ctr = getter("apps/v1", "DaemonSet", "mapped", namespace)["spec"]["template"]["spec"]["containers"][0]
    # The kubelet's pod-resources socket is root's: the mapping runs as root, with no capability.
    assert ctr["securityContext"]["runAsUser"] == 0 and ctr["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert [m["mountPath"] for m in ctr["volumeMounts"]] == ["/var/lib/kubelet/pod-resources"]

    plain = module_runner("dcgm_exporter", dict(base, name="plain", profiling_metrics=False, pod_resources=False, runtime_class_name=""))
    assert plain.get("failed") is not True, plain.get("msg")
    pod = getter("apps/v1", "DaemonSet", "plain", namespace)["spec"]["template"]["spec"]
    assert pod["containers"][0]["securityContext"]["runAsNonRoot"] is True and "volumeMounts" not in pod["containers"][0]
    assert "runtimeClassName" not in pod and "volumes" not in pod
    assert module_runner("dcgm_exporter", dict(base, name="plain", profiling_metrics=False, pod_resources=False, runtime_class_name=""))["changed"] is False


def test_dcgm_exporter_refuses_next_to_the_gpu_operator(module_runner, kube, namespace, getter):
    operator_ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "nvidia-dcgm-exporter", "labels": {"app": "nvidia-dcgm-exporter"}},
        "spec": {
            "selector": {"matchLabels": {"app": "nvidia-dcgm-exporter"}},
            "template": {
                "metadata": {"labels": {"app": "nvidia-dcgm-exporter"}},
                "spec": {
                    "nodeSelector": {"no-such-node": "x"},
                    "containers": [{"name": "e", "image": "nvcr.io/nvidia/k8s/dcgm-exporter:4.6.0-4.8.3-distroless"}],
                },
            },
        },
    }
    kube.request("POST", "/apis/apps/v1/namespaces/%s/daemonsets" % namespace, body=operator_ds)
    try:
        refused = module_runner("dcgm_exporter", {"namespace": namespace, "name": "mine", "wait": False})
        assert refused["failed"] is True
        assert "GPU Operator already provides a DCGM exporter" in refused["msg"] and "on_gpu_operator" in refused["msg"]
        assert getter("apps/v1", "DaemonSet", "mine", namespace) is None

        skipped = module_runner("dcgm_exporter", {"namespace": namespace, "name": "mine", "on_gpu_operator": "skip"})
        assert skipped["changed"] is False and "nvidia-dcgm-exporter" in skipped["skipped_reason"]
        assert getter("apps/v1", "DaemonSet", "mine", namespace) is None

        forced = module_runner(
            "dcgm_exporter", {"namespace": namespace, "name": "mine", "wait": False, "on_gpu_operator": "deploy", "service_monitor": "false"}
        )
        assert forced.get("failed") is not True, forced.get("msg")
        assert getter("apps/v1", "DaemonSet", "mine", namespace) is not None
    finally:
        # Gone at once, not with the namespace: other tests look for this label cluster-wide.
        kube.delete("/apis/apps/v1/namespaces/%s/daemonsets/nvidia-dcgm-exporter" % namespace)


def test_tensorboard_rolls_out_behind_istio_policies(module_runner, getter, namespace):
    args = {
        "name": "tb",
        "namespace": namespace,
        "log_dir_uri": "gs://ml-runs/resnet",
        "storage_secret": "gcs-reader",
        "istio": {"enabled": True, "allow_principals": ["cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"]},
        "wait_timeout": 90,
    }
    check = module_runner("tensorboard", args, check_mode=True)
    assert check["changed"] is True and getter("apps/v1", "Deployment", "tb", namespace) is None
    result = module_runner("tensorboard", args)
    assert result.get("failed") is not True, result.get("msg")
    assert result["url"] == "http://tb.%s.svc:6006/" % namespace
    dep = getter("apps/v1", "Deployment", "tb", namespace)
    assert dep["status"]["availableReplicas"] == 1
    assert "--logdir=gs://ml-runs/resnet" in dep["spec"]["template"]["spec"]["containers"][0]["command"]
    authz = getter("security.istio.io/v1", "AuthorizationPolicy", "tb", namespace)
    assert authz["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert getter("security.istio.io/v1", "PeerAuthentication", "tb", namespace)["spec"]["mtls"]["mode"] == "STRICT"
    assert module_runner("tensorboard", args)["changed"] is False


def test_istio_policies_accepted_by_the_real_crd_schema(module_runner, getter, namespace):
    args = {
        "name": "triton",
        "namespace": namespace,
        "selector": {"app": "triton"},
        "peer_authentication": {"mode": "STRICT", "port_level_mtls": {"8002": "PERMISSIVE"}},
        "request_authentication": {
            "jwt_rules": [{"issuer": "https://auth.example.com/", "jwks_uri": "https://auth.example.com/jwks.json", "audiences": ["triton"]}]
        },
        "authorization": {
            "action": "ALLOW",
            "rules": [
                {
                    "principals": ["cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"],
                    "methods": ["GET", "POST"],
                    "paths": ["/v2/*"],
                    "ports": ["8000"],
                    "when": [{"key": "request.auth.claims[iss]", "values": ["https://auth.example.com/"]}],
                },
                {"service_accounts": ["ml-serving/scraper"], "ports": ["8002"]},
            ],
        },
    }
    check = module_runner("istio_policy", args, check_mode=True)
    assert check.get("failed") is not True, check.get("msg")
    assert getter("security.istio.io/v1", "AuthorizationPolicy", "triton", namespace) is None

    result = module_runner("istio_policy", args)
    assert result["changed"] is True, result
    authz = getter("security.istio.io/v1", "AuthorizationPolicy", "triton", namespace)
    assert authz["spec"]["rules"][0]["to"][0]["operation"]["paths"] == ["/v2/*"]
    assert authz["spec"]["rules"][1]["from"][0]["source"] == {"serviceAccounts": ["ml-serving/scraper"]}
    peer = getter("security.istio.io/v1", "PeerAuthentication", "triton", namespace)
    assert peer["spec"]["portLevelMtls"] == {"8002": {"mode": "PERMISSIVE"}}
    req = getter("security.istio.io/v1", "RequestAuthentication", "triton", namespace)
    assert req["spec"]["jwtRules"][0]["jwksUri"] == "https://auth.example.com/jwks.json"
    assert module_runner("istio_policy", args)["changed"] is False

    waypoint = module_runner(
        "istio_policy",
        {
            "name": "ro",
            "namespace": namespace,
            "target_refs": [{"kind": "Service", "name": "model-api"}],
            "authorization": {"action": "DENY", "rules": [{"methods": ["PUT", "DELETE"]}]},
        },
    )
    assert waypoint.get("failed") is not True, waypoint.get("msg")
    assert getter("security.istio.io/v1", "AuthorizationPolicy", "ro", namespace)["spec"]["targetRefs"] == [
        {"group": "", "kind": "Service", "name": "model-api"}
    ]

    gone = module_runner("istio_policy", dict(args, state="absent"))
    assert gone["changed"] is True
    assert getter("security.istio.io/v1", "PeerAuthentication", "triton", namespace) is None


def test_the_crd_itself_rejects_what_we_reject_first(kube, namespace):
    """The CRD's own rule for selector + targetRefs, to show our early check matches Istio's."""
    bad = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "both"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "targetRefs": [{"group": "", "kind": "Service", "name": "s"}]},
    }
    try:
        kube.request("POST", "/apis/security.istio.io/v1/namespaces/%s/authorizationpolicies" % namespace, query={"dryRun": "All"}, body=bad)
        raise AssertionError("the CRD accepted selector + targetRefs")
    except ApiError as exc:
        assert "only one of targetRefs or selector can be set" in str(getattr(exc, "body", exc))


def test_rejected_combinations_fail_before_any_request(module_runner):
    cases = [
        ({"selector": {"app": "x"}, "target_refs": [{"kind": "Service", "name": "s"}], "authorization": {"rules": []}}, "mutually exclusive"),
        ({"authorization": {"action": "CUSTOM", "rules": [{"paths": ["/"]}]}}, "provider"),
        ({"authorization": {"action": "DENY", "provider": "ext", "rules": [{"paths": ["/"]}]}}, "only valid with action CUSTOM"),
        ({"peer_authentication": {"port_level_mtls": {"80": "STRICT"}}}, "needs selector"),
        ({"target_refs": [{"kind": "Service", "name": "s"}], "peer_authentication": {}}, "PeerAuthentication has no targetRefs"),
        ({"authorization": {"rules": [{"service_accounts": ["a/b"], "principals": ["c"]}]}}, "service_accounts"),
    ]
    for params, words in cases:
        result = module_runner("istio_policy", dict({"name": "p", "namespace": "x"}, **dict(params, **UNREACHABLE)))
        assert result["failed"] is True, params
        assert words in result["msg"] and "cannot reach" not in result["msg"], result["msg"]


PLAYBOOK = """
- name: Workload roles from inventory-shaped variables
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    training_namespace: {ns}
    training_wait_timeout: 90
    training_jobs:
      - name: ddp
        script: /workspace/train.py
        nodes: 2
        gpus_per_node: 4
      - name: tfw
        framework: tensorflow
        script: /workspace/train_tf.py
        nodes: 2
        gpus_per_node: 0
    observability_namespace: {ns}
    observability_dcgm_on_gpu_operator: deploy
    observability_tensorboard_namespace: {ns}
    observability_tensorboards:
      - name: tb
        log_dir_uri: gs://runs/ddp
        istio:
          enabled: true
          allow_namespaces: [{ns}]
    mesh_security_strict_mtls_namespaces: [{ns}]
    mesh_security_policies:
      - name: triton
        namespace: {ns}
        selector: {{app: triton}}
        authorization:
          rules:
            - principals: [cluster.local/ns/istio-system/sa/gw]
              methods: [GET]
  roles:
    - aiinfra.cluster.training
    - aiinfra.cluster.observability
    - aiinfra.cluster.mesh_security
"""


def _play(path, *extra):
    import subprocess
    import sys

    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", path] + list(extra)
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=600, check=False)
    return proc.returncode, proc.stdout.decode()


def test_workload_roles_converge_then_change_nothing(getter, namespace, tmp_path):
    playbook = tmp_path / "workloads.yml"
    playbook.write_text(PLAYBOOK.format(ns=namespace))
    rc, out = _play(str(playbook))
    assert rc == 0, out[-3000:]
    assert getter("batch/v1", "Job", "ddp", namespace)["status"]["succeeded"] == 2
    assert getter("batch/v1", "Job", "tfw", namespace) is not None
    assert getter("apps/v1", "DaemonSet", "dcgm-exporter", namespace) is not None
    assert getter("apps/v1", "Deployment", "tb", namespace)["status"]["availableReplicas"] == 1
    assert getter("security.istio.io/v1", "PeerAuthentication", "default", namespace)["spec"]["mtls"]["mode"] == "STRICT"
    assert getter("security.istio.io/v1", "AuthorizationPolicy", "triton", namespace) is not None

    rc, out = _play(str(playbook))
    assert rc == 0, out[-3000:]
    recap = [line for line in out.splitlines() if line.startswith("localhost")][-1]
    assert "changed=0" in recap and "failed=0" in recap, recap

    # A bad entry is refused by the module, which checks every element before it sends anything.
    rc, out = _play(str(playbook), "-e", '{"training_jobs": [{"name": "bad", "script": "x", "nodes": "two"}]}')
    assert rc != 0 and "argument 'nodes' is of type str found in 'batch'" in out, out[-3000:]
    assert getter("batch/v1", "Job", "bad", namespace) is None


def warning_texts(result):
    """A module's warnings as text (ansible-core 2.19 returns them as structured summaries)."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings") or []]


def test_missing_istio_and_prometheus_crds_warn_once_and_apply_nothing(module_runner, control_plane):
    """On a cluster without the Istio and Prometheus Operator CRDs (a plain clone's control plane),
    istio_policy with on_missing_crd=warn and dcgm_exporter's ServiceMonitor=auto each say what to
    install in one warning, instead of a role's own report task; on_missing_crd=fail fails."""
    with control_plane("aiinfra-nocrds-", "--crds-dir", "", "--no-operators", "--gpu-nodes", "1") as state:
        auth = {"kubeconfig": os.path.join(state, "kubeconfig")}
        policies = [{"name": "m-%d" % index, "namespace": "serving", "peer_authentication": {"mode": "STRICT"}} for index in range(3)]
        result = module_runner("istio_policy", dict(auth, batch=policies, on_missing_crd="warn", create_namespaces=True))
        assert result.get("failed") is not True and result["changed"] is True, result.get("msg")  # the namespace was created
        warnings = warning_texts(result)
        assert len(warnings) == 1, warnings
        assert re.match(r"Istio policies not applied: .*kind PeerAuthentication is not installed \(CRD peerauthentications\.security\.istio\.io\)"
                        r".*Install Istio first", warnings[0]), warnings
        assert all("peerauthentications.security.istio.io" in element["skipped_reason"] for element in result["batch"])

        failed = module_runner("istio_policy", dict(auth, batch=policies))
        assert failed.get("failed") and "batch[0] m-0" in failed["msg"] and "peerauthentications.security.istio.io" in failed["msg"], failed

        dcgm = module_runner("dcgm_exporter", dict(auth, namespace="gpu-monitoring", create_namespaces=True, runtime_class_name="", wait=False))
        assert dcgm.get("failed") is not True and dcgm["service_monitor"] is False, dcgm.get("msg")
        assert [w for w in warning_texts(dcgm) if w.startswith("No ServiceMonitor for the DCGM exporter")], dcgm["warnings"]
        assert [r["kind"] for r in dcgm["resources"]] == ["DaemonSet", "Service"]
