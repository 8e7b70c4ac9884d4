# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The one apply path: server-side apply, server dry-run for check mode, user-field diffs, delete.

Per object: one read (objects of one kind in one namespace share a single list request) that
tells whether the object already holds exactly what we would apply (then nothing is written),
and one server-side apply request when it does not. When a bundle writes several objects, each
is first dry-run (nothing stored) so that an object the API server rejects cannot leave the
bundle half-applied.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import json
import re

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError, InputError, KubeError
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import PERMANENT_500_MARKERS
from ansible_collections.aiinfra.cluster.plugins.module_utils.quantities import normalise_quantities, same_scalar
from ansible_collections.aiinfra.cluster.plugins.module_utils.resources import ResourceResolver
from ansible_collections.aiinfra.cluster.plugins.module_utils.waiters import wait_for

FIELD_MANAGER = "aiinfra.cluster"
HASH_ANNOTATION = "aiinfra.cluster/applied-hash"
# The recipe of applied_hash(); stored with the digest ("v2-<digest>") so that a later recipe can
# tell an object applied by an earlier release (then the live fields decide, see _already_applied).
# 1 (unversioned, a bare digest): 1.0.x; 2: quantities in one normal form.
HASH_VERSION = 2


def hash_annotation(field_manager):
    """Each field manager keeps its own hash: two managers sharing an object (a namespace that a
    role labels and another only ensures) must not fight over one annotation value."""
    if field_manager == FIELD_MANAGER:
        return HASH_ANNOTATION
    label = re.sub(r"[^a-z0-9-]+", "-", field_manager.lower()).strip("-")[:40] or "manager"
    return "%s.%s/applied-hash" % (label, FIELD_MANAGER)


def _pop_hashes(annotations):
    for key in [k for k in annotations if k == HASH_ANNOTATION or k.endswith("." + HASH_ANNOTATION)]:
        annotations.pop(key)


SECRET_VALUE_FIELDS = ("data", "stringData")
REDACTED = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
NOISY_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")
# Reading a whole collection to save per-object GETs pays off only for small objects.
NO_LIST_PREFETCH = ("CustomResourceDefinition",)


def object_ref(obj):
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return "%s %s%s" % (obj.get("kind"), (ns + "/") if ns else "", meta.get("name"))


def redact_secret(obj):
    """A copy of a Secret with its values hidden: results and diffs never carry them."""
    if not isinstance(obj, dict) or obj.get("kind") != "Secret" or obj.get("apiVersion") != "v1":
        return obj
    out = copy.deepcopy(obj)
    for key in SECRET_VALUE_FIELDS:
        if isinstance(out.get(key), dict):
            out[key] = dict((k, REDACTED) for k in out[key])
    return out


def applied_hash(obj):
    """Stable hash of what we apply, as "v<HASH_VERSION>-<digest>"; stored on the object so a later
    run can tell that a field was dropped from the desired state (a subset check alone cannot).
    Secret values are left out (only their keys count): a value change still shows up in the
    subset check. Quantities count by value: `500m` and `0.5` hash the same."""
    clean = redact_secret(copy.deepcopy(obj))
    _pop_hashes((clean.get("metadata") or {}).get("annotations", {}))
    clean = normalise_quantities(clean)
    digest = hashlib.sha256(json.dumps(clean, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()[:20]
    return "v%d-%s" % (HASH_VERSION, digest)


def hash_version(value):
    """The recipe version of a stored hash: 1 for the bare digests of 1.0.x."""
    match = re.match(r"^v([0-9]+)-", value or "")
    return int(match.group(1)) if match else 1


def is_subset(desired, actual, parent_key=None, key=None):
    """True when every field in `desired` has the same value in `actual`, judging scalars the way
    the API server normalises them (quantities by value, integers sent as strings)."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return False
        return all(k in actual and is_subset(v, actual[k], key, k) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(desired) != len(actual):
            return False
        return all(is_subset(d, a, parent_key, key) for d, a in zip(desired, actual))
    if isinstance(actual, (dict, list)):
        return False
    return same_scalar(desired, actual, parent_key, key)


def project(actual, template):
    """Keep only the parts of `actual` that `template` (the desired manifest) sets: the diff then
    shows user-set fields, not status or server-set metadata."""
    if actual is None:
        return None
    if isinstance(template, dict) and isinstance(actual, dict):
        out = {}
        for key, sub in template.items():
            if key in actual:
                out[key] = project(actual[key], sub)
        return out
    if isinstance(template, list) and isinstance(actual, list):
        named = template and all(isinstance(t, dict) and "name" in t for t in template)
        if named:
            by_name = dict((t["name"], t) for t in template)
            return [project(a, by_name.get(a.get("name"), a)) if isinstance(a, dict) else a for a in actual]
        return [project(a, template[i] if i < len(template) else a) for i, a in enumerate(actual)]
    return actual


def strip_server_fields(obj):
    """The object as users want to see it in results: no managedFields or bookkeeping."""
    if not isinstance(obj, dict):
        return obj
    out = redact_secret(copy.deepcopy(obj))
    meta = out.get("metadata") or {}
    meta.pop("managedFields", None)
    return out


def _comparable(obj):
    out = copy.deepcopy(obj or {})
    meta = out.get("metadata") or {}
    for key in NOISY_METADATA:
        meta.pop(key, None)
    return out


def _diff_view(obj, template):
    view = redact_secret(project(obj, template))
    if view is not None:
        _pop_hashes((view.get("metadata") or {}).get("annotations", {}))
        annotations = (view.get("metadata") or {}).get("annotations")
        if annotations == {}:
            view["metadata"].pop("annotations")
    return view


def validate_manifest(obj, index=0):
    """Structural checks done before any request, so a bad item cannot half-apply a bundle."""
    where = "resource #%d" % (index + 1)
    if not isinstance(obj, dict):
        raise InputError("%s is not a mapping" % where)
    for key in ("apiVersion", "kind"):
        if not obj.get(key) or not isinstance(obj.get(key), str):
            raise InputError("%s has no %s" % (where, key))
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise InputError("%s (%s) has no metadata.name" % (where, obj.get("kind")))


def missing_namespace(exc):
    """The namespace named by a 404 whose Status says the namespace (not the kind) is missing."""
    details = (exc.body or {}).get("details") or {}
    return details.get("name") if details.get("kind") == "namespaces" else None


def format_api_error(exc, obj, action):
    """Turn an API error into a message that names the object, the field path and the fix."""
    ref = object_ref(obj)
    body = exc.body or {}
    if exc.status == 409 and action == "apply":
        causes = (body.get("details") or {}).get("causes") or []
        fields = ", ".join("%s (%s)" % (c.get("field"), c.get("message")) for c in causes) or body.get("message", "")
        return "%s: field-manager conflict: %s. Another manager owns these fields; set force_conflicts: true to take them over" % (
            ref,
            fields,
        )
    if exc.status in (400, 422) or any(m.decode() in (body.get("message") or "") for m in PERMANENT_500_MARKERS):
        causes = (body.get("details") or {}).get("causes") or []
        if causes:
            lines = ["%s: %s" % (c.get("field") or "(object)", c.get("message") or c.get("reason")) for c in causes]
            return "%s rejected by the API server (%s): %s" % (ref, body.get("reason") or exc.status, "; ".join(lines))
        return "%s rejected by the API server: %s" % (ref, body.get("message") or exc.msg)
    if exc.status == 403:
        return "%s: forbidden: %s" % (ref, body.get("message") or exc.msg)
    return "%s: %s" % (ref, exc.msg)


class ApplyEngine:
    """Applies and deletes lists of objects; one instance per module run."""

    def __init__(
        self, client, field_manager=FIELD_MANAGER, force_conflicts=False, check_mode=False, validate_first=True, read_cache=None, terminating_timeout=0
    ):
        self.client = client
        # How long state=present waits for an object that is being deleted to go before
        # re-creating it; 0 fails at once, naming the finalizers that hold it.
        self.terminating_timeout = terminating_timeout
        # Shared by the bundles of one `batch` run: (apiVersion, kind, namespace) -> {name: object},
        # so N bundles of one kind cost one list instead of N reads.
        self.read_cache = read_cache
        self.validate_first = validate_first
        self.resolver = ResourceResolver(client)
        self.field_manager = field_manager
        self.hash_key = hash_annotation(field_manager)
        self.force_conflicts = force_conflicts
        self.check_mode = check_mode

    # Reading ----------------------------------------------------------------------------
    def _resolve(self, obj):
        rt = self.resolver.resolve(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        if rt.namespaced and not meta.get("namespace"):
            meta["namespace"] = "default"
        if not rt.namespaced:
            meta.pop("namespace", None)
        return rt

    def get(self, rt, name, namespace=None):
        try:
            return self.client.get(rt.item_path(name, namespace))
        except ApiError as exc:
            if exc.status == 404:
                if not (exc.body.get("details") or {}).get("name"):
                    raise self.resolver.not_installed(rt.api_version, rt.kind, "the cluster does not serve %s" % rt.crd_name)
                return None
            raise

    def _prefetch(self, planned):
        """One list request per (kind, namespace) that appears more than once (or at all, when
        bundles share a read cache)."""
        groups = {}
        for rt, obj in planned:
            if rt.kind in NO_LIST_PREFETCH:
                continue
            groups.setdefault((rt.api_version, rt.kind, obj["metadata"].get("namespace")), []).append((rt, obj))
        found = {}
        for (api_version, kind, namespace), members in groups.items():
            if self.read_cache is not None and (api_version, kind, namespace) in self.read_cache:
                names = self.read_cache[(api_version, kind, namespace)]
                for _rt, obj in members:
                    found[(api_version, kind, namespace, obj["metadata"]["name"])] = names.get(obj["metadata"]["name"])
                continue
            if len(members) < 2 and self.read_cache is None:
                continue
            rt = members[0][0]
            try:
                listing = self.client.get(rt.collection_path(namespace))
            except ApiError as exc:
                if exc.status == 404:
                    raise self.resolver.not_installed(api_version, kind, "the cluster does not serve %s" % rt.crd_name)
                raise
            names = {}
            for item in (listing or {}).get("items") or []:
                # List items carry no apiVersion/kind; without them no listed object would ever
                # compare as already applied, and every re-run would send a (no-op) apply.
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                names[item["metadata"]["name"]] = item
            if self.read_cache is not None:
                self.read_cache[(api_version, kind, namespace)] = names
            for _rt, obj in members:
                found[(api_version, kind, namespace, obj["metadata"]["name"])] = names.get(obj["metadata"]["name"])
        return found

    # Writing ----------------------------------------------------------------------------
    def apply_all(self, objects, want_diff=False):
        """Apply every object in order; returns (results, diffs)."""
        planned = []
        for index, obj in enumerate(objects):
            validate_manifest(obj, index)
            obj = copy.deepcopy(obj)
            rt = self._resolve(obj)
            # Hash the object as sent (namespace defaulted or dropped), whichever module built it.
            obj["metadata"].setdefault("annotations", {})[self.hash_key] = applied_hash(obj)
            planned.append((rt, obj))
        prefetched = self._prefetch(planned)
        current = []
        for rt, obj in planned:
            meta = obj["metadata"]
            key = (rt.api_version, rt.kind, meta.get("namespace"), meta["name"])
            current.append(prefetched[key] if key in prefetched else self.get(rt, meta["name"], meta.get("namespace")))
        warnings = {}
        for index, ((rt, obj), existing) in enumerate(zip(planned, current)):
            if existing is not None and (existing.get("metadata") or {}).get("deletionTimestamp"):
                current[index], warnings[index] = self._await_deletion(rt, obj, existing)
        if self.validate_first and not self.check_mode:
            self._preflight(planned, current)
        results, diffs = [], []
        for index, ((rt, obj), existing) in enumerate(zip(planned, current)):
            result = self.apply_one(rt, obj, existing)
            if warnings.get(index):
                result["warning"] = warnings[index]
            results.append(result)
            if want_diff and result["changed"]:
                diffs.append(
                    {
                        "before_header": object_ref(obj) + (" (absent)" if existing is None else ""),
                        "after_header": object_ref(obj),
                        "before": _diff_view(existing, obj) or {},
                        "after": _diff_view(result["object"], obj) or {},
                    }
                )
        return results, diffs

    def _await_deletion(self, rt, obj, existing):
        """An object being deleted is not present: applying to it would report it unchanged (or
        updated) while it goes. Wait for it to go, then it is created anew. Returns (the object
        as it stands now, a warning)."""
        meta = existing.get("metadata") or {}
        held = "%s is being deleted (finalizers: %s)" % (object_ref(obj), ", ".join(meta.get("finalizers") or []) or "none")
        if self.check_mode:
            return None, held + "; it would be created again once it is gone"
        if not self.terminating_timeout:
            raise KubeError(held + "; run again once it is gone, or set wait: true to wait for it (up to wait_timeout) and create it again")
        if self.read_cache is not None:
            self.read_cache.pop((rt.api_version, rt.kind, obj["metadata"].get("namespace")), None)
        try:
            wait_for(self.client, rt, obj["metadata"]["name"], obj["metadata"].get("namespace"), {"type": "deleted", "uid": meta.get("uid")},
                     timeout=self.terminating_timeout)
        except KubeError:
            raise KubeError(held + "; it was still there after %ss (wait_timeout)" % self.terminating_timeout)
        return None, held + "; created again after it was gone"

    def _preflight(self, planned, current):
        """Dry-run every object that will be written before writing any, so that an object the
        API server rejects cannot leave the bundle half-applied. Objects in a namespace the same
        bundle creates cannot be dry-run yet; the namespace itself is."""
        pending = [(rt, obj) for (rt, obj), existing in zip(planned, current) if existing is None or not self._already_applied(obj, existing)]
        if len(pending) < 2:
            return
        new_namespaces = set(obj["metadata"]["name"] for rt, obj in pending if rt.kind == "Namespace" and rt.api_version == "v1")
        for rt, obj in pending:
            if obj["metadata"].get("namespace") in new_namespaces:
                continue
            path = rt.item_path(obj["metadata"]["name"], obj["metadata"].get("namespace"))
            try:
                self.client.apply_patch(path, obj, self.field_manager, force=self.force_conflicts, dry_run=True)
            except ApiError as exc:
                if exc.status == 404:
                    raise self._not_found(exc, rt, obj)
                raise KubeError(
                    format_api_error(exc, obj, "apply") + " (nothing in this bundle was changed)",
                    status=exc.status,
                    reason=exc.reason,
                    causes=exc.details.get("causes"),
                )

    def _not_found(self, exc, rt, obj):
        namespace = missing_namespace(exc)
        if namespace:
            return KubeError(
                "%s: namespace %s does not exist; create it first (or put a v1 Namespace before it in the same bundle)" % (object_ref(obj), namespace),
                status=404,
            )
        return self.resolver.not_installed(rt.api_version, rt.kind, "the cluster does not serve %s" % rt.crd_name)

    def apply_one(self, rt, obj, existing):
        meta = obj["metadata"]
        base = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"], "namespace": meta.get("namespace")}
        if existing is not None and self._already_applied(obj, existing):
            return dict(base, changed=False, action="unchanged", object=strip_server_fields(existing))
        path = rt.item_path(meta["name"], meta.get("namespace"))
        try:
            applied = self.client.apply_patch(path, obj, self.field_manager, force=self.force_conflicts, dry_run=self.check_mode)
        except ApiError as exc:
            if exc.status == 404 and self.check_mode and missing_namespace(exc):
                # Check mode of a play that creates the namespace in an earlier task: the
                # namespace is not there yet, so the object would simply be created.
                return dict(base, changed=True, action="created", object=strip_server_fields(obj),
                            warning="namespace %s does not exist yet" % missing_namespace(exc))
            if exc.status == 404:
                raise self._not_found(exc, rt, obj)
            raise KubeError(format_api_error(exc, obj, "apply"), status=exc.status, reason=exc.reason, causes=exc.details.get("causes"))
        if self.read_cache is not None and not self.check_mode:
            self.read_cache.setdefault((rt.api_version, rt.kind, meta.get("namespace")), {})[meta["name"]] = applied
        if existing is None:
            changed, action = True, "created"
        elif self.check_mode:
            changed = _comparable(existing) != _comparable(applied)
            action = "updated" if changed else "unchanged"
        else:
            changed = (existing.get("metadata") or {}).get("resourceVersion") != (applied.get("metadata") or {}).get("resourceVersion")
            action = "updated" if changed else "unchanged"
        return dict(base, changed=changed, action=action, object=strip_server_fields(applied))

    def _already_applied(self, obj, existing):
        stored = ((existing.get("metadata") or {}).get("annotations") or {}).get(self.hash_key)
        wanted = obj["metadata"]["annotations"][self.hash_key]
        if stored is None:
            return False
        # A hash of another recipe (written by an earlier release) cannot be compared: then the
        # live object holding every desired field is enough, so that upgrading the collection
        # does not rewrite a whole fleet once. The next real change writes the current recipe.
        if hash_version(stored) == HASH_VERSION and stored != wanted:
            return False
        managers = (existing.get("metadata") or {}).get("managedFields") or []
        if not any(m.get("manager") == self.field_manager and m.get("operation") == "Apply" for m in managers):
            return False
        desired = copy.deepcopy(obj)
        desired["metadata"]["annotations"].pop(self.hash_key)
        if not desired["metadata"]["annotations"]:
            desired["metadata"].pop("annotations")
        return is_subset(desired, existing)

    def delete_all(self, objects, propagation_policy="Foreground", want_diff=False):
        """Delete every object (in reverse order, dependents first); absent objects are not changes."""
        results, diffs = [], []
        for index, obj in enumerate(objects):
            validate_manifest(obj, index)
        planned = [(self._resolve(copy.deepcopy(obj)), obj) for obj in objects]
        for rt, obj in reversed(planned):
            meta = obj["metadata"]
            namespace = meta.get("namespace") or ("default" if rt.namespaced else None)
            base = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"], "namespace": namespace}
            try:
                live = self.client.get(rt.item_path(meta["name"], namespace))
            except ApiError as exc:
                if exc.status != 404:
                    raise KubeError(format_api_error(exc, obj, "delete"), status=exc.status)
                live = None
            if live is None:
                # Either the object or its whole kind (CRD removed) is gone: nothing to delete.
                results.append(dict(base, changed=False, action="absent"))
                continue
            if (live.get("metadata") or {}).get("deletionTimestamp"):
                # Already on its way out: deleting it again changes nothing.
                results.append(dict(base, changed=False, action="terminating"))
                continue
            try:
                self.client.delete(
                    rt.item_path(meta["name"], namespace),
                    query={"dryRun": "All" if self.check_mode else None},
                    body={"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation_policy},
                )
            except ApiError as exc:
                if exc.status == 404:
                    # Either the object or its whole kind (CRD removed) is gone: nothing to delete.
                    results.append(dict(base, changed=False, action="absent"))
                    continue
                raise KubeError(format_api_error(exc, obj, "delete"), status=exc.status)
            results.append(dict(base, changed=True, action="deleted"))
            if want_diff:
                before = _diff_view(live, obj)
                diffs.append({"before_header": object_ref(obj), "after_header": object_ref(obj) + " (absent)", "before": before or {}, "after": {}})
        results.reverse()
        return results, diffs
