# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""A small Kubernetes REST client: kubeconfig/in-cluster/explicit auth, one keep-alive
connection per module run, retries with backoff for 429/5xx/dropped connections.

It speaks plain HTTP+JSON with the standard library so that a module starts fast and needs no
third-party client; option names follow kubernetes.core so AWX credentials work unchanged.
Kubeconfigs are read as kubectl reads them (merge of KUBECONFIG files, paths relative to the file
that names them, impersonation, exec credential plugins with expiry and 401 refresh,
tls-server-name, proxy-url with credentials or SOCKS5, HTTPS_PROXY/NO_PROXY). What it cannot honour
fails naming the field: a request is never sent with other credentials than the kubeconfig asks for.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import calendar
import ipaddress
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import tempfile
import time

try:
    import http.client as http_client
    from urllib.parse import urlencode, urlsplit, quote, unquote
except ImportError:  # pragma: no cover - Python 2 is not supported, keeps sanity import checks quiet
    http_client = None
    urlencode = urlsplit = quote = unquote = None

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

# Where a pod's service account is mounted; a module attribute so tests can point it elsewhere.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
RETRY_STATUSES = (429, 500, 502, 503, 504)
USER_AGENT = "aiinfra.cluster/0.1.0"
# A list's objects without their content (names, labels, annotations): PartialObjectMetadataList.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
# Refresh an expiring credential this many seconds early, so a request never races its expiry.
EXPIRY_MARGIN = 5
# client-go re-reads a token file at most once a minute (the kubelet rotates projected tokens).
TOKEN_FILE_REREAD = 60
EXEC_TIMEOUT = 60


class Impersonation:
    """Impersonate-* headers: one Impersonate-Group header per group, as the API server requires."""

    def __init__(self, user=None, uid=None, groups=None, extra=None):
        self.user = user or None
        self.uid = uid or None
        self.groups = list(groups or [])
        self.extra = {}
        for key, values in (extra or {}).items():
            self.extra[key] = [str(v) for v in values] if isinstance(values, (list, tuple)) else [str(values)]
        if not self.user and (self.uid or self.groups or self.extra):
            raise ConfigError(
                "impersonating groups, a uid or extra fields needs a user to impersonate as well "
                "(option impersonate_user or the kubeconfig user's 'as')"
            )

    def header_items(self):
        if not self.user:
            return []
        items = [("Impersonate-User", self.user)]
        if self.uid:
            items.append(("Impersonate-Uid", self.uid))
        items.extend(("Impersonate-Group", group) for group in self.groups)
        for key in sorted(self.extra):
            items.extend(("Impersonate-Extra-" + _header_key_escape(key), value) for value in self.extra[key])
        return items


_TOKEN_CHARS = frozenset(b"!#$&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _header_key_escape(key):
    """Percent-encode what may not appear in a header name (client-go does the same, the server undoes it)."""
    return "".join(chr(b) if b in _TOKEN_CHARS else "%%%02X" % b for b in bytearray(key.encode("utf-8")))


class StaticCredentials:
    """A bearer token or basic auth that never changes: nothing to refresh on a 401."""

    def __init__(self, authorization):
        self._authorization = authorization

    def authorization(self):
        return self._authorization

    def refresh(self):
        return False


class FileTokenCredentials:
    """tokenFile and the in-cluster token: re-read periodically and after a 401 (rotated tokens)."""

    def __init__(self, path, what):
        self.path = path
        self.what = what
        self._token = self._read()
        self._read_at = time.monotonic()

    def _read(self):
        try:
            with open(self.path) as handle:
                token = handle.read().strip()
        except (IOError, OSError) as exc:
            raise ConfigError("%s %s cannot be read: %s" % (self.what, self.path, getattr(exc, "strerror", None) or exc))
        if not token:
            raise ConfigError("%s %s is empty" % (self.what, self.path))
        return token

    def authorization(self):
        if time.monotonic() - self._read_at >= TOKEN_FILE_REREAD:
            self._reread()
        return "Bearer " + self._token

    def _reread(self):
        """A failed re-read keeps the last token (client-go does too): the file may be mid-rotation."""
        self._read_at = time.monotonic()
        try:
            self._token = self._read()
        except ConfigError:
            return False
        return True

    def refresh(self):
        old = self._token
        return self._reread() and self._token != old


class ExecCredentials:
    """A client-go credential plugin (EKS, GKE, OIDC helpers): run when first needed, again before
    status.expirationTimestamp and once after a 401."""

    def __init__(self, spec, user_name, cluster_info):
        self.user_name = user_name
        self.command = spec.get("command")
        self.api_version = spec.get("apiVersion")
        where = "kubeconfig user %s: users[].user.exec" % user_name
        if not self.command:
            raise ConfigError("%s.command is not set" % where)
        if self.api_version not in EXEC_API_VERSIONS:
            raise ConfigError("%s.apiVersion %r is not supported (use one of %s)" % (where, self.api_version, ", ".join(EXEC_API_VERSIONS)))
        mode = spec.get("interactiveMode") or "IfAvailable"
        if mode not in ("Never", "IfAvailable", "Always"):
            raise ConfigError("%s.interactiveMode %r is not one of Never, IfAvailable, Always" % (where, mode))
        if mode == "Always":
            raise ConfigError(
                "%s.interactiveMode is Always, but a module has no terminal for the plugin to prompt on; "
                "use a plugin mode that needs no prompt (Never or IfAvailable)" % where
            )
        self.args = [str(a) for a in spec.get("args") or []]
        self.env = dict((str(item.get("name")), str(item.get("value", ""))) for item in spec.get("env") or [] if item.get("name"))
        self.install_hint = spec.get("installHint")
        self.cluster_info = cluster_info if spec.get("provideClusterInfo") else None
        self.invocations = 0
        self.expires_at = None
        self.token = None
        self.cert_pair = None
        self._run()

    def _exec_info(self):
        info = {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
        if self.cluster_info is not None:
            info["spec"]["cluster"] = self.cluster_info
        return json.dumps(info)

    def _run(self):
        env = dict(os.environ)
        env.update(self.env)
        env["KUBERNETES_EXEC_INFO"] = self._exec_info()
        label = "kubeconfig user %s: credential plugin %r" % (self.user_name, self.command)
        try:
            out = subprocess.run(
                [self.command] + self.args,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                check=False,
                timeout=EXEC_TIMEOUT,
            )
        except OSError as exc:
            hint = (" (%s)" % self.install_hint.strip()) if self.install_hint else ""
            raise ConfigError("%s could not run: %s%s" % (label, getattr(exc, "strerror", None) or exc, hint))
        except subprocess.TimeoutExpired:
            raise ConfigError("%s did not answer within %ds" % (label, EXEC_TIMEOUT))
        self.invocations += 1
        if out.returncode != 0:
            raise ConfigError("%s failed (rc=%d): %s" % (label, out.returncode, out.stderr.decode("utf-8", "replace").strip()[-500:]))
        try:
            cred = json.loads(out.stdout.decode("utf-8"))
        except ValueError:
            raise ConfigError("%s printed no ExecCredential JSON" % label)
        if not isinstance(cred, dict) or cred.get("apiVersion") != self.api_version:
            raise ConfigError("%s answered apiVersion %r, the kubeconfig asks for %s" % (label, (cred or {}).get("apiVersion"), self.api_version))
        status = cred.get("status") or {}
        cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
        if not status.get("token") and not (cert and key):
            raise ConfigError("%s returned neither status.token nor status.clientCertificateData/clientKeyData" % label)
        self.token = status.get("token")
        self.cert_pair = (cert.encode("utf-8"), key.encode("utf-8")) if cert and key else None
        stamp = status.get("expirationTimestamp")
        self.expires_at = _parse_rfc3339(stamp, "%s status.expirationTimestamp" % label) if stamp else None

    def expired(self):
        return self.expires_at is not None and time.time() >= self.expires_at - EXPIRY_MARGIN

    def authorization(self):
        if self.expired():
            self._run()
        return "Bearer " + self.token if self.token else None

    def refresh(self):
        self._run()
        return True


class AuthProviderCredentials:
    """users[].user.auth-provider oidc, through the official kubernetes package's kubeconfig loader
    (imported only here): it uses the id-token and, once it has expired, refreshes it with the
    refresh-token at the issuer and writes the new tokens back into the kubeconfig, as kubectl does."""

    def __init__(self, user_name, load):
        self.user_name = user_name
        self._load = load
        self.token = None
        self.expires_at = None
        self._fetch()

    def _fetch(self):
        where = "kubeconfig user %s: users[].user.auth-provider oidc" % self.user_name
        try:
            from kubernetes.client import Configuration
        except ImportError:
            raise ConfigError(
                "%s needs the Python package kubernetes on the host that runs the module (pip install kubernetes), "
                "or a credential plugin in users[].user.exec instead (for example kubelogin)" % where
            )
        configuration = Configuration()
        try:
            self._load(configuration)
        except Exception as exc:  # pylint: disable=broad-except
            raise ConfigError("%s could not be loaded: %s" % (where, exc))
        token = configuration.api_key.get("BearerToken") or configuration.api_key.get("authorization") or ""
        token = token[len("Bearer "):] if token.startswith("Bearer ") else token
        if not token:
            raise ConfigError("%s gave no id-token" % where)
        self.token, self.expires_at = token, _jwt_expiry(token)
        if self.expires_at is not None and time.time() >= self.expires_at:
            raise ConfigError("%s: the id-token has expired and could not be refreshed (check refresh-token, client-id and idp-issuer-url)" % where)

    def authorization(self):
        if self.expires_at is not None and time.time() >= self.expires_at - EXPIRY_MARGIN:
            self._fetch()
        return "Bearer " + self.token

    def refresh(self):
        old = self.token
        self._fetch()
        return self.token != old


def _jwt_expiry(token):
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode("utf-8"))
    except (TypeError, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, (int, float)) else None


_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


def _parse_rfc3339(value, what):
    match = _RFC3339.match(str(value))
    if not match:
        raise ConfigError("%s %r is not an RFC 3339 time" % (what, value))
    seconds = calendar.timegm(tuple(int(g) for g in match.groups()[:6]) + (0, 0, 0))
    if match.group(7):
        seconds += float(match.group(7))
    zone = match.group(8)
    if zone not in ("Z", "z"):
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= offset if zone[0] == "+" else -offset
    return seconds


class Proxy:
    """An http:// (CONNECT, with user:password@ as Proxy-Authorization) or socks5:// proxy."""

    def __init__(self, url, what):
        parts = urlsplit(url if "://" in url else "http://" + url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "socks5", "socks5h") or not parts.hostname:
            raise ConfigError("%s %r is not supported: use http://[user:password@]host:port or socks5://[user:password@]host:port" % (what, url))
        self.url = url
        self.scheme = "socks5" if scheme.startswith("socks5") else "http"
        self.hostname = parts.hostname
        self.port = parts.port or (1080 if self.scheme == "socks5" else 80)  # Go's defaults, as kubectl
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else ""
        self.what = what

    def auth_header(self):
        if self.scheme != "http" or self.username is None:
            return {}
        return {"Proxy-Authorization": _basic_auth(self.username, self.password)}


def _no_proxy_matches(entry, host, port):
    """One NO_PROXY entry, with Go's net/http rules (kubectl's): an IP, a CIDR, a domain (and its
    subdomains) or .domain (subdomains only), each with an optional :port; * matches everything."""
    entry = entry.strip().lower()
    if entry in ("", "*"):
        return entry == "*"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if "/" in entry:
        try:
            return address is not None and address in ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False
    bracketed = re.match(r"^\[([^\]]+)\](?::(\d+))?$", entry)
    if bracketed:
        entry, entry_port = bracketed.group(1), bracketed.group(2)
    elif entry.count(":") == 1:
        entry, entry_port = entry.split(":")
    else:
        entry_port = None
    if entry_port and entry_port != str(port):
        return False
    if address is not None:
        try:
            return address == ipaddress.ip_address(entry)
        except ValueError:
            return False
    if entry.startswith("."):
        return host.endswith(entry)
    return host == entry or host.endswith("." + entry)


def proxy_from_environment(scheme, host, port):
    """HTTPS_PROXY (https) / HTTP_PROXY (http) unless NO_PROXY matches; like kubectl, never for
    localhost or loopback addresses."""
    host = host.lower()
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            return None
    names = ("HTTPS_PROXY", "https_proxy") if scheme == "https" else ("HTTP_PROXY", "http_proxy")
    url = next((os.environ[n] for n in names if os.environ.get(n)), None)
    if not url:
        return None
    no_proxy = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    if any(_no_proxy_matches(entry, host, port) for entry in no_proxy.split(",")):
        return None
    return Proxy(url, "environment variable %s" % next(n for n in names if os.environ.get(n)))


class ClusterConfig:
    """Where and how to talk to one API server."""

    def __init__(self, server, ssl_context=None, headers=None, proxy=None, source="", tls_server_name=None,
                 credentials=None, impersonation=None, tls_factory=None):
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
        # An explicit proxy (option proxy or kubeconfig proxy-url); None means the environment decides.
        self.proxy = proxy
        self.source = source
        self.tls_server_name = tls_server_name or None
        self.credentials = credentials
        self.impersonation = impersonation or Impersonation()
        self._tls_factory = tls_factory
        self._cert_pair = getattr(credentials, "cert_pair", None)
        if proxy:
            Proxy(proxy, "proxy")  # reject an unsupported scheme now, not at the first request

    def connection_proxy(self):
        if self.proxy:
            return Proxy(self.proxy, "proxy")
        return proxy_from_environment(self.scheme, self.hostname, self.port)

    def header_items(self):
        """Authorization (refreshed when it expires) and impersonation headers, in send order."""
        items = list(self.headers.items())
        authorization = self.credentials.authorization() if self.credentials is not None else None
        self._sync_client_certificate()
        if authorization:
            items.append(("Authorization", authorization))
        return items + self.impersonation.header_items()

    def refresh_credentials(self):
        """After a 401: get new credentials where their source can give them (exec, token files)."""
        if self.credentials is None or not self.credentials.refresh():
            return False
        self._sync_client_certificate()
        return True

    def _sync_client_certificate(self):
        pair = getattr(self.credentials, "cert_pair", None)
        if pair != self._cert_pair and self._tls_factory is not None:
            self.ssl_context = self._tls_factory(*(pair or (None, None)))
            self._cert_pair = pair


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


def _resolve(base_dir, path):
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.join(base_dir, path)


def _resolve_file_references(doc, base_dir):
    """Make a file's relative paths absolute against that file's own directory, before merging
    (kubectl's ResolveLocalPaths); an exec command is a path only when it holds a separator."""
    for item in doc.get("clusters") or []:
        cluster = item.get("cluster") or {}
        if cluster.get("certificate-authority"):
            cluster["certificate-authority"] = _resolve(base_dir, cluster["certificate-authority"])
    for item in doc.get("users") or []:
        user = item.get("user") or {}
        for key in ("client-certificate", "client-key", "tokenFile"):
            if user.get(key):
                user[key] = _resolve(base_dir, user[key])
        spec = user.get("exec") or {}
        if spec.get("command") and os.sep in spec["command"]:
            spec["command"] = _resolve(base_dir, spec["command"])
    return doc


def _kubeconfig_paths(param):
    """(paths, origin): the option takes one path, "a:b" or a list, and every file it names must exist;
    of KUBECONFIG, missing files are skipped, as kubectl does."""
    if param:
        items = param if isinstance(param, list) else str(param).split(os.pathsep)
        return [os.path.expanduser(str(p)) for p in items if p], "kubeconfig"
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
        path = _resolve(base_dir, section[key])
        if not os.path.exists(path):
            raise ConfigError("kubeconfig %s %s for %s does not exist" % (key, path, what))
        with open(path, "rb") as handle:
            return handle.read()
    return None


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
    try:
        if ca_file:
            ctx.load_verify_locations(cafile=ca_file)
        elif ca_bytes:
            ctx.load_verify_locations(cadata=ca_bytes.decode("utf-8"))
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError("the cluster's certificate-authority could not be loaded: %s" % exc)
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


def _explicit_credentials(params):
    """Credentials given as options replace the kubeconfig user's (kubectl --token does the same),
    so a kubeconfig client certificate never outranks the token the task asked for."""
    if params.get("api_key"):
        return StaticCredentials("Bearer " + params["api_key"])
    if params.get("username") and params.get("password"):
        return StaticCredentials(_basic_auth(params["username"], params["password"]))
    return None


def _impersonation(params, user):
    """Options win over the kubeconfig user's as / as-uid / as-groups / as-user-extra, field by field."""
    groups = params.get("impersonate_groups")
    extra = params.get("impersonate_extra")
    return Impersonation(
        user=params.get("impersonate_user") or user.get("as"),
        uid=params.get("impersonate_uid") or user.get("as-uid"),
        groups=groups if groups else user.get("as-groups"),
        extra=extra if extra else user.get("as-user-extra"),
    )


def _read_kubeconfig(kubeconfig):
    """(merged doc, paths read, base dir for inline docs, source) for the kubeconfig option or KUBECONFIG."""
    if isinstance(kubeconfig, dict):
        return kubeconfig, None, os.getcwd(), "kubeconfig (inline)"
    paths, origin = _kubeconfig_paths(kubeconfig)
    missing = [p for p in paths if not os.path.exists(p)]
    existing = [p for p in paths if os.path.exists(p)]
    if origin == "kubeconfig" and missing:
        raise ConfigError("kubeconfig file %s does not exist (from %s)" % (", ".join(missing), origin))
    if not existing:
        return None, paths, None, origin
    docs = []
    for path in existing:
        try:
            doc = _read_yaml_file(path)
        except (OSError, IOError, yaml.YAMLError) as exc:
            raise ConfigError("kubeconfig %s could not be read: %s" % (path, exc))
        if not isinstance(doc, dict):
            raise ConfigError("kubeconfig %s is not a kubeconfig (a YAML mapping)" % path)
        docs.append(_resolve_file_references(doc, os.path.dirname(os.path.abspath(path))))
    return _merge_kubeconfigs(docs), existing, os.path.dirname(os.path.abspath(existing[0])), ":".join(existing)


def _exec_cluster_info(server, cluster, ca_bytes):
    """spec.cluster of KUBERNETES_EXEC_INFO for plugins with provideClusterInfo."""
    info = {"server": server}
    for key in ("tls-server-name", "insecure-skip-tls-verify", "proxy-url", "disable-compression"):
        if cluster.get(key) is not None:
            info[key] = cluster[key]
    if ca_bytes:
        info["certificate-authority-data"] = base64.b64encode(ca_bytes).decode("ascii")
    extension = _named(cluster.get("extensions"), "client.authentication.k8s.io/exec")
    if extension is not None:
        info["config"] = extension.get("extension")
    return info


def _auth_provider_loader(doc, paths, context_name):
    """Load the kubeconfig through the kubernetes package: from its files (so refreshed tokens are
    written back to the file that holds them) or from the inline dict."""

    def load(configuration):
        from kubernetes.config import kube_config

        if paths:
            kube_config.load_kube_config(
                config_file=os.pathsep.join(paths), context=context_name, client_configuration=configuration, persist_config=True
            )
        else:
            kube_config.load_kube_config_from_dict(doc, context=context_name, client_configuration=configuration, persist_config=False)

    return load


def _auth_provider_credentials(provider, user_name, doc, paths, context_name):
    name = (provider or {}).get("name")
    where = "kubeconfig user %s: users[].user.auth-provider %r" % (user_name, name)
    if name == "gcp":
        raise ConfigError("%s was removed from kubectl and client-go; use the gke-gcloud-auth-plugin credential plugin (users[].user.exec)" % where)
    if name == "azure":
        raise ConfigError("%s was removed from kubectl and client-go; use the kubelogin credential plugin (users[].user.exec)" % where)
    if name != "oidc":
        raise ConfigError("%s is not supported (only oidc is); use a credential plugin in users[].user.exec instead" % where)
    return AuthProviderCredentials(user_name, _auth_provider_loader(doc, paths, context_name))


def _kubeconfig_credentials(user, user_name, base_dir, cert_bytes, server, cluster, ca_bytes, doc, paths, context_name):
    """The kubeconfig user's credentials, in client-go's order; None when it has none (anonymous by choice)."""
    if user.get("auth-provider"):
        if user.get("exec"):
            raise ConfigError("kubeconfig user %s sets both users[].user.auth-provider and users[].user.exec; keep one" % user_name)
        return _auth_provider_credentials(user["auth-provider"], user_name, doc, paths, context_name)
    if user.get("tokenFile"):
        path = _resolve(base_dir, user["tokenFile"])
        if not os.path.exists(path):
            raise ConfigError("kubeconfig user %s: tokenFile %s does not exist" % (user_name, path))
        return FileTokenCredentials(path, "kubeconfig user %s: tokenFile" % user_name)
    if user.get("token"):
        return StaticCredentials("Bearer " + user["token"])
    if user.get("username") and user.get("password"):
        return StaticCredentials(_basic_auth(user["username"], user["password"]))
    if user.get("exec") and not cert_bytes:
        return ExecCredentials(user["exec"], user_name, _exec_cluster_info(server, cluster, ca_bytes))
    return None


def config_from_params(params):
    """Resolve connection settings the way kubernetes.core does: explicit options win, then the
    kubeconfig (path, "a:b", list or dict, optional context), then the in-cluster service account."""
    params = dict(params or {})
    kubeconfig = params.get("kubeconfig")
    host = params.get("host")
    validate = params.get("validate_certs")
    ca_cert = _check_file(params.get("ca_cert"), "ca_cert")
    client_cert = _check_file(params.get("client_cert"), "client_cert")
    client_key = _check_file(params.get("client_key"), "client_key")
    credentials = _explicit_credentials(params)
    explicit_identity = credentials is not None or client_cert is not None
    tls_server_name = None

    if kubeconfig is not None or not host:
        doc, paths, base_dir, source = _read_kubeconfig(kubeconfig)
        if doc is None:
            if source == "default" and os.path.exists(os.path.join(SERVICE_ACCOUNT_DIR, "token")) and os.environ.get("KUBERNETES_SERVICE_HOST"):
                return _in_cluster_config(params)
            if source == "default" and host is None:
                raise ConfigError(
                    "no cluster to talk to: ~/.kube/config does not exist and no kubeconfig, host or "
                    "K8S_AUTH_KUBECONFIG was given"
                )
            raise ConfigError("kubeconfig file %s does not exist (from %s)" % (", ".join(paths), source))
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
        user_entry = _named(doc.get("users"), user_name) if user_name else {}
        if user_entry is None:
            # Going on without it would send anonymous requests where the context names a user.
            raise ConfigError("context %r refers to user %r, which %s does not define" % (context_name, user_name, source))
        user = user_entry.get("user") or {}
        server = host or cluster.get("server")
        tls_server_name = cluster.get("tls-server-name")
        if validate is None:
            validate = not cluster.get("insecure-skip-tls-verify", False)
        ca_bytes = None if ca_cert else _material(cluster, "certificate-authority", base_dir, "cluster %s" % context.get("cluster"))
        cert_bytes = key_bytes = None
        if not explicit_identity:
            cert_bytes = _material(user, "client-certificate", base_dir, "user %s" % user_name)
            key_bytes = _material(user, "client-key", base_dir, "user %s" % user_name)
            credentials = _kubeconfig_credentials(
                user, user_name, base_dir, cert_bytes, server, cluster, ca_bytes or _read_optional(ca_cert), doc, paths, context_name
            )
        impersonation = _impersonation(params, user)
        proxy = params.get("proxy") or cluster.get("proxy-url")
    else:
        source = "host %s" % host
        server, proxy = host, params.get("proxy")
        ca_bytes = cert_bytes = key_bytes = None
        impersonation = _impersonation(params, {})
        if validate is None:
            validate = True

    def tls_factory(exec_cert=None, exec_key=None):
        return _ssl_context(validate, ca_bytes, ca_cert, exec_cert or cert_bytes, exec_key or key_bytes, client_cert, client_key)

    exec_pair = getattr(credentials, "cert_pair", None) or (None, None)
    ctx = tls_factory(*exec_pair) if server and server.startswith("https") else None
    return ClusterConfig(
        server, ctx, {}, proxy, source, tls_server_name, credentials, impersonation, tls_factory if ctx is not None else None
    )


def _read_optional(path):
    if not path:
        return None
    with open(path, "rb") as handle:
        return handle.read()


def _in_cluster_config(params):
    """The pod's service account, with the same impersonation and explicit credentials as any other config."""
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:
        host = "[%s]" % host
    credentials = _explicit_credentials(params) or FileTokenCredentials(os.path.join(SERVICE_ACCOUNT_DIR, "token"), "in-cluster service account token")
    ca_file = _check_file(params.get("ca_cert"), "ca_cert") or os.path.join(SERVICE_ACCOUNT_DIR, "ca.crt")
    ctx = _ssl_context(params.get("validate_certs") is not False, ca_file=ca_file)
    return ClusterConfig(
        "https://%s:%s" % (host, port),
        ctx,
        {},
        params.get("proxy"),
        "in-cluster service account",
        credentials=credentials,
        impersonation=_impersonation(params, {}),
    )


def _recv_exact(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the SOCKS5 proxy closed the connection")
        data += chunk
    return data


def _socks5_connect(proxy, host, port, timeout):
    """A TCP stream to host:port through a SOCKS5 proxy (RFC 1928, user/password per RFC 1929); the
    host name is resolved by the proxy, as kubectl's SOCKS5 dialer does."""
    sock = socket.create_connection((proxy.hostname, proxy.port), timeout)
    try:
        methods = b"\x00\x02" if proxy.username is not None else b"\x00"
        sock.sendall(b"\x05" + struct.pack("B", len(methods)) + methods)
        version, method = struct.unpack("BB", _recv_exact(sock, 2))
        if version != 5 or method not in bytearray(methods):
            raise ConfigError("SOCKS5 proxy %s:%d accepts none of the offered authentication methods" % (proxy.hostname, proxy.port))
        if method == 2:
            user, password = proxy.username.encode("utf-8"), proxy.password.encode("utf-8")
            sock.sendall(b"\x01" + struct.pack("B", len(user)) + user + struct.pack("B", len(password)) + password)
            if _recv_exact(sock, 2)[1:2] != b"\x00":
                raise ConfigError("SOCKS5 proxy %s:%d rejected the user name and password of the proxy URL" % (proxy.hostname, proxy.port))
        try:
            address = ipaddress.ip_address(host)
            target = (b"\x01" if address.version == 4 else b"\x04") + address.packed
        except ValueError:
            name = host.encode("idna")
            target = b"\x03" + struct.pack("B", len(name)) + name
        sock.sendall(b"\x05\x01\x00" + target + struct.pack(">H", port))
        reply = bytearray(_recv_exact(sock, 4))
        if reply[1] != 0:
            raise ConnectionError("SOCKS5 proxy %s:%d could not connect to %s:%d (reply code %d)" % (proxy.hostname, proxy.port, host, port, reply[1]))
        bound = {1: 4, 4: 16}.get(reply[3])
        _recv_exact(sock, (bound if bound else bytearray(_recv_exact(sock, 1))[0]) + 2)
    except BaseException:
        sock.close()
        raise
    return sock


if http_client is not None:

    class _Connection(http_client.HTTPConnection):
        """One connection to the API server: direct, through an HTTP CONNECT tunnel or SOCKS5; TLS
        with SNI and hostname verification against tls-server-name when the kubeconfig sets one."""

        def __init__(self, cfg, proxy, timeout):
            self.cfg, self.proxy = cfg, proxy
            if proxy is not None and proxy.scheme == "http":
                http_client.HTTPConnection.__init__(self, proxy.hostname, proxy.port, timeout=timeout)
                if cfg.scheme == "https":
                    self.set_tunnel(cfg.hostname, cfg.port, headers=proxy.auth_header())
            else:
                http_client.HTTPConnection.__init__(self, cfg.hostname, cfg.port, timeout=timeout)
            self.ssl_context = cfg.ssl_context

        @property
        def absolute_form(self):
            """Plain http through an HTTP proxy: requests name the whole URL (no tunnel)."""
            return self.proxy is not None and self.proxy.scheme == "http" and self.cfg.scheme == "http"

        def connect(self):
            if self.proxy is not None and self.proxy.scheme == "socks5":
                self.sock = _socks5_connect(self.proxy, self.cfg.hostname, self.cfg.port, self.timeout)
            else:
                http_client.HTTPConnection.connect(self)
            if self.cfg.scheme == "https":
                self.sock = self.ssl_context.wrap_socket(self.sock, server_hostname=self.cfg.tls_server_name or self.cfg.hostname)


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
        return _Connection(self.config, self.config.connection_proxy(), self.timeout)

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _headers(self, content_type, has_body, accept="application/json"):
        """(name, value) pairs: a list, because impersonation repeats Impersonate-Group."""
        headers = [("Accept", accept), ("User-Agent", USER_AGENT)]
        if has_body:
            headers.append(("Content-Type", content_type))
        return headers + self.config.header_items()

    def _send(self, method, url, payload, headers):
        conn = self._conn
        if getattr(conn, "ssl_context", self.config.ssl_context) is not self.config.ssl_context:
            self.close()  # new client certificate from a credential plugin: new TLS session
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        if getattr(conn, "absolute_form", False):
            url = "%s://%s:%d%s" % (self.config.scheme, self.config.hostname, self.config.port, url)
            headers = headers + list(conn.proxy.auth_header().items())
        conn.putrequest(method, url)
        for name, value in headers:
            conn.putheader(name, value)
        if payload is not None or method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", str(len(payload or b"")))
        conn.endheaders(payload)
        return conn.getresponse()

    def request(self, method, path, query=None, body=None, content_type="application/json", accept="application/json"):
        """Send one request; return the decoded JSON body (or None). Raises ApiError on HTTP errors.
        `accept` can ask for another representation, such as metadata only (METADATA_LIST)."""
        url = self.config.base_path + path
        if query:
            url += "?" + urlencode([(k, v) for k, v in query.items() if v is not None])
        payload = None if body is None else json.dumps(body).encode("utf-8")
        attempt = 0
        reauthenticated = False
        while True:
            attempt += 1
            headers = self._headers(content_type, payload is not None, accept)
            try:
                resp = self._send(method, url, payload, headers)
                data = resp.read()
                self.stats[method] = self.stats.get(method, 0) + 1
            except ConfigError:
                self.close()
                raise
            except (socket.timeout, ConnectionError, http_client.HTTPException, ssl.SSLError, OSError) as exc:
                self.close()
                if isinstance(exc, ssl.SSLCertVerificationError):
                    raise ConnectionFailed(
                        "TLS verification of %s failed: %s (set ca_cert, or validate_certs: false for a test cluster)"
                        % (self.config.tls_server_name or self.config.server, exc)
                    )
                if attempt >= self.retries:
                    raise ConnectionFailed(
                        "cannot reach the Kubernetes API server at %s (%s, from %s): %s"
                        % (self.config.server, method, self.config.source, exc)
                    )
                time.sleep(self.backoff * (2 ** (attempt - 1)))
                continue
            if resp.status == 401 and not reauthenticated and self.config.refresh_credentials():
                # The credential was rejected (expired or revoked early): nothing was executed, so
                # the same request is sent once more with the new one.
                reauthenticated = True
                attempt -= 1
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
    def get(self, path, query=None, accept="application/json"):
        return self.request("GET", path, query=query, accept=accept)

    def list_all(self, path, query=None, page_size=500, accept="application/json"):
        """Every item of a list, one request per page of page_size items (`continue` tokens)."""
        items, token = [], None
        while True:
            page_query = dict(query or {}, limit=page_size)
            if token:
                page_query["continue"] = token
            body = self.get(path, query=page_query, accept=accept) or {}
            items.extend(body.get("items") or [])
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return items

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
