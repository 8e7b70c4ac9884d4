"""helm_release_info against releases the real helm binary installs on the local control plane:
the answer must match what helm would do (nothing for the same chart and values; an upgrade for
another version, other values or a failed revision), read with a few GETs."""

import os
import shutil
import subprocess

import pytest

CHART = """apiVersion: v2
name: tiny
version: {version}
appVersion: "1.0"
"""
TEMPLATE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Values.name | default "tiny" }}
data:
  size: {{ .Values.size | default 1 | quote }}
"""


def make_chart(root, version):
    path = root / ("tiny-%s" % version)
    (path / "templates").mkdir(parents=True)
    (path / "Chart.yaml").write_text(CHART.format(version=version))
    (path / "templates" / "cm.yaml").write_text(TEMPLATE)
    return str(path)


def helm(kubeconfig, *args, check=True):
    binary = shutil.which("helm")
    assert binary, "helm is built by tools/gobuild/build.sh (put its directory on PATH)"
    proc = subprocess.run([binary, "--kubeconfig", kubeconfig] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120, check=False)
    assert proc.returncode == 0 or not check, proc.stdout
    return proc


@pytest.fixture
def chart(tmp_path):
    return make_chart(tmp_path, "0.1.0")


def states(module_runner, releases):
    res = module_runner("helm_release_info", {"releases": releases})
    assert res.get("failed") is not True, res.get("msg")
    return res


def test_release_state_matches_what_helm_would_do(module_runner, kubeconfig, namespace, chart, tmp_path):
    want = {"name": "tiny", "namespace": namespace, "chart_ref": chart, "chart_version": "0.1.0", "values": {"size": 2}}
    res = states(module_runner, [want])
    assert res["out_of_date"] == ["%s/tiny" % namespace] and res["releases"][0]["reasons"] == ["not installed"]
    assert res["installed"] == [] and res["not_deployed"] == [] and res["changed"] is False
    values = tmp_path / "values.yaml"
    values.write_text("size: 2\n")
    helm(kubeconfig, "install", "tiny", chart, "-n", namespace, "-f", str(values))
    res = states(module_runner, [want, dict(want, values={"size": 3}), dict(want, chart_ref="repo/tiny")])
    assert [r["up_to_date"] for r in res["releases"]] == [True, False, True], res["releases"]
    assert res["releases"][1]["reasons"] == ["values differ"]
    assert res["releases"][0]["revision"] == 1 and res["releases"][0]["chart"] == "tiny-0.1.0"
    # One metadata-only list of the namespace's release Secrets and one read per release entry.
    assert res["api_requests"] == {"GET": 4}, res["api_requests"]
    # A newer chart version wanted: helm would upgrade.
    newer = make_chart(tmp_path, "0.2.0")
    res = states(module_runner, [dict(want, chart_ref=newer, chart_version="0.2.0")])
    assert res["releases"][0]["reasons"] == ["chart tiny-0.1.0 installed, tiny-0.2.0 wanted"]
    # A chart directory that does not hold the pinned version is refused before any request.
    res = module_runner("helm_release_info", {"releases": [dict(want, chart_version="0.3.0")]})
    assert res.get("failed") and "holds tiny version 0.1.0, not the pinned 0.3.0" in res["msg"] and res["api_requests"] == {}, res
    # A failed upgrade (the API server rejects the ConfigMap's name): out of date whatever the values.
    failing = tmp_path / "failing.yaml"
    failing.write_text("size: 2\nname: Not_A_Valid_Name\n")
    assert helm(kubeconfig, "upgrade", "tiny", chart, "-n", namespace, "-f", str(failing), check=False).returncode != 0
    res = states(module_runner, [want])
    assert res["releases"][0]["reasons"] == ["latest revision 2 is failed"] and res["releases"][0]["installed"] is True
    # ... and to be redone by force: with the same values kubernetes.core.helm would report it unchanged.
    assert res["not_deployed"] == ["%s/tiny" % namespace]
    helm(kubeconfig, "upgrade", "tiny", chart, "-n", namespace, "-f", str(values), "--force")
    res = states(module_runner, [want])
    assert res["not_deployed"] == [] and res["out_of_date"] == [] and res["releases"][0]["revision"] == 3, res
    # state absent: up to date only once helm uninstalled it.
    res = states(module_runner, [dict(want, state="absent")])
    assert res["out_of_date"] == ["%s/tiny" % namespace]
    helm(kubeconfig, "uninstall", "tiny", "-n", namespace)
    res = states(module_runner, [dict(want, state="absent")])
    assert res["out_of_date"] == [] and res["installed"] == []


def test_module_is_in_the_k8s_action_group():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "meta", "runtime.yml")) as handle:
        assert "    - helm_release_info\n" in handle.read()
