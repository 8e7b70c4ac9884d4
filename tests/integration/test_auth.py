"""Auth against the real local API server: what it authenticates and authorizes decides each test.

The local control plane authenticates its admin with a client certificate (system:masters); the
tests make ServiceAccounts, RBAC and TokenRequest tokens to get other identities. Proxies and the
TLS relay below are loopback TCP forwarders in front of that same API server."""

import base64
import json
import os
import socket
import struct
import sys
import threading
import time
import uuid

import pytest
import yaml

from ansible_collections.aiinfra.cluster.plugins.module_utils import kube_client
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError, ConfigError, ConnectionFailed
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params

EXEC_V1 = "client.authentication.k8s.io/v1"


@pytest.fixture(scope="module")
def admin(kubeconfig, tmp_path_factory):
    """The admin kubeconfig, its API server port and its CA / certificate / key as files."""
    with open(kubeconfig) as handle:
        doc = yaml.safe_load(handle)
    d = tmp_path_factory.mktemp("admin")
    cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
    files = {}
    pairs = (("ca.crt", cluster["certificate-authority-data"]), ("admin.crt", user["client-certificate-data"]), ("admin.key", user["client-key-data"]))
    for name, data in pairs:
        (d / name).write_bytes(base64.b64decode(data))
        files[name] = str(d / name)
    port = int(cluster["server"].rsplit(":", 1)[1])
    return {"doc": doc, "server": cluster["server"], "port": port, "ca_data": cluster["certificate-authority-data"], "files": files}


def kubeconfig_doc(admin, user, server=None, cluster_extra=None):
    cluster = dict({"server": server or admin["server"], "certificate-authority-data": admin["ca_data"]}, **(cluster_extra or {}))
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}],
    }


def admin_user(admin, **extra):
    user = admin["doc"]["users"][0]["user"]
    return dict({"client-certificate-data": user["client-certificate-data"], "client-key-data": user["client-key-data"]}, **extra)


def whoami(client):
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    review = client.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=body)
    return review["status"]["userInfo"]


def service_account(kube, namespace, name):
    kube.post("/api/v1/namespaces/%s/serviceaccounts" % namespace, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})


def token_for(kube, namespace, name, seconds=600):
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": seconds}}
    return kube.post("/api/v1/namespaces/%s/serviceaccounts/%s/token" % (namespace, name), body)["status"]["token"]


@pytest.fixture
def cluster_rbac(kube):
    """Create cluster-scoped RBAC objects for one test; delete them afterwards."""
    created = []

    def make(kind, obj):
        plural = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"}[kind]
        obj = dict(obj, apiVersion="rbac.authorization.k8s.io/v1", kind=kind)
        kube.post("/apis/rbac.authorization.k8s.io/v1/" + plural, obj)
        created.append("/apis/rbac.authorization.k8s.io/v1/%s/%s" % (plural, obj["metadata"]["name"]))

    yield make
    for path in created:
        try:
            kube.delete(path)
        except ApiError:
            pass


def wait_allowed(kube, user, groups, verb, resource, namespace=None, allowed=True):
    """Until RBAC (its informers) shows the binding: asked with a SubjectAccessReview as the admin."""
    attrs = {"verb": verb, "resource": resource}
    if namespace:
        attrs["namespace"] = namespace
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {"user": user, "groups": groups, "resourceAttributes": attrs}}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if kube.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", body)["status"].get("allowed", False) == allowed:
            return
        time.sleep(0.2)
    raise AssertionError("RBAC for %s %s did not settle" % (user, groups))


# Impersonation ----------------------------------------------------------------------------------

def test_impersonation_sends_every_group_and_only_the_second_grants(module_runner, kube, cluster_rbac):
    suffix = uuid.uuid4().hex[:6]
    readers, nobody, user = "readers-" + suffix, "nobody-" + suffix, "alice-" + suffix
    cluster_rbac("ClusterRole", {"metadata": {"name": "t-node-reader-" + suffix}, "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]})
    cluster_rbac("ClusterRoleBinding", {
        "metadata": {"name": "t-node-reader-" + suffix},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "t-node-reader-" + suffix},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": readers}],
    })
    wait_allowed(kube, user, [nobody, readers], "list", "nodes")

    only_first = module_runner("gpu_node_info", {"impersonate_user": user, "impersonate_groups": [nobody], "count_requests": False})
    assert only_first.get("failed") and "forbidden" in only_first["msg"] and user in only_first["msg"]
    both = module_runner("gpu_node_info", {"impersonate_user": user, "impersonate_groups": [nobody, readers], "count_requests": False, "dra": False})
    assert not both.get("failed"), both.get("msg")
    assert both["api_requests"] == {"GET": 1}
    # A node reader who may not list ResourceSlices still gets the device-plugin report, and a warning.
    dra = module_runner("gpu_node_info", {"impersonate_user": user, "impersonate_groups": [nobody, readers], "count_requests": False})
    assert not dra.get("failed") and dra["dra"] is None and dra["totals"] == both["totals"], dra
    assert any("no DRA report" in str(w) and "forbidden" in str(w) for w in dra.get("warnings", [])), dra.get("warnings")


def test_kubeconfig_as_fields_reach_the_api_server(admin):
    user = admin_user(admin, **{"as": "bob", "as-uid": "uid-7", "as-groups": ["g1", "g2"], "as-user-extra": {"example.com/team": ["ml", "infra"]}})
    client = KubeClient(config_from_params({"kubeconfig": kubeconfig_doc(admin, user)}))
    info = whoami(client)
    assert info["username"] == "bob" and info["uid"] == "uid-7"
    assert {"g1", "g2"} <= set(info["groups"])
    assert info["extra"]["example.com/team"] == ["ml", "infra"]
    override = KubeClient(config_from_params({"kubeconfig": kubeconfig_doc(admin, user), "impersonate_user": "carol", "impersonate_groups": ["g3"]}))
    info = whoami(override)
    assert info["username"] == "carol" and "g3" in info["groups"] and "g1" not in info["groups"]
    options = {"impersonate_user": "dave", "impersonate_uid": "uid-9", "impersonate_extra": {"reason": ["audit"]}}
    info = whoami(KubeClient(config_from_params(dict(options, kubeconfig=kubeconfig_doc(admin, admin_user(admin))))))
    assert (info["username"], info["uid"], info["extra"]) == ("dave", "uid-9", {"reason": ["audit"]})


def test_in_cluster_config_keeps_impersonation(admin, kube, namespace, cluster_rbac, tmp_path, monkeypatch):
    """A pod's service account that may read ConfigMaps and impersonate users: impersonating a user
    with no rights must get that user's 403, not the pod's own access."""
    service_account(kube, namespace, "pod-sa")
    sa_user = "system:serviceaccount:%s:pod-sa" % namespace
    kube.post("/apis/rbac.authorization.k8s.io/v1/namespaces/%s/roles" % namespace, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "cm-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
    })
    kube.post("/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings" % namespace, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "cm-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "pod-sa", "namespace": namespace}],
    })
    rules = [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]
    cluster_rbac("ClusterRole", {"metadata": {"name": "t-impersonate-" + namespace}, "rules": rules})
    cluster_rbac("ClusterRoleBinding", {
        "metadata": {"name": "t-impersonate-" + namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "t-impersonate-" + namespace},
        "subjects": [{"kind": "ServiceAccount", "name": "pod-sa", "namespace": namespace}],
    })
    wait_allowed(kube, sa_user, [], "impersonate", "users")
    wait_allowed(kube, "system:serviceaccount:%s:pod-sa" % namespace, [], "list", "configmaps", namespace)
    sa_dir = tmp_path / "serviceaccount"
    sa_dir.mkdir()
    (sa_dir / "token").write_text(token_for(kube, namespace, "pod-sa"))
    (sa_dir / "ca.crt").write_bytes(base64.b64decode(admin["ca_data"]))
    monkeypatch.setattr(kube_client, "SERVICE_ACCOUNT_DIR", str(sa_dir))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(admin["port"]))

    path = "/api/v1/namespaces/%s/configmaps" % namespace
    pod = KubeClient(config_from_params({}))
    assert pod.config.source == "in-cluster service account"
    assert pod.get(path)["kind"] == "ConfigMapList"
    impersonating = KubeClient(config_from_params({"impersonate_user": "nobody-special"}))
    with pytest.raises(ApiError) as err:
        impersonating.get(path)
    assert err.value.status == 403 and 'User "nobody-special" cannot list resource "configmaps"' in err.value.msg


# KUBECONFIG with several files ------------------------------------------------------------------

def test_two_file_kubeconfig_with_relative_paths_in_the_second_file(module_runner, admin, kube, namespace, tmp_path):
    service_account(kube, namespace, "reader")
    first, second = tmp_path / "first", tmp_path / "second" / "conf.d"
    first.mkdir()
    (second / "pki").mkdir(parents=True)
    for name in ("ca.crt", "admin.crt", "admin.key"):
        (second / "pki" / name).write_bytes(open(admin["files"][name], "rb").read())
    (second / "reader.token").write_text(token_for(kube, namespace, "reader"))
    a = {
        "apiVersion": "v1", "kind": "Config", "current-context": "admin",
        "contexts": [
            {"name": "admin", "context": {"cluster": "local", "user": "admin"}},
            {"name": "reader", "context": {"cluster": "local", "user": "reader"}},
        ],
    }
    b = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": admin["server"], "certificate-authority": "pki/ca.crt"}}],
        "users": [
            {"name": "admin", "user": {"client-certificate": "pki/admin.crt", "client-key": "pki/admin.key"}},
            {"name": "reader", "user": {"tokenFile": "reader.token"}},
        ],
    }
    (first / "config").write_text(yaml.safe_dump(a))
    (second / "config").write_text(yaml.safe_dump(b))
    joined = "%s%s%s" % (first / "config", os.pathsep, second / "config")

    env = {"KUBECONFIG": joined, "K8S_AUTH_KUBECONFIG": ""}
    from_env = module_runner("gpu_node_info", {"count_requests": False}, env=env)
    assert not from_env.get("failed"), from_env.get("msg")
    from_option = module_runner("gpu_node_info", {"kubeconfig": joined, "count_requests": False})
    assert not from_option.get("failed"), from_option.get("msg")

    assert whoami(KubeClient(config_from_params({"kubeconfig": joined})))["username"] == "aiinfra-admin"
    reader = whoami(KubeClient(config_from_params({"kubeconfig": joined, "context": "reader"})))
    assert reader["username"] == "system:serviceaccount:%s:reader" % namespace


# Exec credential plugins ------------------------------------------------------------------------

PLUGIN = r'''#!{python}
"""Test credential plugin: each run gets a new TokenRequest token for ServiceAccount <prefix>-<run>."""
import json, os, ssl, time, urllib.request

log = os.environ["PLUGIN_LOG"]
with open(log, "a") as handle:
    handle.write(os.environ["KUBERNETES_EXEC_INFO"] + "\n")
run = sum(1 for _ in open(log))
ctx = ssl.create_default_context(cafile=os.environ["PLUGIN_CA"])
ctx.load_cert_chain(os.environ["PLUGIN_CERT"], os.environ["PLUGIN_KEY"])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}), urllib.request.HTTPSHandler(context=ctx))
namespace = os.environ["PLUGIN_NAMESPACE"]
spec = {{"expirationSeconds": 600}}
if os.environ.get("PLUGIN_BIND_SECRET"):
    secret = "bound-%d" % run
    req = urllib.request.Request(
        "%s/api/v1/namespaces/%s/secrets" % (os.environ["PLUGIN_SERVER"], namespace),
        data=json.dumps({{"apiVersion": "v1", "kind": "Secret", "metadata": {{"name": secret}}}}).encode(),
        headers={{"Content-Type": "application/json"}}, method="POST")
    opener.open(req).read()
    spec["boundObjectRef"] = {{"apiVersion": "v1", "kind": "Secret", "name": secret}}
req = urllib.request.Request(
    "%s/api/v1/namespaces/%s/serviceaccounts/%s-%d/token" % (os.environ["PLUGIN_SERVER"], namespace, os.environ["PLUGIN_SA"], run),
    data=json.dumps({{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}}).encode(),
    headers={{"Content-Type": "application/json"}}, method="POST")
token = json.load(opener.open(req))["status"]["token"]
status = {{"token": token}}
lifetime = int(os.environ.get("PLUGIN_LIFETIME") or 0)
if lifetime:
    status["expirationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + lifetime))
with open(log + ".tokens", "a") as handle:
    handle.write(token + "\n")
print(json.dumps({{"apiVersion": "{api}", "kind": "ExecCredential", "status": status}}))
'''


def exec_kubeconfig(admin, namespace, tmp_path, **env):
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN.format(python=sys.executable, api=EXEC_V1))
    script.chmod(0o755)
    log = tmp_path / "plugin.log"
    variables = dict(
        PLUGIN_LOG=str(log), PLUGIN_CA=admin["files"]["ca.crt"], PLUGIN_CERT=admin["files"]["admin.crt"], PLUGIN_KEY=admin["files"]["admin.key"],
        PLUGIN_SERVER=admin["server"], PLUGIN_NAMESPACE=namespace, PLUGIN_SA="exec", **env
    )
    spec = {
        "apiVersion": EXEC_V1, "command": str(script), "interactiveMode": "Never", "provideClusterInfo": True,
        "env": [{"name": k, "value": str(v)} for k, v in variables.items()],
    }
    return kubeconfig_doc(admin, {"exec": spec}), log


def test_exec_plugin_token_that_expires_mid_run_is_refreshed(admin, kube, namespace, tmp_path):
    for run in (1, 2, 3):
        service_account(kube, namespace, "exec-%d" % run)
    lifetime = kube_client.EXPIRY_MARGIN + 3
    doc, log = exec_kubeconfig(admin, namespace, tmp_path, PLUGIN_LIFETIME=lifetime)
    client = KubeClient(config_from_params({"kubeconfig": doc}))
    started = time.monotonic()
    assert whoami(client)["username"] == "system:serviceaccount:%s:exec-1" % namespace
    assert whoami(client)["username"] == "system:serviceaccount:%s:exec-1" % namespace
    time.sleep(max(0, lifetime - kube_client.EXPIRY_MARGIN + 0.5 - (time.monotonic() - started)))
    assert whoami(client)["username"] == "system:serviceaccount:%s:exec-2" % namespace
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(runs) == 2
    assert runs[0]["spec"]["interactive"] is False and runs[0]["spec"]["cluster"]["server"] == admin["server"]
    assert base64.b64decode(runs[0]["spec"]["cluster"]["certificate-authority-data"]) == base64.b64decode(admin["ca_data"])


def test_exec_plugin_is_rerun_once_when_its_token_is_rejected(admin, kube, namespace, tmp_path):
    """The token is bound to a Secret; deleting the Secret revokes it before any expiry is known."""
    for run in (1, 2):
        service_account(kube, namespace, "exec-%d" % run)
    doc, log = exec_kubeconfig(admin, namespace, tmp_path, PLUGIN_BIND_SECRET=1)
    client = KubeClient(config_from_params({"kubeconfig": doc}))
    assert whoami(client)["username"] == "system:serviceaccount:%s:exec-1" % namespace
    kube.delete("/api/v1/namespaces/%s/secrets/bound-1" % namespace)
    first_token = open(str(log) + ".tokens").read().split()[0]
    revoked = KubeClient(config_from_params({"host": admin["server"], "api_key": first_token, "ca_cert": admin["files"]["ca.crt"]}))
    deadline = time.monotonic() + 30
    while True:  # the API server caches a successful token authentication for a few seconds
        try:
            whoami(revoked)
        except ApiError as exc:
            assert exc.status == 401
            break
        assert time.monotonic() < deadline, "the bound token stayed valid after its Secret was deleted"
        time.sleep(0.5)
    assert whoami(client)["username"] == "system:serviceaccount:%s:exec-2" % namespace
    assert len(log.read_text().splitlines()) == 2


def test_missing_exec_command_and_token_file_fail_clearly(module_runner, admin, tmp_path):
    missing_exec = {"exec": {"apiVersion": EXEC_V1, "command": str(tmp_path / "no-such-plugin"), "installHint": "install the plugin"}}
    result = module_runner("gpu_node_info", {"kubeconfig": kubeconfig_doc(admin, missing_exec)})
    assert result.get("failed") and "no-such-plugin' could not run: No such file or directory (install the plugin)" in result["msg"]
    result = module_runner("gpu_node_info", {"kubeconfig": kubeconfig_doc(admin, {"tokenFile": str(tmp_path / "no-such-token")})})
    assert result.get("failed") and "tokenFile %s does not exist" % (tmp_path / "no-such-token") in result["msg"]


# auth-provider ----------------------------------------------------------------------------------

def test_oidc_auth_provider_sends_its_id_token(module_runner, admin, kube, namespace, tmp_path):
    """A ServiceAccount token is a JWT the API server accepts: as the oidc id-token it must arrive."""
    service_account(kube, namespace, "oidc-user")
    config = {"id-token": token_for(kube, namespace, "oidc-user"), "client-id": "aiinfra", "idp-issuer-url": "https://127.0.0.1:1"}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig_doc(admin, {"auth-provider": {"name": "oidc", "config": config}})))
    assert whoami(KubeClient(config_from_params({"kubeconfig": str(path)})))["username"] == "system:serviceaccount:%s:oidc-user" % namespace
    result = module_runner("gpu_node_info", {"kubeconfig": str(path), "count_requests": False})
    assert result.get("failed") and "system:serviceaccount:%s:oidc-user" % namespace in result["msg"]  # not anonymous


def test_auth_providers_that_cannot_be_honoured_fail_clearly(module_runner, admin):
    expired = "e30.%s.sig" % base64.urlsafe_b64encode(json.dumps({"exp": 1}).encode()).decode().rstrip("=")
    oidc = {"id-token": expired, "refresh-token": "r", "client-id": "c", "client-secret": "s", "idp-issuer-url": "https://127.0.0.1:1"}
    result = module_runner("gpu_node_info", {"kubeconfig": kubeconfig_doc(admin, {"auth-provider": {"name": "oidc", "config": oidc}})})
    assert result.get("failed") and "users[].user.auth-provider oidc" in result["msg"] and result.get("api_requests") == {}
    result = module_runner("gpu_node_info", {"kubeconfig": kubeconfig_doc(admin, {"auth-provider": {"name": "gcp", "config": {}}})})
    assert result.get("failed") and "users[].user.auth-provider 'gcp'" in result["msg"] and "gke-gcloud-auth-plugin" in result["msg"]


# TLS server name and proxies --------------------------------------------------------------------

def _pipe(src, dst):
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


class LoopbackServer:
    """Accepts on 127.0.0.1; `handle(conn)` returns the upstream socket to splice with, or None."""

    def __init__(self, handle):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.seen = []
        self._handle = handle
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn = self.listener.accept()[0]
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            upstream = self._handle(self, conn)
        except OSError:
            upstream = None
        if upstream is None:
            conn.close()
            return
        threading.Thread(target=_pipe, args=(conn, upstream), daemon=True).start()
        _pipe(upstream, conn)

    def close(self):
        self.listener.close()


def _recv_exact(conn, count):
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def sni_relay(api_port):
    """Forwards to the API server and keeps each connection's first bytes (the TLS ClientHello)."""

    def handle(server, conn):
        hello = conn.recv(65536)
        server.seen.append(hello)
        upstream = socket.create_connection(("127.0.0.1", api_port))
        upstream.sendall(hello)
        return upstream

    return LoopbackServer(handle)


def connect_proxy(api_port, credentials):
    """An HTTP CONNECT proxy that wants Proxy-Authorization and resolves every name to the local API server."""

    def handle(server, conn):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                return None
            head += chunk
        lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
        headers = dict((k.strip().lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:]))
        server.seen.append((lines[0], headers.get("proxy-authorization")))
        if headers.get("proxy-authorization") != "Basic " + base64.b64encode(credentials.encode()).decode():
            conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n")
            return None
        upstream = socket.create_connection(("127.0.0.1", api_port))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        return upstream

    return LoopbackServer(handle)


def socks5_proxy(api_port, user, password):
    def handle(server, conn):
        methods = _recv_exact(conn, _recv_exact(conn, 2)[1])
        if 2 not in bytearray(methods):
            conn.sendall(b"\x05\xff")
            return None
        conn.sendall(b"\x05\x02")
        _recv_exact(conn, 1)
        got_user = _recv_exact(conn, _recv_exact(conn, 1)[0])
        got_password = _recv_exact(conn, _recv_exact(conn, 1)[0])
        if (got_user, got_password) != (user.encode(), password.encode()):
            conn.sendall(b"\x01\x01")
            return None
        conn.sendall(b"\x01\x00")
        _ver, _cmd, _rsv, atyp = bytearray(_recv_exact(conn, 4))
        host = _recv_exact(conn, _recv_exact(conn, 1)[0]).decode() if atyp == 3 else socket.inet_ntoa(_recv_exact(conn, 4))
        port = struct.unpack(">H", _recv_exact(conn, 2))[0]
        server.seen.append((host, port))
        upstream = socket.create_connection(("127.0.0.1", api_port))
        conn.sendall(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
        return upstream

    return LoopbackServer(handle)


def test_tls_server_name_sets_sni_and_the_verified_name(admin):
    relay = sni_relay(admin["port"])
    try:
        server = "https://127.0.0.1:%d" % relay.port
        good = KubeClient(config_from_params({"kubeconfig": kubeconfig_doc(admin, admin_user(admin), server, {"tls-server-name": "kubernetes.default.svc"})}))
        assert good.get("/version")["major"]
        assert b"kubernetes.default.svc" in relay.seen[-1]
        wrong = KubeClient(config_from_params({"kubeconfig": kubeconfig_doc(admin, admin_user(admin), server, {"tls-server-name": "not-the-api.example"})}))
        with pytest.raises(ConnectionFailed, match="TLS verification of not-the-api.example failed"):
            wrong.get("/version")
    finally:
        relay.close()


API_NAME = "kubernetes.default.svc"  # in the serving certificate; only the test proxies resolve it


def test_proxy_url_with_credentials(admin):
    proxy = connect_proxy(admin["port"], "agent:s3cret/x")
    try:
        server = "https://%s:%d" % (API_NAME, admin["port"])
        url = "http://agent:s3cret%%2Fx@127.0.0.1:%d" % proxy.port
        client = KubeClient(config_from_params({"kubeconfig": kubeconfig_doc(admin, admin_user(admin), server, {"proxy-url": url})}))
        assert whoami(client)["username"] == "aiinfra-admin"
        assert proxy.seen[-1][0].startswith("CONNECT %s:%d HTTP/" % (API_NAME, admin["port"]))
        wrong = "http://agent:wrong@127.0.0.1:%d" % proxy.port
        client = KubeClient(config_from_params({"kubeconfig": kubeconfig_doc(admin, admin_user(admin), server, {"proxy-url": wrong})}), retries=1)
        with pytest.raises(ConnectionFailed, match="407"):
            client.get("/version")
    finally:
        proxy.close()


def test_socks5_proxy_url_with_credentials(admin):
    proxy = socks5_proxy(admin["port"], "agent", "pw")
    try:
        server = "https://%s:%d" % (API_NAME, admin["port"])
        url = "socks5://agent:pw@127.0.0.1:%d" % proxy.port
        client = KubeClient(config_from_params({"kubeconfig": kubeconfig_doc(admin, admin_user(admin), server, {"proxy-url": url})}))
        assert whoami(client)["username"] == "aiinfra-admin"
        assert proxy.seen == [(API_NAME, admin["port"])]
        wrong = "socks5://agent:nope@127.0.0.1:%d" % proxy.port
        client = KubeClient(config_from_params({"kubeconfig": kubeconfig_doc(admin, admin_user(admin), server, {"proxy-url": wrong})}))
        with pytest.raises(ConfigError, match="rejected the user name and password"):
            client.get("/version")
    finally:
        proxy.close()


def test_https_proxy_and_no_proxy_from_the_environment(module_runner, admin, monkeypatch):
    proxy = connect_proxy(admin["port"], "env:pw")
    try:
        server = "https://%s:%d" % (API_NAME, admin["port"])
        doc = kubeconfig_doc(admin, admin_user(admin), server)
        env = {"HTTPS_PROXY": "http://env:pw@127.0.0.1:%d" % proxy.port, "NO_PROXY": "example.com,10.0.0.0/8"}
        result = module_runner("gpu_node_info", {"kubeconfig": doc, "count_requests": False}, env=env)
        assert not result.get("failed"), result.get("msg")
        assert proxy.seen and proxy.seen[-1][0].startswith("CONNECT %s:%d HTTP/" % (API_NAME, admin["port"]))
        seen = len(proxy.seen)
        monkeypatch.setenv("HTTPS_PROXY", env["HTTPS_PROXY"])
        monkeypatch.setenv("NO_PROXY", ".svc")
        with pytest.raises(ConnectionFailed):
            KubeClient(config_from_params({"kubeconfig": doc}), retries=1).get("/version")
        assert len(proxy.seen) == seen  # NO_PROXY matched: the client went direct (and the name does not resolve here)
    finally:
        proxy.close()


def test_exec_plugin_client_certificate_is_used(admin, tmp_path):
    status = {"clientCertificateData": open(admin["files"]["admin.crt"]).read(), "clientKeyData": open(admin["files"]["admin.key"]).read()}
    script = tmp_path / "cert-plugin.py"
    script.write_text("#!%s\nimport json\nprint(json.dumps(%r))\n" % (sys.executable, {"apiVersion": EXEC_V1, "kind": "ExecCredential", "status": status}))
    script.chmod(0o755)
    doc = kubeconfig_doc(admin, {"exec": {"apiVersion": EXEC_V1, "command": str(script), "interactiveMode": "Never"}})
    assert whoami(KubeClient(config_from_params({"kubeconfig": doc})))["username"] == "aiinfra-admin"
