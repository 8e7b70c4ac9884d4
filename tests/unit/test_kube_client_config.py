import base64
import os
import subprocess

import pytest
import yaml

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError, ConfigError
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    subprocess.run(
        ["openssl", "req", "-x509", *ec, "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"), "-days", "2", "-subj", "/CN=t"],
        check=True, capture_output=True,
    )
    return d


def kubeconfig(tmp_path, pki, user=None, contexts=None, server="https://127.0.0.1:6443"):
    ca = base64.b64encode((pki / "ca.crt").read_bytes()).decode()
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c1", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": "u1", "user": user or {"token": "abc"}}],
        "contexts": contexts or [{"name": "ctx1", "context": {"cluster": "c1", "user": "u1"}}],
        "current-context": "ctx1",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path, doc


def test_kubeconfig_path_with_token(tmp_path, pki):
    path = kubeconfig(tmp_path, pki)[0]
    cfg = config_from_params({"kubeconfig": str(path)})
    assert cfg.server == "https://127.0.0.1:6443"
    assert cfg.headers["Authorization"] == "Bearer abc"
    assert cfg.ssl_context.verify_mode.name == "CERT_REQUIRED"


def test_kubeconfig_as_dict_and_explicit_overrides(tmp_path, pki):
    doc = kubeconfig(tmp_path, pki)[1]
    cfg = config_from_params({"kubeconfig": doc, "host": "https://10.0.0.1:443", "api_key": "override", "validate_certs": False})
    assert cfg.server == "https://10.0.0.1:443"
    assert cfg.headers["Authorization"] == "Bearer override"
    assert cfg.ssl_context.verify_mode.name == "CERT_NONE"


def test_missing_kubeconfig_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does-not-exist.*does not exist"):
        config_from_params({"kubeconfig": str(tmp_path / "does-not-exist")})


def test_unknown_context_lists_available_ones(tmp_path, pki):
    path = kubeconfig(tmp_path, pki)[0]
    with pytest.raises(ConfigError, match=r"context 'nope' not found .*available: ctx1"):
        config_from_params({"kubeconfig": str(path), "context": "nope"})


def test_basic_auth_and_kubeconfig_env(tmp_path, pki, monkeypatch):
    path = kubeconfig(tmp_path, pki, user={"username": "admin", "password": "secret"})[0]
    monkeypatch.setenv("KUBECONFIG", str(path))
    cfg = config_from_params({})
    assert cfg.headers["Authorization"] == "Basic " + base64.b64encode(b"admin:secret").decode()


def test_exec_credential_plugin(tmp_path, pki):
    script = tmp_path / "cred.sh"
    script.write_text('#!/bin/sh\necho \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-exec"}}\'\n')
    script.chmod(0o755)
    path = kubeconfig(tmp_path, pki, user={"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script)}})[0]
    assert config_from_params({"kubeconfig": str(path)}).headers["Authorization"] == "Bearer from-exec"


def test_failing_exec_plugin_is_reported(tmp_path, pki):
    path = kubeconfig(tmp_path, pki, user={"exec": {"command": "false"}})[0]
    with pytest.raises(ConfigError, match="credential plugin 'false' failed"):
        config_from_params({"kubeconfig": str(path)})


def test_non_url_server_is_rejected(tmp_path, pki):
    path = kubeconfig(tmp_path, pki, server="127.0.0.1:6443")[0]
    with pytest.raises(ConfigError, match="not an http"):
        config_from_params({"kubeconfig": str(path)})


def test_error_status_decoding_keeps_causes():
    body = b'{"kind":"Status","message":"bad","reason":"Invalid","details":{"causes":[{"field":"spec.x","message":"nope"}]},"code":422}'
    with pytest.raises(ApiError) as err:
        KubeClient._decode("PATCH", "/apis/x", 422, body)
    assert err.value.status == 422 and err.value.reason == "Invalid"
    assert err.value.details["causes"][0]["field"] == "spec.x"


def test_no_cluster_at_all(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="no cluster to talk to"):
        config_from_params({})
    assert not os.path.exists(tmp_path / ".kube")


class FakeResponse:
    def __init__(self, status, body, headers=None):
        self.status, self._body, self._headers = status, body, headers or {}

    def read(self):
        return self._body

    def getheader(self, name):
        return self._headers.get(name)


class ScriptedConnection:
    """Stands in for http.client's connection to exercise the retry policy without a server."""

    def __init__(self, script):
        self.script = script
        self.sent = 0

    def request(self, *args, **kwargs):
        self.sent += 1

    def getresponse(self):
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    def close(self):
        pass


def scripted_client(tmp_path, pki, script):
    path = kubeconfig(tmp_path, pki)[0]
    client = KubeClient(config_from_params({"kubeconfig": str(path)}), backoff=0.001)
    conn = ScriptedConnection(script)
    client._connect = lambda: conn
    return client, conn


def test_retries_429_5xx_and_dropped_connections(tmp_path, pki):
    ok = FakeResponse(200, b'{"kind":"Namespace"}')
    script = [FakeResponse(429, b"", {"Retry-After": "0"}), ConnectionResetError("reset"), FakeResponse(503, b"{}"), ok]
    client, conn = scripted_client(tmp_path, pki, script)
    assert client.get("/api/v1/namespaces/x") == {"kind": "Namespace"}
    assert conn.sent == 4


def test_no_retry_on_validation_errors(tmp_path, pki):
    client, conn = scripted_client(tmp_path, pki, [FakeResponse(422, b'{"message":"invalid","reason":"Invalid"}'), FakeResponse(200, b"{}")])
    with pytest.raises(ApiError):
        client.get("/x")
    assert conn.sent == 1


def test_gives_up_after_the_retry_budget(tmp_path, pki):
    client, conn = scripted_client(tmp_path, pki, [FakeResponse(503, b"{}")] * 5)
    with pytest.raises(ApiError) as err:
        client.get("/x")
    assert err.value.status == 503 and conn.sent == 5
