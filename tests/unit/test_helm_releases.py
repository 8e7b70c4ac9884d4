"""helm_release_info's reading of charts and of Helm's release records (no cluster: a fake
client that serves what the API server would)."""

import base64
import gzip
import json
import tarfile

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils import helm_releases
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError

CHART_YAML = "apiVersion: v2\nname: tiny\nversion: 0.1.0\nappVersion: \"1.0\"\n"


def chart_dir(tmp_path, text=CHART_YAML):
    path = tmp_path / "tiny"
    path.mkdir()
    (path / "Chart.yaml").write_text(text)
    return str(path)


def release_secret(name, revision, status, chart=("tiny", "0.1.0", "1.0"), config=None, compress=True):
    record = {"name": name, "version": revision, "config": config,
              "chart": {"metadata": {"name": chart[0], "version": chart[1], "appVersion": chart[2]}}}
    raw = json.dumps(record).encode()
    if compress:
        raw = gzip.compress(raw)
    return {"metadata": {"name": "sh.helm.release.v1.%s.v%d" % (name, revision),
                         "labels": {"owner": "helm", "name": name, "status": status, "version": str(revision)}},
            "data": {"release": base64.b64encode(base64.b64encode(raw)).decode()}}


class FakeClient:
    """Serves Helm's Secrets of one namespace; records each request and its Accept header."""

    def __init__(self, secrets):
        self.secrets = dict((s["metadata"]["name"], s) for s in secrets)
        self.requests = []

    def get(self, path, query=None, accept="application/json"):
        self.requests.append((path, query, accept))
        if path.endswith("/secrets"):
            # A metadata-only list: no data.
            return {"items": [{"metadata": s["metadata"]} for s in self.secrets.values()]}
        return self.secrets[path.rsplit("/", 1)[-1]]


def test_wanted_chart_from_directory_archive_and_repository(tmp_path):
    path = chart_dir(tmp_path)
    assert helm_releases.wanted_chart(path, None) == ("tiny", "0.1.0", "1.0")
    assert helm_releases.wanted_chart(path, "0.1.0") == ("tiny", "0.1.0", "1.0")
    with pytest.raises(InputError, match="holds tiny version 0.1.0, not the pinned 0.2.0"):
        helm_releases.wanted_chart(path, "0.2.0")
    archive = str(tmp_path / "tiny-0.1.0.tgz")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(path, arcname="tiny")
    assert helm_releases.wanted_chart(archive, "0.1.0") == ("tiny", "0.1.0", "1.0")
    # Repository and OCI charts: the last path segment and the pinned version; no pin, no answer.
    assert helm_releases.wanted_chart("oci://ghcr.io/kserve/charts/kserve-crd", "v0.20.0") == ("kserve-crd", "v0.20.0", None)
    assert helm_releases.wanted_chart("jetstack/cert-manager", "v1.21.1") == ("cert-manager", "v1.21.1", None)
    assert helm_releases.wanted_chart("cert-manager", None) is None


def test_chart_yaml_without_pyyaml(monkeypatch):
    monkeypatch.setattr(helm_releases, "HAS_YAML", False)
    text = "apiVersion: v2\nname: 'tiny'  # the chart\nversion: \"0.1.0\"\nappVersion: v1\ndependencies:\n  - name: sub\n    version: 9.9.9\n"
    assert helm_releases._chart_yaml(text, "Chart.yaml") == {"name": "tiny", "version": "0.1.0", "appVersion": "v1"}


@pytest.mark.parametrize("compress", [True, False])
def test_decode_release(compress):
    secret = release_secret("r", 1, "deployed", config={"a": 1}, compress=compress)
    assert helm_releases.decode_release(secret)["config"] == {"a": 1}


def test_release_states_compares_chart_values_and_status(tmp_path):
    path = chart_dir(tmp_path)
    client = FakeClient([
        release_secret("same", 1, "superseded", config={"a": 0}),
        release_secret("same", 2, "deployed", config={"a": 1}),
        release_secret("other-values", 1, "deployed", config={"a": 1}),
        release_secret("old-chart", 1, "deployed", chart=("tiny", "0.0.9", "1.0")),
        release_secret("failed", 1, "deployed"),
        release_secret("failed", 2, "failed"),
        release_secret("gone", 1, "uninstalled"),
    ])
    wanted = [
        {"name": "same", "namespace": "ns", "chart_ref": path, "chart_version": "0.1.0", "values": {"a": 1}},
        {"name": "other-values", "namespace": "ns", "chart_ref": path, "values": {"a": 2}},
        {"name": "old-chart", "namespace": "ns", "chart_ref": path, "values": {}},
        {"name": "failed", "namespace": "ns", "chart_ref": path, "values": {}},
        {"name": "missing", "namespace": "ns", "chart_ref": path, "values": {}},
        {"name": "missing-absent", "namespace": "ns", "chart_ref": path, "state": "absent"},
        {"name": "gone", "namespace": "ns", "chart_ref": path, "state": "absent"},
        {"name": "same", "namespace": "ns", "chart_ref": "repo/tiny", "chart_version": "0.1.0", "values": {"a": 1}},
    ]
    states = helm_releases.release_states(client, wanted)
    why = [(s["name"], s["up_to_date"], s["reasons"]) for s in states]
    assert why == [
        ("same", True, []),
        ("other-values", False, ["values differ"]),
        ("old-chart", False, ["chart tiny-0.0.9 installed, tiny-0.1.0 wanted"]),
        ("failed", False, ["latest revision 2 is failed"]),
        ("missing", False, ["not installed"]),
        ("missing-absent", True, []),
        ("gone", True, []),
        ("same", True, []),
    ]
    assert states[0]["revision"] == 2 and states[0]["chart"] == "tiny-0.1.0" and states[0]["installed"]
    assert not states[6]["installed"]
    # One metadata-only list for the namespace, then one read per deployed latest revision.
    lists = [r for r in client.requests if r[0].endswith("/secrets")]
    assert len(lists) == 1 and "PartialObjectMetadataList" in lists[0][2], client.requests
    assert lists[0][1]["labelSelector"].startswith("owner=helm,name in (")
    assert len(client.requests) == 1 + 4, client.requests
    # A chart that does not hold its pin fails before any request.
    client.requests = []
    with pytest.raises(InputError):
        helm_releases.release_states(client, wanted[:1] + [dict(wanted[0], chart_version="9.9.9")])
    assert client.requests == []
