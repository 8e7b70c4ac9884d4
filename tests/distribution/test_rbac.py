# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The least-privilege accounts in rbac/: applied to the local control plane, a token for each
service account obtained through the TokenRequest API (as `kubectl create token` does), a
kubeconfig written with only that token, and the collection run with it. The site succeeds with
the platform account; what each account must not do is checked with SelfSubjectAccessReviews and
with a real request that must be refused."""

import glob
import os
import re

import pytest

from conftest import RBAC_FILES, ROOT, ansible_playbook, clean_env, rbac_manifests, recap, run, tail, token_kubeconfig, tool


# (verb, group, resource, subresource, namespace) -> allowed?
PLATFORM_ACCESS = [
    (("create", "apiextensions.k8s.io", "customresourcedefinitions", "", ""), True),
    (("escalate", "rbac.authorization.k8s.io", "clusterroles", "", ""), True),
    (("patch", "", "nodes", "", ""), True),
    (("create", "", "secrets", "", "gpu-operator"), True),
    (("create", "", "pods", "exec", "kube-system"), False),
    (("get", "", "nodes", "proxy", ""), False),
    (("delete", "", "nodes", "", ""), False),
    (("create", "", "serviceaccounts", "token", "kube-system"), False),
    (("create", "certificates.k8s.io", "certificatesigningrequests", "", ""), False),
    (("create", "storage.k8s.io", "storageclasses", "", ""), False),
    (("create", "", "persistentvolumes", "", ""), False),
    # Kueue's chart always registers its visibility API (an APIService); the queues are Kueue's kinds.
    (("create", "apiregistration.k8s.io", "apiservices", "", ""), True),
    (("create", "kueue.x-k8s.io", "clusterqueues", "", ""), True),
]
WORKLOADS_ACCESS = [
    (("create", "serving.kserve.io", "inferenceservices", "", "team-a"), True),
    (("patch", "data.fluid.io", "datasets", "", "team-a"), True),
    (("create", "", "secrets", "", "team-a"), True),
    (("list", "", "nodes", "", ""), True),
    (("create", "apiextensions.k8s.io", "customresourcedefinitions", "", ""), False),
    (("create", "rbac.authorization.k8s.io", "clusterroles", "", ""), False),
    (("create", "rbac.authorization.k8s.io", "rolebindings", "", "team-a"), False),
    (("create", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", ""), False),
    (("create", "scheduling.k8s.io", "priorityclasses", "", ""), False),
    (("patch", "", "nodes", "", ""), False),
    (("create", "", "pods", "exec", "team-a"), False),
    (("delete", "", "namespaces", "", ""), False),
]


def test_rbac_folder_is_the_documented_set():
    assert sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "rbac", "*.yml"))) == sorted(RBAC_FILES)
    with open(os.path.join(ROOT, "docs", "security.md")) as handle:
        text = handle.read()
    for name in RBAC_FILES:
        assert "rbac/" + name in text, "docs/security.md does not explain rbac/%s" % name


def test_no_wildcard_verbs_or_core_resources():
    """`*` is allowed only for resources of the operator API groups the collection installs."""
    for obj in rbac_manifests():
        for rule in obj.get("rules", []):
            assert "*" not in rule.get("verbs", []), rule
            assert "*" not in rule.get("apiGroups", []), rule
            if "*" in rule.get("resources", []):
                assert "" not in rule["apiGroups"] and not [g for g in rule["apiGroups"] if g.endswith("k8s.io") and "x-k8s" not in g], rule


def access_review(client, verb, group, resource, subresource, namespace):
    attrs = {"verb": verb, "group": group, "resource": resource}
    if subresource:
        attrs["subresource"] = subresource
    if namespace:
        attrs["namespace"] = namespace
    answer = client.request(
        "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        body={"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": {"resourceAttributes": attrs}},
    )
    return bool(answer["status"].get("allowed"))


def client_for(path):
    from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params

    return KubeClient(config_from_params({"kubeconfig": path}))


@pytest.mark.parametrize("account,table", [("aiinfra-platform", PLATFORM_ACCESS), ("aiinfra-workloads", WORKLOADS_ACCESS)], ids=["platform", "workloads"])
def test_accounts_hold_only_what_they_need(rbac_applied, kube, kubeconfig, tmp_path, account, table):
    path, _token = token_kubeconfig(kube, kubeconfig, account, tmp_path / "kubeconfig")
    client = client_for(path)
    try:
        wrong = [(attrs, expected) for attrs, expected in table if access_review(client, *attrs) != expected]
    finally:
        client.close()
    assert not wrong, "%s: (request, expected allowed) that the API server answers differently: %s" % (account, wrong)


@pytest.mark.upstream
def test_site_runs_with_the_platform_account_only(rbac_applied, kube, kubeconfig, installed_collections, tmp_path):
    """The whole site.yml (platform tier, GPU inventory, ...) with nothing but the platform token."""
    path, token = token_kubeconfig(kube, kubeconfig, "aiinfra-platform", tmp_path / "kubeconfig")
    rc, out = ansible_playbook(
        ["aiinfra.cluster.site", "-i", os.path.join(ROOT, "inventories", "local", "hosts.yml")],
        installed_collections, tmp_path, K8S_AUTH_KUBECONFIG=path, AIINFRA_REPO_DIR=ROOT,
    )
    assert rc == 0, tail(out, 120)
    assert recap(out)["localhost"]["failed"] == 0, tail(out)
    assert "PLAY [Platform tier" in out and "TASK [aiinfra.cluster." in out, "the platform tier did not run:\n%s" % tail(out)
    assert token not in out


def test_workloads_account_reads_gpus_and_is_refused_cluster_changes(rbac_applied, kube, kubeconfig, installed_collections, tmp_path):
    """The inventory report works with the workloads token; a CRD apply through the collection
    fails cleanly with the API server's refusal, not a traceback."""
    path, _token = token_kubeconfig(kube, kubeconfig, "aiinfra-workloads", tmp_path / "kubeconfig")
    rc, out = ansible_playbook(
        ["aiinfra.cluster.gpu_inventory", "-i", os.path.join(ROOT, "inventories", "local", "hosts.yml")],
        installed_collections, tmp_path, K8S_AUTH_KUBECONFIG=path, AIINFRA_REPO_DIR=ROOT,
    )
    assert rc == 0, tail(out)
    assert re.search(r"\d+ GPU nodes, \d+ allocatable GPUs", out), tail(out)

    rc, out = run(
        [tool("ansible"), "localhost", "-m", "aiinfra.cluster.resources", "-a",
         '{"definitions": [{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "aiinfra-rbac-probe"}, "value": 10}]}'],
        cwd=str(tmp_path), env=clean_env(ANSIBLE_COLLECTIONS_PATH=installed_collections, K8S_AUTH_KUBECONFIG=path),
    )
    assert rc != 0, out
    assert "forbidden" in out.lower() and "Traceback" not in out, out
