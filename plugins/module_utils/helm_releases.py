# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Is a Helm release already what a role asks for? Read from the record Helm keeps in the
cluster (one Secret per revision, storage driver `secret`, Helm's default), without the helm binary.

The same test kubernetes.core.helm makes before an upgrade (its default check, no helm-diff):
the latest revision is deployed, its chart name, version and appVersion are the wanted chart's,
and its user-supplied values equal the wanted values. Roles run the helm task only where this says
the release is out of date, so a re-run asks the API server a few reads instead of starting helm."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import gzip
import json
import os
import re
import tarfile

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import HAS_YAML, METADATA_LIST, path_quote

if HAS_YAML:
    import yaml

GZIP_MAGIC = b"\x1f\x8b"


def wanted_chart(chart_ref, chart_version):
    """(name, version, appVersion or None) of the chart a helm task would install.

    A chart directory or packaged .tgz is read; a repository or OCI chart is known by its
    reference and pinned version (its appVersion then is not compared: a chart version's
    appVersion does not change). None where the version cannot be known without helm."""
    if os.path.isdir(chart_ref):
        path = os.path.join(chart_ref, "Chart.yaml")
        if not os.path.isfile(path):
            raise InputError("chart_ref %s: no Chart.yaml in this directory" % chart_ref)
        with open(path) as handle:
            meta = _chart_yaml(handle.read(), path)
    elif os.path.isfile(chart_ref):
        meta = _chart_from_archive(chart_ref)
    else:
        if not chart_version:
            return None
        return (chart_ref.rstrip("/").rsplit("/", 1)[-1], str(chart_version), None)
    name, version = meta.get("name"), meta.get("version")
    if not name or not version:
        raise InputError("chart_ref %s: Chart.yaml has no name or version" % chart_ref)
    if chart_version and str(chart_version) != str(version):
        raise InputError("chart_ref %s holds %s version %s, not the pinned %s" % (chart_ref, name, version, chart_version))
    app = meta.get("appVersion")
    return (str(name), str(version), None if app is None else str(app))


def _chart_from_archive(path):
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive.getmembers():
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "Chart.yaml":
                    return _chart_yaml(archive.extractfile(member).read().decode("utf-8"), path)
    except (tarfile.TarError, OSError) as exc:
        raise InputError("chart_ref %s: not a readable chart archive (%s)" % (path, exc))
    raise InputError("chart_ref %s: no Chart.yaml in the archive" % path)


def _chart_yaml(text, where):
    if HAS_YAML:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError("%s: not valid YAML (%s)" % (where, exc))
        return data if isinstance(data, dict) else {}
    # Without PyYAML: the three top-level scalars this needs.
    out = {}
    for key in ("name", "version", "appVersion"):
        match = re.search(r"^%s:\s*['\"]?([^'\"\n#]+?)['\"]?\s*(#.*)?$" % key, text, re.M)
        if match:
            out[key] = match.group(1)
    return out


def decode_release(secret):
    """The release record in a Helm storage Secret: base64 (Helm's own, inside the Secret's),
    usually gzip, then JSON."""
    raw = base64.b64decode(base64.b64decode((secret.get("data") or {}).get("release") or ""))
    if raw[:2] == GZIP_MAGIC:
        raw = gzip.decompress(raw)
    return json.loads(raw.decode("utf-8"))


def release_states(client, releases):
    """One entry per wanted release: installed, status, revision, chart, up_to_date and why.

    Per namespace one metadata-only list of Helm's Secrets (no release bodies), then one read of
    the latest revision of each release that is deployed. Every chart is read first, so a chart
    that does not hold its pinned version fails before any request."""
    by_namespace = {}
    for rel in releases:
        chart = wanted_chart(rel["chart_ref"], rel.get("chart_version")) if rel.get("state") != "absent" else None
        by_namespace.setdefault(rel["namespace"], []).append(dict(rel, chart=chart))
    out = []
    for namespace, wanted in sorted(by_namespace.items()):
        names = sorted(set(rel["name"] for rel in wanted))
        listed = client.get(
            "/api/v1/namespaces/%s/secrets" % path_quote(namespace),
            query={"labelSelector": "owner=helm,name in (%s)" % ",".join(names)},
            accept=METADATA_LIST,
        ) or {}
        latest = {}
        for item in listed.get("items") or []:
            labels = (item.get("metadata") or {}).get("labels") or {}
            try:
                revision = int(labels.get("version", "0"))
            except ValueError:
                continue
            if revision > latest.get(labels.get("name"), (0, None, None))[0]:
                latest[labels["name"]] = (revision, labels.get("status"), item["metadata"]["name"])
        for rel in wanted:
            out.append(_state(client, namespace, rel, latest.get(rel["name"])))
    return out


def _state(client, namespace, rel, latest):
    state = {"name": rel["name"], "namespace": namespace, "installed": False, "status": None, "revision": None,
             "chart": None, "app_version": None, "up_to_date": False, "reasons": []}
    absent = rel.get("state") == "absent"
    if latest is None:
        state["up_to_date"] = absent
        if not absent:
            state["reasons"].append("not installed")
        return state
    revision, status, secret_name = latest
    state.update(installed=not (status or "").startswith("uninstall"), status=status, revision=revision)
    if absent:
        state["up_to_date"] = not state["installed"]
        if state["installed"]:
            state["reasons"].append("installed, to be removed")
        return state
    if status != "deployed":
        state["reasons"].append("latest revision %d is %s" % (revision, status))
        return state
    record = decode_release(client.get("/api/v1/namespaces/%s/secrets/%s" % (path_quote(namespace), path_quote(secret_name))))
    meta = (record.get("chart") or {}).get("metadata") or {}
    state.update(chart="%s-%s" % (meta.get("name"), meta.get("version")), app_version=meta.get("appVersion"))
    chart = rel["chart"]
    if chart is None:
        state["reasons"].append("no chart_version to compare with the installed chart")
    else:
        name, version, app = chart
        if (meta.get("name"), str(meta.get("version"))) != (name, version):
            state["reasons"].append("chart %s installed, %s-%s wanted" % (state["chart"], name, version))
        elif app is not None and str(meta.get("appVersion") or "") != app:
            state["reasons"].append("appVersion %s installed, %s wanted" % (meta.get("appVersion"), app))
    if (record.get("config") or {}) != (rel.get("values") or {}):
        state["reasons"].append("values differ")
    state["up_to_date"] = not state["reasons"]
    return state
