"""`site.yml --check --diff` previews the whole embedded site on an empty control plane (its own,
without the operators' controllers: check mode starts nothing they would reconcile): it succeeds,
reports what would change, and writes nothing. Waits on what the run would create are reported as
"would wait"; helm_release_info reads; each module's dry-run runs on the server."""

import os
import re
import subprocess

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The site's charts and CRDs come from ../shared (tests/conftest.py skips without it).
pytestmark = pytest.mark.upstream


@pytest.fixture(scope="module")
def empty_cluster(control_plane):
    with control_plane("aiinfra-check-", "--no-operators") as state:
        yield state, os.path.join(state, "kubeconfig")


def test_check_mode_previews_the_site_on_an_empty_cluster(empty_cluster):
    state, kubeconfig = empty_cluster
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=kubeconfig, AIINFRA_LOCAL_CLUSTER_DIR=state, ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"))
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", "local"),
           os.path.join(ROOT, "site.yml"), "--check", "--diff"]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:]
    recap = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out)
    assert recap and int(recap.group(4)) == 0 and int(recap.group(2)) > 0, out[-3000:]
    # The platform waits were previews: every chart and wait task of the platform tier ran.
    assert "TASK [aiinfra.cluster.kserve : Wait for the KServe controller]" in out, out[-3000:]
    # Nothing was written: no release, none of the site's namespaces, no workload.
    kube = KubeClient(config_from_params({"kubeconfig": kubeconfig}))
    try:
        assert kube.get("/api/v1/secrets", query={"labelSelector": "owner=helm"})["items"] == []
        for namespace in ("kserve", "gpu-operator", "kubeflow-system"):
            with pytest.raises(ApiError) as missing:
                kube.get("/api/v1/namespaces/%s" % namespace)
            assert missing.value.status == 404
        assert kube.get("/apis/serving.kserve.io/v1beta1/inferenceservices")["items"] == []
    finally:
        kube.close()
