# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""A small Kubernetes REST client: kubeconfig/in-cluster/explicit auth, one keep-alive
connection per module run, retries with backoff for 429/5xx/dropped connections.

It speaks plain HTTP+JSON with the standard library so that a module starts fast and needs no
third-party client; option names follow kubernetes.core so AWX credentials work unchanged.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import socket
import ssl
import subprocess
import tempfile
import time

try:
    import http.client as http_client
    from urllib.parse import urlencode, urlsplit, quote
except ImportError:  # pragma: no cover - Python 2 is not supported, keeps sanity import checks quiet
    http_client = None
    urlencode = urlsplit = quote = None

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import (
    ApiError,
    ConfigError,
    ConnectionFailed,
)

IN_CLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
IN_CLUSTER_CA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
RETRY_STATUSES = (429, 500, 502, 503, 504)
USER_AGENT = "aiinfra.cluster/0.1.0"


class ClusterConfig:
    """Where and how to talk to one API server."""

    def __init__(self, server, ssl_context=None, headers=None, proxy=None, source=""):
        parts = urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("API server address %r is not an http(s) URL (option host or the kubeconfig cluster.server)" % server)
        self.server = server.rstrip("/")
        self.scheme = parts.scheme
        self.hostname = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        self.ssl_context = ssl_context
        self.headers = headers or {}
        self.proxy = proxy
        self.source = source


def _read_yaml_file(path):
    if not HAS_YAML:
        raise ConfigError("PyYAML is required to read a kubeconfig file")
    with open(path) as handle:
        # The C loader, where PyYAML has it, parses a kubeconfig several times faster.
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}


def _named(items, name):
    for item in items or []:
        if item.get("name") == name:
            return item
    return None


def _merge_kubeconfigs(docs):
    """Merge like kubectl: the first file that defines a name or current-context wins."""
    merged = {"clusters": [], "users": [], "contexts": [], "current-context": None}
    for doc in docs:
        for section in ("clusters", "users", "contexts"):
            for item in doc.get(section) or []:
                if _named(merged[section], item.get("name")) is None:
                    merged[section].append(item)
        if not merged["current-context"] and doc.get("current-context"):
            merged["current-context"] = doc["current-context"]
    return merged


def _kubeconfig_paths(param):
    if param:
        return [os.path.expanduser(param)], "kubeconfig"
    env = os.environ.get("KUBECONFIG")
    if env:
        return [os.path.expanduser(p) for p in env.split(os.pathsep) if p], "KUBECONFIG"
    return [os.path.expanduser("~/.kube/config")], "default"


def _write_secret_file(data, suffix):
    """ssl only loads keys from files: write decoded data to a private temp file."""
    fd, path = tempfile.mkstemp(prefix="aiinfra-", suffix=suffix)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def _material(section, key, base_dir, what):
    """Return bytes for `key-data` (base64) or the file at `key` (relative to the kubeconfig)."""
    if section.get(key + "-data"):
        try:
            return base64.b64decode(section[key + "-data"])
        except (TypeError, ValueError):
            raise ConfigError("kubeconfig %s-data for %s is not valid base64" % (key, what))
    if section.get(key):
        path = os.path.join(base_dir, os.path.expanduser(section[key]))
        if not os.path.exists(path):
            raise ConfigError("kubeconfig %s %s for %s does not exist" % (key, path, what))
        with open(path, "rb") as handle:
            return handle.read()
    return None


def _run_exec_plugin(spec, user_name):
    """Run a client-go credential plugin (EKS, GKE, OIDC helpers) and return its status."""
    command = [spec.get("command")] + list(spec.get("args") or [])
    env = dict(os.environ)
    for item in spec.get("env") or []:
        env[item["name"]] = item["value"]
    env["KUBERNETES_EXEC_INFO"] = json.dumps(
        {"apiVersion": spec.get("apiVersion", "client.authentication.k8s.io/v1"), "kind": "ExecCredential", "spec": {"interactive": False}}
    )
    try:
        out = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False, timeout=60)
    except OSError as exc:
        raise ConfigError("kubeconfig user %s: credential plugin %r could not run: %s" % (user_name, spec.get("command"), exc))
    except subprocess.TimeoutExpired:
        raise ConfigError("kubeconfig user %s: credential plugin %r did not answer within 60s" % (user_name, spec.get("command")))
    if out.returncode != 0:
        raise ConfigError(
            "kubeconfig user %s: credential plugin %r failed (rc=%d): %s"
            % (user_name, spec.get("command"), out.returncode, out.stderr.decode("utf-8", "replace").strip()[-500:])
        )
    try:
        return json.loads(out.stdout.decode("utf-8")).get("status") or {}
    except ValueError:
        raise ConfigError("kubeconfig user %s: credential plugin %r printed no ExecCredential JSON" % (user_name, spec.get("command")))


def _ssl_context(validate, ca_bytes=None, ca_file=None, cert_bytes=None, key_bytes=None, cert_file=None, key_file=None):
    if ca_file or ca_bytes or not validate:
        # Trust only the cluster's CA, as kubectl does; loading the system trust store as well
        # would cost about 0.1 s of every module run.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        ctx = ssl.create_default_context()
    if not validate:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    elif ca_bytes:
        ctx.load_verify_locations(cadata=ca_bytes.decode("utf-8"))
    temp_files = []
    try:
        if cert_bytes and not cert_file:
            cert_file = _write_secret_file(cert_bytes, ".crt")
            temp_files.append(cert_file)
        if key_bytes and not key_file:
            key_file = _write_secret_file(key_bytes, ".key")
            temp_files.append(key_file)
        if cert_file:
            ctx.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError("client certificate/key could not be loaded: %s" % exc)
    finally:
        for path in temp_files:
            os.unlink(path)
    return ctx


def _basic_auth(username, password):
    token = base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")
    return "Basic " + token


def _check_file(path, option):
    if path and not os.path.exists(os.path.expanduser(path)):
        raise ConfigError("%s %s does not exist" % (option, path))
    return os.path.expanduser(path) if path else None


def config_from_params(params):
    """Resolve connection settings the way kubernetes.core does: explicit options win, then the
    kubeconfig (path or dict, optional context), then the in-cluster service account."""
    params = dict(params or {})
    kubeconfig = params.get("kubeconfig")
    host = params.get("host")
    validate = params.get("validate_certs")
    ca_cert = _check_file(params.get("ca_cert"), "ca_cert")
    client_cert = _check_file(params.get("client_cert"), "client_cert")
    client_key = _check_file(params.get("client_key"), "client_key")
    headers = {}

    use_kubeconfig = kubeconfig is not None or not host
    if use_kubeconfig:
        if isinstance(kubeconfig, dict):
            doc, base_dir, source = kubeconfig, os.getcwd(), "kubeconfig (inline)"
        else:
            paths, origin = _kubeconfig_paths(kubeconfig)
            existing = [p for p in paths if os.path.exists(p)]
            if not existing:
                if origin == "default" and os.path.exists(IN_CLUSTER_TOKEN) and os.environ.get("KUBERNETES_SERVICE_HOST"):
                    return _in_cluster_config(params)
                if origin == "default" and host is None:
                    raise ConfigError(
                        "no cluster to talk to: ~/.kube/config does not exist and no kubeconfig, host or "
                        "K8S_AUTH_KUBECONFIG was given"
                    )
                raise ConfigError("kubeconfig file %s does not exist (from %s)" % (", ".join(paths), origin))
            try:
                doc = _merge_kubeconfigs([_read_yaml_file(p) for p in existing])
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError("kubeconfig %s could not be read: %s" % (existing[0], exc))
            base_dir, source = os.path.dirname(os.path.abspath(existing[0])), existing[0]
        context_name = params.get("context") or doc.get("current-context")
        if not context_name:
            raise ConfigError("kubeconfig %s has no current-context; set the option context" % source)
        context = _named(doc.get("contexts"), context_name)
        if context is None:
            names = ", ".join(sorted(c.get("name", "?") for c in doc.get("contexts") or [])) or "none"
            raise ConfigError("context %r not found in %s (available: %s)" % (context_name, source, names))
        context = context.get("context") or {}
        cluster = (_named(doc.get("clusters"), context.get("cluster")) or {}).get("cluster")
        if cluster is None:
            raise ConfigError("context %r refers to cluster %r, which %s does not define" % (context_name, context.get("cluster"), source))
        user_name = context.get("user")
        user = (_named(doc.get("users"), user_name) or {}).get("user") or {}
        server = host or cluster.get("server")
        if validate is None:
            validate = not cluster.get("insecure-skip-tls-verify", False)
        ca_bytes = None if ca_cert else _material(cluster, "certificate-authority", base_dir, "cluster %s" % context.get("cluster"))
        cert_bytes = None if client_cert else _material(user, "client-certificate", base_dir, "user %s" % user_name)
        key_bytes = None if client_key else _material(user, "client-key", base_dir, "user %s" % user_name)
        token = params.get("api_key") or user.get("token")
        if not token and user.get("tokenFile"):
            with open(os.path.join(base_dir, user["tokenFile"])) as handle:
                token = handle.read().strip()
        if not token and not cert_bytes and not client_cert and user.get("exec"):
            status = _run_exec_plugin(user["exec"], user_name)
            token = status.get("token")
            if status.get("clientCertificateData"):
                cert_bytes = status["clientCertificateData"].encode("utf-8")
                key_bytes = (status.get("clientKeyData") or "").encode("utf-8")
        username = params.get("username") or user.get("username")
        password = params.get("password") or user.get("password")
        proxy = params.get("proxy") or cluster.get("proxy-url")
    else:
        source = "host %s" % host
        server, token = host, params.get("api_key")
        username, password, proxy = params.get("username"), params.get("password"), params.get("proxy")
        ca_bytes = cert_bytes = key_bytes = None
        if validate is None:
            validate = True
    if token:
        headers["Authorization"] = "Bearer " + token
    elif username and password:
        headers["Authorization"] = _basic_auth(username, password)
    if params.get("impersonate_user"):
        headers["Impersonate-User"] = params["impersonate_user"]
    ctx = None
    if server and server.startswith("https"):
        ctx = _ssl_context(validate, ca_bytes, ca_cert, cert_bytes, key_bytes, client_cert, client_key)
    config = ClusterConfig(server, ctx, headers, proxy, source)
    config.impersonate_groups = list(params.get("impersonate_groups") or [])
    return config


def _in_cluster_config(params):
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    with open(IN_CLUSTER_TOKEN) as handle:
        token = handle.read().strip()
    if ":" in host:
        host = "[%s]" % host
    ctx = _ssl_context(params.get("validate_certs") is not False, ca_file=IN_CLUSTER_CA)
    config = ClusterConfig("https://%s:%s" % (host, port), ctx, {"Authorization": "Bearer " + token}, None, "in-cluster service account")
    config.impersonate_groups = []
    return config


PERMANENT_500_MARKERS = (b"failed to create typed patch object", b"failed to convert", b"quantities must match")


def _is_permanent(data):
    """Server-side apply answers schema or quantity mismatches with a 500 that retrying cannot fix."""
    return any(marker in (data or b"") for marker in PERMANENT_500_MARKERS)


class KubeClient:
    """Keep-alive JSON client with retries. `stats` counts requests per HTTP verb."""

    def __init__(self, config, timeout=30, retries=5, backoff=0.5):
        self.config = config
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._conn = None
        self.stats = {}

    def _connect(self):
        cfg = self.config
        target_host, target_port = cfg.hostname, cfg.port
        if cfg.proxy:
            proxy = urlsplit(cfg.proxy)
            target_host, target_port = proxy.hostname, proxy.port or 3128
        if cfg.scheme == "https":
            conn = http_client.HTTPSConnection(target_host, target_port, timeout=self.timeout, context=cfg.ssl_context)
        else:
            conn = http_client.HTTPConnection(target_host, target_port, timeout=self.timeout)
        if cfg.proxy:
            conn.set_tunnel(cfg.hostname, cfg.port)
        return conn

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _headers(self, content_type, has_body):
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        headers.update(self.config.headers)
        if has_body:
            headers["Content-Type"] = content_type
        return headers

    def request(self, method, path, query=None, body=None, content_type="application/json"):
        """Send one request; return the decoded JSON body (or None). Raises ApiError on HTTP errors."""
        url = self.config.base_path + path
        if query:
            url += "?" + urlencode([(k, v) for k, v in query.items() if v is not None])
        payload = None if body is None else json.dumps(body).encode("utf-8")
        headers = self._headers(content_type, payload is not None)
        for group in getattr(self.config, "impersonate_groups", []):
            headers.setdefault("Impersonate-Group", group)
        attempt = 0
        while True:
            attempt += 1
            try:
                if self._conn is None:
                    self._conn = self._connect()
                self._conn.request(method, url, body=payload, headers=headers)
                resp = self._conn.getresponse()
                data = resp.read()
                self.stats[method] = self.stats.get(method, 0) + 1
            except (socket.timeout, ConnectionError, http_client.HTTPException, ssl.SSLError, OSError) as exc:
                self.close()
                if isinstance(exc, ssl.SSLCertVerificationError):
                    raise ConnectionFailed(
                        "TLS verification of %s failed: %s (set ca_cert, or validate_certs: false for a test cluster)" % (self.config.server, exc)
                    )
                if attempt >= self.retries:
                    raise ConnectionFailed(
                        "cannot reach the Kubernetes API server at %s (%s, from %s): %s"
                        % (self.config.server, method, self.config.source, exc)
                    )
                time.sleep(self.backoff * (2 ** (attempt - 1)))
                continue
            if resp.status in RETRY_STATUSES and attempt < self.retries and not _is_permanent(data):
                retry_after = resp.getheader("Retry-After")
                delay = float(retry_after) if retry_after and retry_after.isdigit() else self.backoff * (2 ** (attempt - 1))
                time.sleep(min(delay, 10))
                continue
            return self._decode(method, path, resp.status, data)

    @staticmethod
    def _decode(method, path, status, data):
        text = data.decode("utf-8", "replace") if data else ""
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        if status < 400:
            return parsed if parsed is not None else text
        body = parsed if isinstance(parsed, dict) else {}
        message = body.get("message") or text.strip() or "HTTP %d" % status
        raise ApiError(
            "%s %s: %s" % (method, path, message),
            status=status,
            reason=body.get("reason"),
            body=body,
            causes=(body.get("details") or {}).get("causes"),
        )

    # Convenience verbs -------------------------------------------------------------------
    def get(self, path, query=None):
        return self.request("GET", path, query=query)

    def delete(self, path, query=None, body=None):
        return self.request("DELETE", path, query=query, body=body)

    def apply_patch(self, path, obj, field_manager, force=False, dry_run=False):
        query = {
            "fieldManager": field_manager,
            "fieldValidation": "Strict",
            "force": "true" if force else None,
            "dryRun": "All" if dry_run else None,
        }
        return self.request("PATCH", path, query=query, body=obj, content_type="application/apply-patch+yaml")

    def post(self, path, obj, dry_run=False):
        return self.request("POST", path, query={"dryRun": "All" if dry_run else None}, body=obj)


def path_quote(value):
    return quote(str(value), safe="")
