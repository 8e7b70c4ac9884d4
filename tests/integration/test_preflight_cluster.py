"""The preflight against the real local control plane: the embedded inventory passes, every check
refuses what would fail later and passes what is fine, nothing is written (the API server's own
request counters). Also the waits that fail fast on a missing PVC/Secret. The preflight over 1000
simulated GPU nodes is in test_scale.py, on its big cluster."""

import json
import os
import re
import subprocess
import time
import uuid

import yaml
from polling import wait_until


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(ROOT, "playbooks", "preflight.yml")
METRIC = re.compile(r'^apiserver_request_total\{(.*)\} ([0-9.e+]+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
WRITES = ("POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION")
# Requests the preflight sends as POST that the API server answers without storing anything.
REVIEWS = ("selfsubjectrulesreviews", "selfsubjectaccessreviews")
# Kinds the cluster's own controllers write in the background (never the preflight); KServe's
# updates its predictors' Deployments and HPAs when it reconciles an InferenceService.
BACKGROUND = ("leases", "events", "pods", "jobs", "workloads", "endpointslices", "endpoints", "replicasets", "deployments",
              "horizontalpodautoscalers")
PREFLIGHT_LISTS = ("nodes", "customresourcedefinitions", "resourcequotas", "persistentvolumeclaims", "secrets", "serviceaccounts",
                   "priorityclasses", "localqueues", "datasets")
CUDA13_IMAGE = "docker.io/pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime"


def scrape(kube):
    counters = {}
    for line in kube.get("/metrics").splitlines():
        match = METRIC.match(line)
        if match:
            counters[tuple(sorted(LABEL.findall(match.group(1))))] = float(match.group(2))
    return counters


def delta(before, after):
    """(verb, resource, subresource) -> requests between two scrapes."""
    out = {}
    for labels, value in after.items():
        count = int(round(value - before.get(labels, 0)))
        if count > 0:
            lab = dict(labels)
            key = (lab.get("verb"), lab.get("resource", ""), lab.get("subresource", ""))
            out[key] = out.get(key, 0) + count
    return out


def preflight(kubeconfig, *extra, inventory="local", check=False, extra_vars=None, tmp_path=None):
    """ansible-playbook playbooks/preflight.yml; returns (rc, output, registered report)."""
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=kubeconfig, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="json",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"))
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", inventory if os.path.isabs(inventory) else
           os.path.join(ROOT, "inventories", inventory), PLAYBOOK] + list(extra)
    if check:
        cmd.append("--check")
    if extra_vars is not None:
        path = os.path.join(str(tmp_path), "extra-%s.yml" % uuid.uuid4().hex[:6])
        with open(path, "w") as handle:
            yaml.safe_dump(extra_vars, handle)
        cmd += ["-e", "@" + path]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=300, check=False)
    out = proc.stdout.decode()
    data = json.loads(out[out.index("{"):])
    report = None
    for play in data["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if "verdict" in result:
                    report = result
    return proc.returncode, data, report


def rows(report, check=None, verdict=None):
    """The table's rows as (check, object, verdict, why, fix) tuples, filtered."""
    out = []
    for line in report["table"][2:]:
        cells = [c.strip() for c in line.split(" | ")]
        cells += [""] * (5 - len(cells))
        if (check is None or cells[0] == check) and (verdict is None or cells[2] == verdict):
            out.append(tuple(cells[:5]))
    return out


def no_namespace_terminating(kube, timeout=120):
    """Earlier tests' namespaces gone: the namespace controller deletes every kind of object in a
    terminating namespace, which a request count taken meanwhile would hold."""
    wait_until("no namespace terminating", lambda: not [n for n in kube.get("/api/v1/namespaces")["items"]
                                                        if (n.get("status") or {}).get("phase") == "Terminating"], timeout)


def test_embedded_inventory_passes_read_only_also_in_check_mode(kube, kubeconfig, tmp_path):
    no_namespace_terminating(kube)
    before = scrape(kube)
    rc, data, report = preflight(kubeconfig, tmp_path=tmp_path)
    after = scrape(kube)
    assert rc == 0 and report["verdict"] == "ok", report and report["table"]
    assert not rows(report, verdict="fail") and not rows(report, verdict="warn"), report["table"]
    assert data["stats"]["localhost"]["changed"] == 0
    checks = set(r[0] for r in rows(report))
    assert {"variables", "api", "kubernetes version", "permissions", "crds", "gpu capacity", "gpu quota", "mig", "driver"} <= checks, checks
    # No write: the only non-read requests of the run are the permission reviews, which store nothing.
    requests = delta(before, after)
    # Controllers keep writing meanwhile (the garbage collector and the TTL controller delete earlier
    # tests' pods and jobs, Kueue its Workloads): those kinds are left out.
    writes = dict((k, v) for k, v in requests.items() if k[0] in WRITES and k[1] not in REVIEWS + BACKGROUND and not k[2])
    assert writes == {}, writes
    reviews = sum(v for k, v in requests.items() if k[1] == "selfsubjectrulesreviews")
    assert reviews == report["api_requests"]["POST"] >= 1, (requests, report["api_requests"])
    assert set(report["api_requests"]) <= {"GET", "POST"}

    rc, data, checked = preflight(kubeconfig, check=True, tmp_path=tmp_path)
    assert rc == 0 and checked["verdict"] == "ok" and data["stats"]["localhost"]["changed"] == 0
    assert len(checked["table"]) == len(report["table"])


def test_modes_enforce_warn_off(kubeconfig, tmp_path):
    bad = {"training_jobs": [{"name": "nine", "namespace": "team-research", "gpus_per_node": 9, "gpu_product": "NVIDIA-H100-80GB-HBM3"}]}
    rc, data, report = preflight(kubeconfig, extra_vars=bad, tmp_path=tmp_path)
    assert rc != 0 and report["verdict"] == "fail" and "preflight refused the run before any change" in report["msg"]
    capacity = rows(report, "gpu capacity", "fail")
    assert capacity and "asks 9 nvidia.com/gpu per pod; the largest of the 4 NVIDIA-H100-80GB-HBM3 nodes has 8" in capacity[0][3], capacity
    rc, data, report = preflight(kubeconfig, "-e", "aiinfra_preflight=warn", extra_vars=bad, tmp_path=tmp_path)
    assert rc == 0 and report["verdict"] == "fail" and rows(report, "gpu capacity", "fail")
    rc, data, report = preflight(kubeconfig, "-e", "aiinfra_preflight=off", extra_vars=bad, tmp_path=tmp_path)
    assert rc == 0 and report is None


def test_every_bad_variable_in_one_report(kubeconfig, tmp_path):
    bad = {"observability_state": "maybe", "training_wait_timeout": "soon", "kserve_deployment_mode": "Serverless",
           "gpu_scheduling_teams": [{"name": "no-quota"}]}
    rc, _data, report = preflight(kubeconfig, extra_vars=bad, tmp_path=tmp_path)
    failed = rows(report, "variables", "fail")
    assert rc != 0 and len(failed) == 4, report["table"]
    text = " ".join(r[3] for r in failed)
    for name in ("observability_state", "training_wait_timeout", "kserve_deployment_mode", "gpu_quota"):
        assert name in text, text
    # A role the run leaves out is not validated.
    rc, _data, report = preflight(kubeconfig, "-e", "aiinfra_observability_enabled=false",
                                  extra_vars=dict((k, v) for k, v in bad.items() if k == "observability_state"), tmp_path=tmp_path)
    assert rc == 0 and not rows(report, "variables", "fail"), report["table"]


def test_unreachable_api_and_rejected_credentials(kubeconfig, tmp_path):
    with open(kubeconfig) as handle:
        config = yaml.safe_load(handle)
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = "https://127.0.0.1:9"
        if "certificate-authority" in cluster["cluster"]:
            cluster["cluster"]["certificate-authority"] = os.path.join(os.path.dirname(kubeconfig), cluster["cluster"]["certificate-authority"])
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(yaml.safe_dump(config))
    rc, _data, report = preflight(str(dead), tmp_path=tmp_path)
    api = rows(report, "api", "fail")
    assert rc != 0 and api and "cannot reach the Kubernetes API server" in api[0][3], report["table"]


def test_references_and_quota(kube, kubeconfig, namespace, tmp_path):
    jobs = {"training_jobs": [{"name": "refs", "namespace": namespace, "gpus_per_node": 4, "priority_class_name": "no-such-class",
                               "checkpoint": {"claim_name": "ckpt"}, "image_pull_secrets": ["pull"], "service_account_name": "trainer"}],
            "gpu_scheduling_teams": [{"name": namespace, "gpu_quota": 2}]}
    rc, _data, report = preflight(kubeconfig, extra_vars=jobs, tmp_path=tmp_path)
    missing = sorted(r[1] for r in rows(report, "references", "fail"))
    assert missing == ["PersistentVolumeClaim %s/ckpt" % namespace, "PriorityClass no-such-class", "Secret %s/pull" % namespace,
                       "ServiceAccount %s/trainer" % namespace], report["table"]
    assert rows(report, "gpu quota", "fail"), report["table"]
    claim = {"kind": "PersistentVolumeClaim", "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    for path, body in (("persistentvolumeclaims", claim),
                       ("secrets", {"kind": "Secret", "type": "Opaque"}), ("serviceaccounts", {"kind": "ServiceAccount"})):
        name = {"persistentvolumeclaims": "ckpt", "secrets": "pull", "serviceaccounts": "trainer"}[path]
        kube.request("POST", "/api/v1/namespaces/%s/%s" % (namespace, path), body=dict(body, apiVersion="v1", metadata={"name": name}))
    jobs["training_jobs"][0]["priority_class_name"] = "gpu-training"  # created by the run (gpu_scheduling)
    jobs["gpu_scheduling_teams"][0]["gpu_quota"] = 4
    rc, _data, report = preflight(kubeconfig, extra_vars=jobs, tmp_path=tmp_path)
    assert rc == 0 and rows(report, "references", "ok") and rows(report, "gpu quota", "ok"), report["table"]


def test_driver_and_mig_from_node_labels(module_runner, gpu_pool, kube, kubeconfig):
    product, names = gpu_pool(2)
    cuda = yaml.safe_load(open(os.path.join(ROOT, "meta", "compatibility.yml")))
    plan = {
        "workloads": {"training_jobs": [{"name": "t", "namespace": "default", "image": CUDA13_IMAGE, "gpu_product": product}]},
        "gpu_operator": {"in_run": True, "mig_strategy": "single", "mig_configs": {}},
        "cuda": {"min_driver": dict((str(k), v) for k, v in cuda["cuda_min_driver"]["branches"].items()), "images": cuda["cuda_images"]},
    }

    def label(name, labels):
        kube.request("PATCH", "/api/v1/nodes/%s" % name, body={"metadata": {"labels": labels}}, content_type="application/merge-patch+json")

    for name in names:
        label(name, {"nvidia.com/cuda.driver-version.major": "535", "nvidia.com/cuda.driver-version.full": "535.104.12"})
    refused = module_runner("preflight", {"kubeconfig": kubeconfig, "mode": "warn", "plan": plan})
    driver = [r for r in refused["checks"] if r["check"] == "driver"]
    assert driver[0]["verdict"] == "fail" and "CUDA 13.0 needs driver >= 580" in driver[0]["why"] and "535.104.12" in driver[0]["why"], driver
    for name in names:
        label(name, {"nvidia.com/cuda.driver-version.major": "580", "nvidia.com/cuda.driver-version.full": "580.95.05"})
    passed = module_runner("preflight", {"kubeconfig": kubeconfig, "mode": "warn", "plan": plan})
    assert [r["verdict"] for r in passed["checks"] if r["check"] == "driver"] == ["ok"], passed["checks"]

    assert [r["verdict"] for r in passed["checks"] if r["check"] == "mig"] == ["ok"]
    label(names[0], {"nvidia.com/mig.config": "all-balanced"})
    refused = module_runner("preflight", {"kubeconfig": kubeconfig, "mode": "enforce", "plan": plan})
    assert refused["failed"] and "one MIG profile per node" in refused["msg"], refused


def test_kubernetes_version_and_permissions(module_runner, kube, kubeconfig, namespace, tmp_path):
    plan = {"components": [{"name": "Future", "version": "1", "kubernetes_min": "1.99"}, {"name": "Now", "kubernetes_min": "1.30"}],
            "permissions": [{"source": "rbac/workloads.yml", "namespaces": [namespace],
                             "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create"]},
                                       {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}]}]}
    result = module_runner("preflight", {"kubeconfig": kubeconfig, "mode": "warn", "plan": plan})
    versions = dict((r["object"].split()[0], r["verdict"]) for r in result["checks"] if r["check"] == "kubernetes version")
    assert versions == {"Future": "fail", "Now": "ok"}, result["checks"]
    assert [r["verdict"] for r in result["checks"] if r["check"] == "permissions"] == ["ok"]

    # A ServiceAccount that may only read Secrets in the namespace.
    kube.request("POST", "/api/v1/namespaces/%s/serviceaccounts" % namespace,
                 body={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}})
    kube.request("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/roles" % namespace, body={
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]})
    kube.request("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings" % namespace, body={
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}]})
    token = kube.request("POST", "/api/v1/namespaces/%s/serviceaccounts/reader/token" % namespace,
                         body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}})["status"]["token"]
    with open(kubeconfig) as handle:
        config = yaml.safe_load(handle)
    cluster = dict(config["clusters"][0]["cluster"])
    if "certificate-authority" in cluster:
        cluster["certificate-authority"] = os.path.join(os.path.dirname(kubeconfig), cluster["certificate-authority"])
    reader = tmp_path / "reader.kubeconfig"
    reader.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "reader",
                                      "clusters": [{"name": "local", "cluster": cluster}], "users": [{"name": "reader", "user": {"token": token}}],
                                      "contexts": [{"name": "reader", "context": {"cluster": "local", "user": "reader"}}]}))
    result = module_runner("preflight", {"kubeconfig": str(reader), "mode": "enforce", "plan": dict(plan, components=[])})
    assert result.get("failed") and "table" in result, result
    denied = [line for line in result["table"] if line.startswith("permissions")]
    assert denied and "secrets: create" in denied[0] and "jobs.batch: create" in denied[0] and "get" not in denied[0].split("may not:")[1], denied


def test_wait_fails_fast_on_a_missing_pvc_or_secret(module_runner, kube, namespace):
    """A pod naming a PVC or Secret that does not exist fails the wait after the grace period,
    with the reason, not after wait_timeout; an existing (unbound) claim only times out."""
    def deployment(name, pod_spec):
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}}}

    container = {"name": "c", "image": "registry.local/x:1"}
    missing_pvc = deployment("no-pvc", {"containers": [dict(container, volumeMounts=[{"name": "d", "mountPath": "/d"}])],
                                        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "absent"}}]})
    env = {"AIINFRA_WAIT_REFERENCE_GRACE": "2"}
    started = time.monotonic()
    result = module_runner("resources", {"definitions": [missing_pvc], "wait_timeout": 120}, env=env)
    elapsed = time.monotonic() - started
    assert result.get("failed") and "PersistentVolumeClaim %s/absent, which does not exist" % namespace in result["msg"], result
    assert elapsed < 40, elapsed

    # A Secret in env, the pod bound to a node without a kubelet (so it stays unready, as a real
    # kubelet would keep it in CreateContainerConfigError).
    node = "no-kubelet-%s" % namespace[-5:]
    resources = {"cpu": "8", "memory": "8Gi", "pods": "10"}
    kube.request("POST", "/api/v1/nodes", body={"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}},
                                                "status": {"capacity": resources, "allocatable": dict(resources)}})
    try:
        missing_secret = deployment("no-secret", {"nodeName": node, "containers": [dict(
            container, env=[{"name": "K", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}])]})
        result = module_runner("resources", {"definitions": [missing_secret], "wait_timeout": 120}, env=env)
        assert result.get("failed") and "Secret %s/creds, which does not exist" % namespace in result["msg"], result
    finally:
        kube.delete("/api/v1/nodes/%s" % node)

    # The claim exists (unbound: no provisioner here): no early failure, the timeout names the scheduler's reason.
    kube.request("POST", "/api/v1/namespaces/%s/persistentvolumeclaims" % namespace, body={
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "present"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "none"}})
    unbound = deployment("unbound", {"containers": [dict(container, volumeMounts=[{"name": "d", "mountPath": "/d"}])],
                                     "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "present"}}]})
    result = module_runner("resources", {"definitions": [unbound], "wait_timeout": 8}, env=env)
    assert result.get("failed") and "not ready after 8s" in result["msg"] and "does not exist" not in result["msg"], result
