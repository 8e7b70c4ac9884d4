import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import yaml

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError, ConfigError
from ansible_collections.aiinfra.cluster.plugins.module_utils import kube_client
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import Impersonation, KubeClient, config_from_params


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


def auth_header(cfg):
    return dict(cfg.header_items()).get("Authorization")


def test_kubeconfig_path_with_token(tmp_path, pki):
    path = kubeconfig(tmp_path, pki)[0]
    cfg = config_from_params({"kubeconfig": str(path)})
    assert cfg.server == "https://127.0.0.1:6443"
    assert auth_header(cfg) == "Bearer abc"
    assert cfg.ssl_context.verify_mode.name == "CERT_REQUIRED"


def test_kubeconfig_as_dict_and_explicit_overrides(tmp_path, pki):
    doc = kubeconfig(tmp_path, pki)[1]
    cfg = config_from_params({"kubeconfig": doc, "host": "https://10.0.0.1:443", "api_key": "override", "validate_certs": False})
    assert cfg.server == "https://10.0.0.1:443"
    assert auth_header(cfg) == "Bearer override"
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
    assert auth_header(cfg) == "Basic " + base64.b64encode(b"admin:secret").decode()


def test_exec_credential_plugin(tmp_path, pki):
    script = tmp_path / "cred.sh"
    script.write_text('#!/bin/sh\necho \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-exec"}}\'\n')
    script.chmod(0o755)
    path = kubeconfig(tmp_path, pki, user={"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script)}})[0]
    assert auth_header(config_from_params({"kubeconfig": str(path)})) == "Bearer from-exec"


def test_failing_exec_plugin_is_reported(tmp_path, pki):
    path = kubeconfig(tmp_path, pki, user={"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "false"}})[0]
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
        self.requests = []

    def putrequest(self, method, url):
        self.requests.append({"method": method, "url": url, "headers": []})

    def putheader(self, name, value):
        self.requests[-1]["headers"].append((name, value))

    def endheaders(self, body=None):
        self.sent += 1

    def getresponse(self):
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    def close(self):
        pass


def scripted_client(tmp_path, pki, script, user=None, params=None):
    path = kubeconfig(tmp_path, pki, user=user)[0]
    client = KubeClient(config_from_params(dict(params or {}, kubeconfig=str(path))), backoff=0.001)
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


# Auth never fails open: impersonation, kubeconfig merging, credential plugins, auth-provider, proxies.

EXEC_V1 = "client.authentication.k8s.io/v1"


def exec_script(tmp_path, body):
    """A credential plugin written in Python; it logs every invocation (with KUBERNETES_EXEC_INFO) to calls.jsonl."""
    log = tmp_path / "calls.jsonl"
    script = tmp_path / "plugin.py"
    script.write_text(
        "#!%s\nimport json, os, sys, time\n"
        "with open(%r, 'a') as f:\n    f.write(json.dumps(json.loads(os.environ['KUBERNETES_EXEC_INFO'])) + '\\n')\n"
        "n = sum(1 for _ in open(%r))\n%s\n" % (sys.executable, str(log), str(log), body)
    )
    script.chmod(0o755)
    return script, log


def calls(log):
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_impersonation_sends_one_header_per_group_with_uid_and_extra():
    imp = Impersonation(user="alice", uid="u-1", groups=["g1", "g2"], extra={"scopes.example.com/x y": ["a", "b"], "reason": "audit"})
    assert imp.header_items() == [
        ("Impersonate-User", "alice"),
        ("Impersonate-Uid", "u-1"),
        ("Impersonate-Group", "g1"),
        ("Impersonate-Group", "g2"),
        ("Impersonate-Extra-reason", "audit"),
        ("Impersonate-Extra-scopes.example.com%2Fx%20y", "a"),
        ("Impersonate-Extra-scopes.example.com%2Fx%20y", "b"),
    ]


def test_impersonation_of_groups_without_a_user_is_refused():
    with pytest.raises(ConfigError, match="needs a user to impersonate"):
        Impersonation(groups=["g1"])


def test_kubeconfig_as_fields_are_read_and_options_override_them(tmp_path, pki):
    user = {"token": "abc", "as": "bob", "as-uid": "42", "as-groups": ["ga", "gb"], "as-user-extra": {"team": ["ml"]}}
    path = kubeconfig(tmp_path, pki, user=user)[0]
    items = config_from_params({"kubeconfig": str(path)}).header_items()
    assert [i for i in items if i[0].startswith("Impersonate")] == [
        ("Impersonate-User", "bob"), ("Impersonate-Uid", "42"), ("Impersonate-Group", "ga"), ("Impersonate-Group", "gb"),
        ("Impersonate-Extra-team", "ml"),
    ]
    items = config_from_params({"kubeconfig": str(path), "impersonate_user": "carol", "impersonate_groups": ["gx"]}).header_items()
    assert ("Impersonate-User", "carol") in items and ("Impersonate-Group", "gx") in items and ("Impersonate-Group", "ga") not in items


def test_every_impersonate_group_header_goes_on_the_wire(tmp_path, pki):
    client, conn = scripted_client(tmp_path, pki, [FakeResponse(200, b"{}")], params={"impersonate_user": "u", "impersonate_groups": ["g1", "g2", "g3"]})
    client.get("/api")
    sent = conn.requests[0]["headers"]
    assert [v for n, v in sent if n == "Impersonate-Group"] == ["g1", "g2", "g3"]
    assert ("Authorization", "Bearer abc") in sent


def in_cluster(tmp_path, pki, monkeypatch, token="pod-token"):
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text(token)
    (sa / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    monkeypatch.setattr(kube_client, "SERVICE_ACCOUNT_DIR", str(sa))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    return sa


def test_in_cluster_config_keeps_impersonation(tmp_path, pki, monkeypatch):
    in_cluster(tmp_path, pki, monkeypatch)
    cfg = config_from_params({"impersonate_user": "restricted", "impersonate_groups": ["g1", "g2"]})
    assert cfg.source == "in-cluster service account" and cfg.server == "https://10.96.0.1:443"
    assert cfg.header_items() == [
        ("Authorization", "Bearer pod-token"), ("Impersonate-User", "restricted"), ("Impersonate-Group", "g1"), ("Impersonate-Group", "g2"),
    ]


def test_in_cluster_token_is_reread_after_a_401(tmp_path, pki, monkeypatch):
    sa = in_cluster(tmp_path, pki, monkeypatch, token="old")
    cfg = config_from_params({})
    (sa / "token").write_text("rotated")
    assert cfg.refresh_credentials() and auth_header(cfg) == "Bearer rotated"


def two_file_kubeconfig(tmp_path, pki):
    """File a defines the context and cluster; file b (another directory) the user, by relative paths."""
    first, second = tmp_path / "a", tmp_path / "b" / "nested"
    first.mkdir()
    second.mkdir(parents=True)
    (second / "ca.pem").write_bytes((pki / "ca.crt").read_bytes())
    (second / "token").write_text("from-file-b\n")
    a = {
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx",
        "contexts": [{"name": "ctx", "context": {"cluster": "c2", "user": "u2"}}],
        "users": [{"name": "u-a", "user": {"token": "a"}}],
    }
    b = {
        "apiVersion": "v1", "kind": "Config", "current-context": "ignored",
        "clusters": [{"name": "c2", "cluster": {"server": "https://127.0.0.1:6443", "certificate-authority": "ca.pem"}}],
        "users": [{"name": "u2", "user": {"tokenFile": "./token"}}, {"name": "u-a", "user": {"token": "second-file-loses"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c2", "user": "u-a"}}],
    }
    (first / "config").write_text(yaml.safe_dump(a))
    (second / "config").write_text(yaml.safe_dump(b))
    return str(first / "config"), str(second / "config")


def test_kubeconfig_env_relative_paths_resolve_against_their_own_file(tmp_path, pki, monkeypatch):
    a, b = two_file_kubeconfig(tmp_path, pki)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KUBECONFIG", a + os.pathsep + b)
    cfg = config_from_params({})
    assert auth_header(cfg) == "Bearer from-file-b"
    assert cfg.ssl_context.verify_mode.name == "CERT_REQUIRED"


def test_kubeconfig_option_with_colon_is_a_list_first_file_wins(tmp_path, pki, monkeypatch):
    a, b = two_file_kubeconfig(tmp_path, pki)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    cfg = config_from_params({"kubeconfig": a + os.pathsep + b})
    assert auth_header(cfg) == "Bearer from-file-b" and cfg.source == a + ":" + b
    assert auth_header(config_from_params({"kubeconfig": [a, b], "context": "ctx"})) == "Bearer from-file-b"
    with pytest.raises(ConfigError, match="nope.*does not exist"):
        config_from_params({"kubeconfig": a + os.pathsep + str(tmp_path / "nope")})


def test_context_naming_an_undefined_user_fails_instead_of_going_anonymous(tmp_path, pki):
    path = kubeconfig(tmp_path, pki, contexts=[{"name": "ctx1", "context": {"cluster": "c1", "user": "ghost"}}])[0]
    with pytest.raises(ConfigError, match="refers to user 'ghost'"):
        config_from_params({"kubeconfig": str(path)})


def test_missing_token_file_is_a_clear_error(tmp_path, pki):
    path = kubeconfig(tmp_path, pki, user={"tokenFile": "missing-token"})[0]
    with pytest.raises(ConfigError, match="tokenFile .*missing-token does not exist"):
        config_from_params({"kubeconfig": str(path)})


def test_missing_exec_command_is_a_clear_error_with_the_install_hint(tmp_path, pki):
    spec = {"apiVersion": EXEC_V1, "command": "no-such-credential-helper", "installHint": "install it from example.com"}
    path = kubeconfig(tmp_path, pki, user={"exec": spec})[0]
    with pytest.raises(ConfigError, match="'no-such-credential-helper' could not run: No such file or directory .install it from example.com"):
        config_from_params({"kubeconfig": str(path)})


def test_api_key_replaces_the_kubeconfig_users_credentials(tmp_path, pki):
    path = kubeconfig(tmp_path, pki, user={"client-certificate-data": "not-even-read", "token": "kubeconfig-token"})[0]
    assert auth_header(config_from_params({"kubeconfig": str(path), "api_key": "task-token"})) == "Bearer task-token"


def test_exec_plugin_is_rerun_before_its_token_expires(tmp_path, pki, monkeypatch):
    body = (
        "exp = time.strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', time.gmtime(time.time() + %d))\n"
        "print(json.dumps({'apiVersion': %r, 'kind': 'ExecCredential', 'status': {'token': 't%%d' %% n, 'expirationTimestamp': exp}}))"
        % (3600, EXEC_V1)
    )
    script, log = exec_script(tmp_path, body)
    path = kubeconfig(tmp_path, pki, user={"exec": {"apiVersion": EXEC_V1, "command": str(script), "interactiveMode": "Never"}})[0]
    cfg = config_from_params({"kubeconfig": str(path)})
    assert auth_header(cfg) == "Bearer t1" and auth_header(cfg) == "Bearer t1"
    now = time.time()
    monkeypatch.setattr(kube_client.time, "time", lambda: now + 3600 - kube_client.EXPIRY_MARGIN + 1)
    assert auth_header(cfg) == "Bearer t2" and len(calls(log)) == 2


def test_exec_plugin_is_rerun_once_on_401(tmp_path, pki):
    script, log = exec_script(tmp_path, "print(json.dumps({'apiVersion': %r, 'kind': 'ExecCredential', 'status': {'token': 't%%d' %% n}}))" % EXEC_V1)
    user = {"exec": {"apiVersion": EXEC_V1, "command": str(script), "interactiveMode": "IfAvailable"}}
    client, conn = scripted_client(tmp_path, pki, [FakeResponse(401, b'{"reason":"Unauthorized"}'), FakeResponse(200, b"{}")], user=user)
    assert client.get("/api") == {}
    assert [dict(r["headers"])["Authorization"] for r in conn.requests] == ["Bearer t1", "Bearer t2"]
    conn.script = [FakeResponse(401, b"{}"), FakeResponse(401, b"{}")]
    with pytest.raises(ApiError) as err:
        client.get("/api")
    assert err.value.status == 401 and len(calls(log)) == 3  # once more per request, not in a loop


def test_static_token_is_not_retried_on_401(tmp_path, pki):
    client, conn = scripted_client(tmp_path, pki, [FakeResponse(401, b"{}"), FakeResponse(200, b"{}")])
    with pytest.raises(ApiError):
        client.get("/api")
    assert conn.sent == 1


def test_exec_plugin_gets_cluster_info_and_never_a_terminal(tmp_path, pki):
    script, log = exec_script(tmp_path, "print(json.dumps({'apiVersion': %r, 'kind': 'ExecCredential', 'status': {'token': 'x'}}))" % EXEC_V1)
    spec = {"apiVersion": EXEC_V1, "command": str(script), "interactiveMode": "IfAvailable", "provideClusterInfo": True}
    path, doc = kubeconfig(tmp_path, pki, user={"exec": spec})
    extension = {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "a"}}
    doc["clusters"][0]["cluster"].update({"tls-server-name": "api.internal", "extensions": [extension]})
    path.write_text(yaml.safe_dump(doc))
    config_from_params({"kubeconfig": str(path)})
    spec_sent = calls(log)[0]["spec"]
    assert spec_sent["interactive"] is False
    assert spec_sent["cluster"]["server"] == "https://127.0.0.1:6443" and spec_sent["cluster"]["tls-server-name"] == "api.internal"
    assert base64.b64decode(spec_sent["cluster"]["certificate-authority-data"]) == (pki / "ca.crt").read_bytes()
    assert spec_sent["cluster"]["config"] == {"audience": "a"}


def test_exec_without_provide_cluster_info_gets_no_cluster(tmp_path, pki):
    script, log = exec_script(tmp_path, "print(json.dumps({'apiVersion': %r, 'kind': 'ExecCredential', 'status': {'token': 'x'}}))" % EXEC_V1)
    config_from_params({"kubeconfig": str(kubeconfig(tmp_path, pki, user={"exec": {"apiVersion": EXEC_V1, "command": str(script)}})[0])})
    assert "cluster" not in calls(log)[0]["spec"]


def test_exec_interactive_mode_always_fails_clearly(tmp_path, pki):
    path = kubeconfig(tmp_path, pki, user={"exec": {"apiVersion": EXEC_V1, "command": "true", "interactiveMode": "Always"}})[0]
    with pytest.raises(ConfigError, match="interactiveMode is Always.*no terminal"):
        config_from_params({"kubeconfig": str(path)})


def test_exec_answer_with_another_api_version_is_refused(tmp_path, pki):
    script = exec_script(tmp_path, "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1', 'status': {'token': 'x'}}))")[0]
    path = kubeconfig(tmp_path, pki, user={"exec": {"apiVersion": EXEC_V1, "command": str(script)}})[0]
    with pytest.raises(ConfigError, match="answered apiVersion"):
        config_from_params({"kubeconfig": str(path)})


def jwt(claims):
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return "%s.%s.sig" % (part({"alg": "RS256"}), part(claims))


def test_oidc_auth_provider_sends_the_id_token(tmp_path, pki):
    token = jwt({"sub": "me", "exp": int(time.time()) + 600})
    user = {"auth-provider": {"name": "oidc", "config": {"id-token": token, "client-id": "k", "idp-issuer-url": "https://127.0.0.1:1"}}}
    assert auth_header(config_from_params({"kubeconfig": str(kubeconfig(tmp_path, pki, user=user)[0])})) == "Bearer " + token


def test_oidc_expired_id_token_that_cannot_be_refreshed_fails_clearly(tmp_path, pki):
    token = jwt({"sub": "me", "exp": int(time.time()) - 60})
    config = {"id-token": token, "refresh-token": "r", "client-id": "k", "client-secret": "s", "idp-issuer-url": "https://127.0.0.1:1"}
    path = kubeconfig(tmp_path, pki, user={"auth-provider": {"name": "oidc", "config": config}})[0]
    with pytest.raises(ConfigError, match=r"users\[\]\.user\.auth-provider oidc"):
        config_from_params({"kubeconfig": str(path)})


@pytest.mark.parametrize("name,replacement", [("gcp", "gke-gcloud-auth-plugin"), ("azure", "kubelogin"), ("keystone", "users\\[\\].user.exec")])
def test_removed_or_unknown_auth_providers_fail_clearly(tmp_path, pki, name, replacement):
    path = kubeconfig(tmp_path, pki, user={"auth-provider": {"name": name, "config": {}}})[0]
    with pytest.raises(ConfigError, match=r"users\[\]\.user\.auth-provider '%s'.*%s" % (name, replacement)):
        config_from_params({"kubeconfig": str(path)})


def test_oidc_without_the_kubernetes_package_fails_clearly(tmp_path, pki, monkeypatch):
    monkeypatch.setitem(sys.modules, "kubernetes.client", None)
    user = {"auth-provider": {"name": "oidc", "config": {"id-token": jwt({"exp": int(time.time()) + 600})}}}
    with pytest.raises(ConfigError, match="needs the Python package kubernetes.*users\\[\\].user.exec"):
        config_from_params({"kubeconfig": str(kubeconfig(tmp_path, pki, user=user)[0])})


def test_tls_server_name_is_kept(tmp_path, pki):
    path, doc = kubeconfig(tmp_path, pki)
    doc["clusters"][0]["cluster"]["tls-server-name"] = "api.internal"
    path.write_text(yaml.safe_dump(doc))
    assert config_from_params({"kubeconfig": str(path)}).tls_server_name == "api.internal"


def test_rfc3339_timestamps():
    assert kube_client._parse_rfc3339("1970-01-01T00:01:00Z", "t") == 60
    assert kube_client._parse_rfc3339("1970-01-01T01:01:00.5+01:00", "t") == 60.5
    with pytest.raises(ConfigError, match="not an RFC 3339 time"):
        kube_client._parse_rfc3339("tomorrow", "t")


@pytest.mark.parametrize(
    "no_proxy,host,port,bypass",
    [
        ("", "api.example.com", 443, False),
        ("*", "api.example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        ("example.com", "example.com", 443, True),
        (".example.com", "example.com", 443, False),
        ("other.com, .example.com", "api.example.com", 443, True),
        ("10.0.0.0/8", "10.1.2.3", 443, True),
        ("10.0.0.0/8", "11.1.2.3", 443, False),
        ("api.example.com:6443", "api.example.com", 443, False),
        ("api.example.com:443", "api.example.com", 443, True),
        ("[fd00::1]:443", "fd00::1", 443, True),
    ],
)
def test_https_proxy_and_no_proxy_from_environment(monkeypatch, no_proxy, host, port, bypass):
    monkeypatch.setenv("HTTPS_PROXY", "http://user:p%40ss@proxy.local:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    proxy = kube_client.proxy_from_environment("https", host, port)
    assert (proxy is None) is bypass
    if proxy is not None:
        assert (proxy.hostname, proxy.port) == ("proxy.local", 3128)
        assert proxy.auth_header() == {"Proxy-Authorization": "Basic " + base64.b64encode(b"user:p@ss").decode()}


def test_loopback_is_never_proxied_from_the_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.local:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert kube_client.proxy_from_environment("https", "127.0.0.1", 6443) is None
    assert kube_client.proxy_from_environment("https", "localhost", 6443) is None


def test_explicit_proxy_wins_and_unsupported_schemes_fail(tmp_path, pki, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy:3128")
    path = kubeconfig(tmp_path, pki, server="https://api.example.com:6443")[0]
    assert config_from_params({"kubeconfig": str(path)}).connection_proxy().hostname == "env-proxy"
    assert config_from_params({"kubeconfig": str(path), "proxy": "socks5://u:p@socks.local"}).connection_proxy().port == 1080
    with pytest.raises(ConfigError, match="proxy 'https://p:1' is not supported"):
        config_from_params({"kubeconfig": str(path), "proxy": "https://p:1"})


def test_plain_http_server_through_an_http_proxy_uses_the_absolute_url():
    """Through an HTTP proxy a plain-http server is asked with absolute-form requests (no CONNECT)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    seen = []

    def answer():
        conn = listener.accept()[0]
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        seen.append(head.decode())
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    proxy = "http://agent:pw@127.0.0.1:%d" % listener.getsockname()[1]
    client = KubeClient(config_from_params({"host": "http://api.example:8080", "proxy": proxy, "api_key": "t"}))
    assert client.get("/version") == {}
    thread.join(5)
    listener.close()
    lines = seen[0].split("\r\n")
    assert lines[0] == "GET http://api.example:8080/version HTTP/1.1"
    assert "Proxy-Authorization: Basic " + base64.b64encode(b"agent:pw").decode() in lines
    assert "Authorization: Bearer t" in lines
