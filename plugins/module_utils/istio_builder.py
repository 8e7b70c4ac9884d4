# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Pure builders for Istio security policies (security.istio.io/v1): AuthorizationPolicy,
PeerAuthentication and RequestAuthentication.

Combinations Istio rejects (in its CRD rules or its validating webhook) raise InputError here,
before any request: selector together with targetRefs, CUSTOM without a provider, a provider
without CUSTOM, port-level mTLS without a selector, targetRefs on PeerAuthentication, ...
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError

API_VERSION = "security.istio.io/v1"
ACTIONS = ("ALLOW", "DENY", "AUDIT", "CUSTOM")
MTLS_MODES = ("UNSET", "DISABLE", "PERMISSIVE", "STRICT")
# targetRefs kinds Istio supports, and their API group.
TARGET_KINDS = {
    "Gateway": "gateway.networking.k8s.io",
    "GatewayClass": "gateway.networking.k8s.io",
    "Service": "",
    "ServiceEntry": "networking.istio.io",
}
MAX_TARGET_REFS = 16
HTTP_METHOD = re.compile(r"^[A-Z]+$")
# Rule option -> (section, field). Every field has a negated not* twin.
SOURCE_FIELDS = {
    "principals": "principals",
    "request_principals": "requestPrincipals",
    "namespaces": "namespaces",
    "service_accounts": "serviceAccounts",
    "ip_blocks": "ipBlocks",
    "remote_ip_blocks": "remoteIpBlocks",
    "trust_domains": "trustDomains",
}
OPERATION_FIELDS = {"hosts": "hosts", "methods": "methods", "paths": "paths", "ports": "ports"}


def _camel_not(field):
    return "not" + field[0].upper() + field[1:]


def _selector(selector, where):
    if not selector:
        return None
    for key, value in selector.items():
        if not key or "*" in key or "*" in str(value):
            raise InputError("option %s: label %r=%r: keys must be non-empty and neither keys nor values may contain '*'" % (where, key, value))
    return {"matchLabels": dict((k, str(v)) for k, v in selector.items())}


def _target_refs(refs, where):
    if not refs:
        return None
    if len(refs) > MAX_TARGET_REFS:
        raise InputError("option %s: at most %d targetRefs, got %d" % (where, MAX_TARGET_REFS, len(refs)))
    out = []
    for ref in refs:
        kind = ref.get("kind")
        if kind not in TARGET_KINDS:
            raise InputError("option %s: kind %r is not a policy target; use one of %s" % (where, kind, ", ".join(sorted(TARGET_KINDS))))
        if not ref.get("name"):
            raise InputError("option %s: every target needs a name" % where)
        if ref.get("namespace"):
            raise InputError("option %s: cross-namespace targets are not supported by Istio; drop namespace (the policy's namespace is used)" % where)
        group = ref.get("group")
        out.append({"group": TARGET_KINDS[kind] if group is None else group, "kind": kind, "name": ref["name"]})
    return out


def _workload_target(params, spec, where):
    if params.get("selector") and params.get("target_refs"):
        raise InputError(
            "options selector and target_refs: Istio takes only one of them; use selector for sidecar workloads, target_refs for waypoints and gateways"
        )
    selector = _selector(params.get("selector"), "selector")
    refs = _target_refs(params.get("target_refs"), "target_refs")
    if selector:
        spec["selector"] = selector
    if refs:
        spec["targetRefs"] = refs
    return spec


def _ports(values, where):
    out = []
    for port in values:
        text = str(port)
        if not text.isdigit() or not 0 < int(text) <= 65535:
            raise InputError("option %s: port %r must be a number between 1 and 65535" % (where, port))
        out.append(text)
    return out


def build_rule(rule, index):
    """One flat rule option -> Istio's {from, to, when}."""
    where = "authorization.rules[%d]" % index
    source, operation = {}, {}
    for opt, field in SOURCE_FIELDS.items():
        for name, key in ((opt, field), ("not_" + opt, _camel_not(field))):
            if rule.get(name):
                source[key] = list(rule[name])
    if (source.get("serviceAccounts") or source.get("notServiceAccounts")) and any(
        k in source for k in ("principals", "notPrincipals", "namespaces", "notNamespaces")
    ):
        raise InputError("option %s: service_accounts cannot be combined with principals or namespaces (Istio rejects it)" % where)
    for opt, field in OPERATION_FIELDS.items():
        for name, key in ((opt, field), ("not_" + opt, _camel_not(field))):
            if rule.get(name):
                values = list(rule[name])
                if opt == "ports":
                    values = _ports(values, where)
                if opt == "methods":
                    bad = [m for m in values if not HTTP_METHOD.match(m)]
                    if bad:
                        raise InputError("option %s: methods must be upper-case HTTP methods, got %s" % (where, ", ".join(bad)))
                operation[key] = values
    out = {}
    if source:
        out["from"] = [{"source": source}]
    if operation:
        out["to"] = [{"operation": operation}]
    when = []
    for cond in rule.get("when") or []:
        if not cond.get("key"):
            raise InputError("option %s.when: every condition needs a key, for example request.auth.claims[iss]" % where)
        if not cond.get("values") and not cond.get("not_values"):
            raise InputError("option %s.when: condition %s needs values or not_values" % (where, cond["key"]))
        item = {"key": cond["key"]}
        if cond.get("values"):
            item["values"] = list(cond["values"])
        if cond.get("not_values"):
            item["notValues"] = list(cond["not_values"])
        when.append(item)
    if when:
        out["when"] = when
    return out


def build_authorization_policy(params, auth):
    action = auth.get("action") or "ALLOW"
    if action not in ACTIONS:
        raise InputError("option authorization.action must be one of %s" % ", ".join(ACTIONS))
    provider = auth.get("provider")
    if action == "CUSTOM" and not provider:
        raise InputError("option authorization.provider: action CUSTOM needs the name of an extension provider from the mesh config")
    if provider and action != "CUSTOM":
        raise InputError("option authorization.provider is only valid with action CUSTOM (got %s)" % action)
    rules = auth.get("rules") or []
    if action in ("DENY", "AUDIT", "CUSTOM") and not rules:
        raise InputError("option authorization.rules: a %s policy without rules never matches; give at least one rule" % action)
    spec = _workload_target(params, {"action": action}, "authorization")
    if provider:
        spec["provider"] = {"name": provider}
    # An ALLOW policy with no rules is Istio's "deny all" for the selected workloads; keep it explicit.
    spec["rules"] = [build_rule(rule, i) for i, rule in enumerate(rules)]
    return {"apiVersion": API_VERSION, "kind": "AuthorizationPolicy", "metadata": _meta(params), "spec": spec}


def build_peer_authentication(params, peer):
    if params.get("target_refs"):
        raise InputError("option target_refs: PeerAuthentication has no targetRefs; use selector (or none for the whole namespace)")
    mode = peer.get("mode") or "STRICT"
    if mode not in MTLS_MODES:
        raise InputError("option peer_authentication.mode must be one of %s" % ", ".join(MTLS_MODES))
    spec = {"mtls": {"mode": mode}}
    selector = _selector(params.get("selector"), "selector")
    if selector:
        spec["selector"] = selector
    port_level = peer.get("port_level_mtls") or {}
    if port_level:
        if not selector:
            raise InputError("option peer_authentication.port_level_mtls needs selector (Istio applies port-level mTLS per workload)")
        spec["portLevelMtls"] = {}
        for port, port_mode in port_level.items():
            port = _ports([port], "peer_authentication.port_level_mtls")[0]
            if port_mode not in MTLS_MODES:
                raise InputError("option peer_authentication.port_level_mtls[%s] must be one of %s" % (port, ", ".join(MTLS_MODES)))
            spec["portLevelMtls"][port] = {"mode": port_mode}
    return {"apiVersion": API_VERSION, "kind": "PeerAuthentication", "metadata": _meta(params), "spec": spec}


def build_jwt_rule(rule, index):
    where = "request_authentication.jwt_rules[%d]" % index
    if not rule.get("issuer"):
        raise InputError("option %s.issuer is required (the JWT iss claim)" % where)
    if rule.get("jwks_uri") and rule.get("jwks"):
        raise InputError("option %s: set jwks_uri or jwks, not both" % where)
    out = {"issuer": rule["issuer"]}
    if rule.get("jwks_uri"):
        if not re.match(r"^https?://", rule["jwks_uri"]):
            raise InputError("option %s.jwks_uri must start with https:// (or http://)" % where)
        out["jwksUri"] = rule["jwks_uri"]
    if rule.get("jwks"):
        out["jwks"] = rule["jwks"]
    if rule.get("audiences"):
        out["audiences"] = list(rule["audiences"])
    if rule.get("from_headers"):
        out["fromHeaders"] = []
        for header in rule["from_headers"]:
            item = {"name": header["name"]}
            if header.get("prefix"):
                item["prefix"] = header["prefix"]
            out["fromHeaders"].append(item)
    if rule.get("from_params"):
        out["fromParams"] = list(rule["from_params"])
    if rule.get("forward_original_token") is not None:
        out["forwardOriginalToken"] = bool(rule["forward_original_token"])
    if rule.get("output_payload_to_header"):
        out["outputPayloadToHeader"] = rule["output_payload_to_header"]
    return out


def build_request_authentication(params, req):
    rules = req.get("jwt_rules") or []
    if not rules:
        raise InputError("option request_authentication.jwt_rules needs at least one rule (issuer and jwks_uri)")
    spec = _workload_target(params, {}, "request_authentication")
    spec["jwtRules"] = [build_jwt_rule(rule, i) for i, rule in enumerate(rules)]
    return {"apiVersion": API_VERSION, "kind": "RequestAuthentication", "metadata": _meta(params), "spec": spec}


def _meta(params):
    labels = {"app.kubernetes.io/managed-by": "aiinfra.cluster"}
    labels.update(params.get("labels") or {})
    return {"name": params["name"], "namespace": params.get("namespace") or "default", "labels": labels}


def build_istio_policies(params):
    """params: name, namespace, selector | target_refs, and any of authorization,
    peer_authentication, request_authentication. Returns the manifests (peer, request, authz)."""
    parts = [k for k in ("peer_authentication", "request_authentication", "authorization") if params.get(k) is not None]
    if not parts:
        raise InputError("set at least one of authorization, peer_authentication or request_authentication")
    objects = []
    if params.get("peer_authentication") is not None:
        objects.append(build_peer_authentication(params, params["peer_authentication"]))
    if params.get("request_authentication") is not None:
        objects.append(build_request_authentication(params, params["request_authentication"]))
    if params.get("authorization") is not None:
        objects.append(build_authorization_policy(params, params["authorization"]))
    return objects
