# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Pure builders for datasets: a Fluid Dataset with its runtime (and optional credentials Secret
and cache-warming DataLoad), and a DVC pull into a PVC as a batch Job.

Each builder takes the module's params and returns the manifests to apply, in order. Bad input,
credentials in plain options included, raises InputError naming the option.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import json
import re

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError
from ansible_collections.aiinfra.cluster.plugins.module_utils.serving_builder import MANAGED_BY, object_metadata

FLUID_API = "data.fluid.io/v1alpha1"
RUNTIME_KINDS = {"alluxio": "AlluxioRuntime", "juicefs": "JuiceFSRuntime"}
DEFAULT_TIERED_STORE = [{"medium": "MEM", "path": "/dev/shm", "quota": "2Gi", "high": "0.95", "low": "0.7"}]
# Option names that carry secrets; they belong in a Secret referenced through encryptOptions.
_SECRET_WORDS = re.compile(r"(secret|password|passwd|token|access[-_.]?key|accesskeyid|metaurl|credential|private[-_.]?key)", re.I)

DVC_VERSION = "3.67.1"
DVC_IMAGE = "python:3.12-slim"
DATA_MOUNT = "/data"
VERSION_LABEL = "aiinfra.cluster/data-version"
# Which Dataset a DataLoad made by this collection warms: superseded loads are found by it.
DATALOAD_LABEL = "aiinfra.cluster/dataload-of"


def looks_secret(option_name):
    return bool(_SECRET_WORDS.search(option_name))


def credentials_secret_name(params):
    return params.get("secret_name") or "%s-fluid-credentials" % params["name"]


def _encrypt_options(mount, index, params):
    default_secret = credentials_secret_name(params) if (params.get("credentials") or params.get("secret_name")) else None
    entries = mount.get("encrypt_options")
    if entries is None and params.get("credentials"):
        # Credentials given to the module: every key is an encrypt option of every mount.
        entries = [{"name": key} for key in sorted(params["credentials"])]
    out = []
    for pos, entry in enumerate(entries or []):
        if not entry.get("name"):
            raise InputError("option mounts[%d].encrypt_options[%d].name is required" % (index, pos))
        secret = entry.get("secret") or default_secret
        if not secret:
            raise InputError(
                "option mounts[%d].encrypt_options[%d] names no Secret: set its secret, or the module's secret_name or credentials"
                % (index, pos)
            )
        out.append({"name": entry["name"], "valueFrom": {"secretKeyRef": {"name": secret, "key": entry.get("key") or entry["name"]}}})
    return out


def build_mounts(params):
    mounts = params.get("mounts") or []
    if not mounts:
        raise InputError("option mounts needs at least one entry (mount_point, for example s3://bucket/path)")
    runtime = params.get("runtime") or "alluxio"
    out = []
    for index, mount in enumerate(mounts):
        point = mount.get("mount_point")
        if not point:
            raise InputError("option mounts[%d].mount_point is required" % index)
        if "://" in point and "@" in point.split("://", 1)[1].split("/", 1)[0]:
            raise InputError("option mounts[%d].mount_point carries credentials in the URI: put them in a Secret (option credentials or secret_name)" % index)
        if runtime == "juicefs" and not point.startswith("juicefs://"):
            raise InputError("option mounts[%d].mount_point must be juicefs:///<subdir> with runtime=juicefs" % index)
        options = mount.get("options") or {}
        for key in options:
            if looks_secret(key):
                raise InputError(
                    "option mounts[%d].options.%s looks like a credential; only a Secret reference is allowed: put it in a Secret "
                    "(option credentials or secret_name) and list it in mounts[%d].encrypt_options" % (index, key, index)
                )
        entry = {"mountPoint": point}
        if mount.get("name"):
            entry["name"] = mount["name"]
        if mount.get("path"):
            entry["path"] = mount["path"]
        for option, field in (("read_only", "readOnly"), ("shared", "shared")):
            if mount.get(option) is not None:
                entry[field] = mount[option]
        if options:
            entry["options"] = dict((k, str(v)) for k, v in options.items())
        encrypt = _encrypt_options(mount, index, params)
        if runtime == "juicefs" and not any(e["name"] in ("metaurl", "token") for e in encrypt):
            raise InputError(
                "option mounts[%d].encrypt_options: JuiceFS needs metaurl (community edition) or token (enterprise) from a Secret" % index
            )
        if encrypt:
            entry["encryptOptions"] = encrypt
        out.append(entry)
    return out


def node_affinity(node_selector):
    """nodeSelector-style labels -> Dataset.spec.nodeAffinity.required (all must match)."""
    if not node_selector:
        return None
    expressions = [{"key": k, "operator": "In", "values": [str(v)]} for k, v in sorted(node_selector.items())]
    return {"required": {"nodeSelectorTerms": [{"matchExpressions": expressions}]}}


def tiered_store(levels):
    out = []
    for index, level in enumerate(levels or DEFAULT_TIERED_STORE):
        medium = level.get("medium") or "MEM"
        if medium not in ("MEM", "SSD", "HDD"):
            raise InputError("option tiered_store[%d].medium must be MEM, SSD or HDD" % index)
        if not level.get("path") or not level.get("quota"):
            raise InputError("option tiered_store[%d] needs path and quota" % index)
        entry = {"mediumtype": medium, "path": level["path"], "quota": str(level["quota"])}
        for key in ("high", "low"):
            if level.get(key) is not None:
                entry[key] = str(level[key])
        # Fluid's runtime controller writes these defaults back into the (atomic) levels list; the
        # same values here keep a later apply from conflicting with the controller's field manager.
        entry["volumeType"] = level.get("volume_type") or "hostPath"
        entry["volumeSource"] = {}
        out.append(entry)
    return {"levels": out}


def build_fluid_dataset(params):
    """params -> [Secret?, Dataset, <Runtime>, DataLoad?] (runtime and Dataset share the name)."""
    name, namespace = params["name"], params.get("namespace") or "default"
    runtime = params.get("runtime") or "alluxio"
    if params.get("credentials") and params.get("secret_name") and params.get("create_secret") is False:
        raise InputError("option credentials is given but create_secret is false")
    replicas = params.get("replicas", 1)
    if replicas is None or replicas < 1:
        raise InputError("option replicas is %s: a runtime needs at least 1 cache worker" % replicas)

    objects = []
    if params.get("credentials"):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": object_metadata(credentials_secret_name(params), namespace),
                "type": "Opaque",
                # `data` rather than `stringData`: the server stores `data`, so a re-run compares equal and sends nothing.
                "data": dict((k, base64.b64encode(str(v).encode("utf-8")).decode("ascii")) for k, v in params["credentials"].items()),
            }
        )
    spec = {"mounts": build_mounts(params)}
    affinity = node_affinity(params.get("node_selector"))
    if affinity:
        spec["nodeAffinity"] = affinity
    if params.get("tolerations"):
        spec["tolerations"] = list(params["tolerations"])
    if params.get("access_modes"):
        spec["accessModes"] = list(params["access_modes"])
    if params.get("placement"):
        spec["placement"] = params["placement"]
    objects.append({"apiVersion": FLUID_API, "kind": "Dataset", "metadata": object_metadata(name, namespace, params.get("labels")), "spec": spec})

    runtime_spec = {"replicas": replicas, "tieredstore": tiered_store(params.get("tiered_store"))}
    if runtime == "alluxio":
        if params.get("properties"):
            runtime_spec["properties"] = dict((k, str(v)) for k, v in params["properties"].items())
        if params.get("runtime_image"):
            image, _sep, tag = params["runtime_image"].rpartition(":")
            if not image or "/" in tag:
                raise InputError("option runtime_image must be <image>:<tag>")
            runtime_spec["alluxioVersion"] = {"image": image, "imageTag": tag}
    elif params.get("properties"):
        raise InputError("option properties is for runtime=alluxio")
    objects.append({"apiVersion": FLUID_API, "kind": RUNTIME_KINDS[runtime], "metadata": object_metadata(name, namespace), "spec": runtime_spec})

    dataload = params.get("dataload") or {}
    if dataload.get("enabled"):
        objects.append(build_dataload(name, namespace, dataload))
    return objects


def build_dataload(name, namespace, dataload):
    """A DataLoad named by what it loads: Fluid runs a DataLoad once, so a changed load is a new one."""
    spec = {"dataset": {"name": name, "namespace": namespace}, "loadMetadata": bool(dataload.get("load_metadata", True))}
    targets = [{"path": p} for p in dataload.get("paths") or []]
    if targets:
        spec["target"] = targets
    meta = object_metadata(dataload_name(name, spec), namespace, {DATALOAD_LABEL: name})
    return {"apiVersion": FLUID_API, "kind": "DataLoad", "metadata": meta, "spec": spec}


def dataload_name(name, spec):
    """<name>-warmup-<hash of the load spec>; Fluid names the loader Job after it, so it stays short."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()[:8]
    return "%s-warmup-%s" % (name[:40].rstrip("-"), digest)


def superseded_dataloads(listing, name, namespace, keep=None):
    """Delete references for the DataLoads this collection made for Dataset `name` other than `keep`:
    the ones of earlier load specs, and the fixed-name <name>-warmup of releases before 1.1.0."""
    out = []
    for item in listing or []:
        meta, spec = item.get("metadata") or {}, item.get("spec") or {}
        dataset = spec.get("dataset") or {}
        labels = meta.get("labels") or {}
        if not all(labels.get(k) == v for k, v in MANAGED_BY.items()) or meta.get("name") == keep:
            continue
        if dataset.get("name") == name and (dataset.get("namespace") or namespace) == namespace:
            out.append({"apiVersion": FLUID_API, "kind": "DataLoad", "metadata": {"name": meta["name"], "namespace": namespace}})
    return sorted(out, key=lambda ref: ref["metadata"]["name"])


def fluid_dataset_ref_objects(params):
    """What state=absent deletes besides the Dataset's DataLoads (found by label): the module's own
    Secret (if it made one), the Dataset and the runtime."""
    name, namespace = params["name"], params.get("namespace") or "default"
    runtime = params.get("runtime") or "alluxio"
    objects = []
    if params.get("credentials"):
        objects.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": credentials_secret_name(params), "namespace": namespace}})
    objects.append({"apiVersion": FLUID_API, "kind": "Dataset", "metadata": {"name": name, "namespace": namespace}})
    objects.append({"apiVersion": FLUID_API, "kind": RUNTIME_KINDS[runtime], "metadata": {"name": name, "namespace": namespace}})
    return objects


def runtime_waits(runtime):
    """Runtime readiness as Fluid reports it: master (Alluxio only) and workers Ready."""
    waits = [{"type": "field", "path": "status.workerPhase", "value": "Ready"}]
    if runtime == "alluxio":
        waits.insert(0, {"type": "field", "path": "status.masterPhase", "value": "Ready"})
    return waits


# DVC ------------------------------------------------------------------------------------
# The script takes its inputs from the environment and `dvc get` arguments from "$@", so no
# user value is ever interpolated into shell code.
DVC_SCRIPT = r"""set -eu
marker="$OUT_DIR/.aiinfra-dvc-version"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$SOURCE_ID" ]; then
  echo "already at $SOURCE_ID"; exit 0
fi
if [ "$INSTALL_DVC" = "true" ]; then
  pip install --no-cache-dir --disable-pip-version-check --quiet "dvc[$DVC_EXTRAS]==$DVC_VERSION"
fi
dvc --version
mkdir -p "$OUT_DIR"
tmp="$OUT_DIR.partial"
rm -rf "$tmp"
dvc get "$@" -o "$tmp"
rm -rf "$OUT_DIR.old"; mv "$OUT_DIR" "$OUT_DIR.old"; mv "$tmp" "$OUT_DIR"; rm -rf "$OUT_DIR.old"
echo "$SOURCE_ID" > "$marker"
echo "pulled $SOURCE_ID"
"""


def _check_repo_url(url):
    if not url:
        raise InputError("option repo_url is required")
    if "://" in url:
        authority = url.split("://", 1)[1].split("/", 1)[0]
        if ":" in authority.split("@", 1)[0] and "@" in authority:
            raise InputError(
                "option repo_url carries credentials (user:token@host); only a Secret reference is allowed: "
                "put them in the Secret named by credentials_secret (GIT_USERNAME / GIT_PASSWORD are not read from the URL)"
            )


def data_version_job_name(name, template):
    digest = hashlib.sha256(json.dumps(template, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()[:10]
    return "%s-%s" % (name[:52].rstrip("-"), digest)


def build_data_version(params):
    """params -> [PersistentVolumeClaim?, Job]. The Job's name carries a hash of its pod template, so
    the same revision is the same (completed) Job and a new revision is a new Job."""
    name, namespace = params["name"], params.get("namespace") or "default"
    _check_repo_url(params.get("repo_url"))
    if not params.get("revision"):
        raise InputError("option revision is required (a tag or commit; a branch name is not a fixed version)")
    if not params.get("path"):
        raise InputError("option path is required (the DVC-tracked file or directory in the repository)")
    remote_config = params.get("remote_config") or {}
    for key in remote_config:
        if looks_secret(key):
            raise InputError(
                "option remote_config.%s looks like a credential; only a Secret reference is allowed: put it in the Secret named by "
                "credentials_secret (for example AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)" % key
            )
    pvc = params.get("pvc") or {}
    if not pvc.get("name"):
        raise InputError("option pvc.name is required (the claim the data is written to)")
    for option in ("backoff_limit", "active_deadline_seconds", "ttl_seconds_after_finished"):
        if params.get(option) is not None and params[option] < 0:
            raise InputError("option %s cannot be negative" % option)

    sub_path = (pvc.get("sub_path") or name).strip("/")
    get_args = ["--rev", params["revision"]]
    if params.get("remote"):
        get_args += ["--remote", params["remote"]]
    if remote_config:
        get_args += ["--remote-config"] + ["%s=%s" % (k, remote_config[k]) for k in sorted(remote_config)]
    get_args += [params["repo_url"], params["path"]]
    source_id = "%s@%s:%s" % (params["repo_url"], params["revision"], params["path"])
    env = [
        {"name": "OUT_DIR", "value": "%s/%s" % (DATA_MOUNT, sub_path)},
        {"name": "SOURCE_ID", "value": source_id},
        {"name": "INSTALL_DVC", "value": "true" if params.get("install_dvc", True) else "false"},
        {"name": "DVC_VERSION", "value": params.get("dvc_version") or DVC_VERSION},
        {"name": "DVC_EXTRAS", "value": ",".join(params.get("dvc_extras") or ["s3"])},
        {"name": "HOME", "value": "/tmp"},
    ]
    if params.get("pip_index_url"):
        env.append({"name": "PIP_INDEX_URL", "value": params["pip_index_url"]})
    container = {
        "name": "dvc",
        "image": params.get("image") or DVC_IMAGE,
        "command": ["/bin/sh", "-c", DVC_SCRIPT, "dvc-get"],
        "args": get_args,
        "env": env,
        "volumeMounts": [{"name": "data", "mountPath": DATA_MOUNT}],
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    if params.get("credentials_secret"):
        container["envFrom"] = [{"secretRef": {"name": params["credentials_secret"]}}]
    if params.get("resources"):
        container["resources"] = dict(
            (part, dict((k, str(v)) for k, v in (params["resources"].get(part) or {}).items()))
            for part in ("requests", "limits")
            if params["resources"].get(part)
        )
    pod_spec = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": pvc["name"]}}],
    }
    if params.get("node_selector"):
        pod_spec["nodeSelector"] = dict(params["node_selector"])
    if params.get("tolerations"):
        pod_spec["tolerations"] = list(params["tolerations"])
    if params.get("service_account"):
        pod_spec["serviceAccountName"] = params["service_account"]
    labels = {VERSION_LABEL: name}
    template = {"metadata": {"labels": labels, "annotations": {"aiinfra.cluster/revision": params["revision"]}}, "spec": pod_spec}
    backoff = params.get("backoff_limit")
    job_spec = {"backoffLimit": 2 if backoff is None else backoff, "template": template}
    if params.get("active_deadline_seconds"):
        job_spec["activeDeadlineSeconds"] = params["active_deadline_seconds"]
    if params.get("ttl_seconds_after_finished") is not None:
        job_spec["ttlSecondsAfterFinished"] = params["ttl_seconds_after_finished"]
    objects = []
    if pvc.get("size"):
        claim = {"accessModes": list(pvc.get("access_modes") or ["ReadWriteOnce"]), "resources": {"requests": {"storage": str(pvc["size"])}}}
        if pvc.get("storage_class") is not None:
            claim["storageClassName"] = pvc["storage_class"]
        objects.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": object_metadata(pvc["name"], namespace), "spec": claim})
    job_meta = object_metadata(data_version_job_name(name, template), namespace, labels)
    job_meta["annotations"] = {"aiinfra.cluster/revision": params["revision"], "aiinfra.cluster/source": source_id}
    objects.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta, "spec": job_spec})
    return objects
