#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: istio_policy
short_description: Istio security policies (security.istio.io/v1) for a workload, in one call
version_added: 0.1.0
author: aiinfra.cluster contributors (@aiinfra)
description:
  - Applies any combination of an AuthorizationPolicy, a PeerAuthentication and a RequestAuthentication,
    all named O(name), for the workloads that O(selector) (or O(target_refs)) picks, or for the whole
    namespace when neither is given.
  - Uses the C(security.istio.io/v1) API (AuthorizationPolicy and RequestAuthentication since Istio 1.19,
    PeerAuthentication since 1.22), not the older C(v1beta1).
  - Combinations Istio rejects fail before any request, with the option to fix - both O(selector) and
    O(target_refs), C(CUSTOM) without a provider, a provider without C(CUSTOM), port-level mTLS without
    a selector, O(target_refs) with a PeerAuthentication, service accounts mixed with principals or
    namespaces in one rule, cross-namespace targets, ports outside 1-65535.
options:
  <<: &module_options
    name:
      description: Name of each policy object.
      type: str
      required: true
    namespace:
      description: Namespace of the policies (the Istio root namespace, usually C(istio-system), for mesh-wide ones).
      type: str
      default: default
    labels:
      description: Extra labels on the policy objects.
      type: dict
    selector:
      description: Workload labels the policies apply to (C(selector.matchLabels)). For sidecar workloads.
      type: dict
    target_refs:
      description:
        - Targets instead of O(selector), for waypoint proxies (C(Service), C(ServiceEntry)) and gateways
          (C(Gateway), C(GatewayClass)). Not for PeerAuthentication. At most 16.
      type: list
      elements: dict
      suboptions:
        kind:
          description: Target kind.
          type: str
          required: true
          choices: [Gateway, GatewayClass, Service, ServiceEntry]
        name:
          description: Target name.
          type: str
          required: true
        group:
          description: API group; defaults to the kind's group.
          type: str
    authorization:
      description: An AuthorizationPolicy.
      type: dict
      suboptions:
        action:
          description: What matching requests get. Istio evaluates CUSTOM, then DENY, then ALLOW.
          type: str
          choices: [ALLOW, DENY, AUDIT, CUSTOM]
          default: ALLOW
        provider:
          description: The extension provider (mesh config) of a V(CUSTOM) policy.
          type: str
        rules:
          description:
            - Each rule matches when all of its given fields match. An V(ALLOW) policy without rules denies
              every request to the selected workloads.
            - "Source fields: C(principals), C(request_principals), C(namespaces), C(service_accounts), C(ip_blocks),
              C(remote_ip_blocks), C(trust_domains). Operation fields: C(hosts), C(methods), C(paths), C(ports).
              Each also exists negated with a C(not_) prefix (for example C(not_paths)). C(when): a list of
              C({key, values, not_values})."
          type: list
          elements: dict
    peer_authentication:
      description: A PeerAuthentication (mutual TLS for traffic into the workloads).
      type: dict
      suboptions:
        mode:
          description: mTLS mode.
          type: str
          choices: [STRICT, PERMISSIVE, DISABLE, UNSET]
          default: STRICT
        port_level_mtls:
          description: Per-port modes keyed by port number, for example V(PERMISSIVE) on a metrics port. Needs O(selector).
          type: dict
    request_authentication:
      description: A RequestAuthentication (JWT validation).
      type: dict
      suboptions:
        jwt_rules:
          description: One entry per accepted issuer.
          type: list
          elements: dict
          required: true
          suboptions:
            issuer:
              description: The C(iss) claim.
              type: str
              required: true
            jwks_uri:
              description: URL of the issuer's JSON Web Key Set.
              type: str
            jwks:
              description: An inline JSON Web Key Set instead of O(request_authentication.jwt_rules[].jwks_uri).
              type: str
            audiences:
              description: Accepted C(aud) values.
              type: list
              elements: str
            from_headers:
              description: Headers that carry the token, C({name, prefix}).
              type: list
              elements: dict
            from_params:
              description: Query parameters that carry the token.
              type: list
              elements: str
            forward_original_token:
              description: Forward the token to the workload.
              type: bool
            output_payload_to_header:
              description: Header to put the verified payload in.
              type: str
  batch:
    suboptions:
      <<: *module_options
      state:
        description: This element's O(state); the top-level O(state) when not set.
        type: str
        choices: [present, absent]
      wait:
        description: This element's O(wait); the top-level O(wait) when not set.
        type: bool
      wait_timeout:
        description: This element's O(wait_timeout), counted from the same moment; the top-level O(wait_timeout) when not set.
        type: int
  on_missing_crd:
    description:
      - What to do when the Istio CRDs (C(security.istio.io)) are not installed. V(fail) fails naming the missing
        CRD; V(warn) applies nothing, warns once and returns RV(skipped_reason) (for roles that run on clusters with
        and without Istio, where the policies would have no mesh to act in).
      - The whole run, never set per element of O(batch).
    type: str
    choices: [fail, warn]
    default: fail
extends_documentation_fragment:
  - aiinfra.cluster.auth
  - aiinfra.cluster.apply
  - aiinfra.cluster.namespaces
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Triton only from the ingress gateway, with mTLS and JWTs from our issuer
  aiinfra.cluster.istio_policy:
    name: triton
    namespace: ml-serving
    selector: {app: triton}
    peer_authentication: {mode: STRICT}
    request_authentication:
      jwt_rules:
        - issuer: https://auth.example.com/
          jwks_uri: https://auth.example.com/.well-known/jwks.json
    authorization:
      action: ALLOW
      rules:
        - principals: [cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account]
          methods: [GET, POST]
          paths: [/v2/*]
          ports: ["8000"]

- name: Namespace-wide strict mTLS
  aiinfra.cluster.istio_policy:
    name: default
    namespace: ml-serving
    peer_authentication: {mode: STRICT}

- name: Deny writes through a waypoint
  aiinfra.cluster.istio_policy:
    name: read-only
    namespace: ml-serving
    target_refs: [{kind: Service, name: model-api}]
    authorization:
      action: DENY
      rules:
        - methods: [PUT, DELETE]
"""

RETURN = r"""
skipped_reason:
  description: With O(on_missing_crd=warn), why nothing was applied (per element of O(batch)).
  returned: when the Istio CRDs are missing and O(on_missing_crd=warn)
  type: str
  sample: "the API security.istio.io/v1 is not served by this cluster: kind PeerAuthentication is not installed (CRD peerauthentications.security.istio.io)"
batch:
  description:
    - With O(batch), one result per element, in the order given, each holding what a run with that element's
      options returns; the other return values are then not set at the top level.
  returned: when O(batch) is set
  type: list
  elements: dict
resources:
  description: One entry per policy applied (or deleted), in order PeerAuthentication, RequestAuthentication, AuthorizationPolicy.
  returned: always
  type: list
  elements: dict
  sample:
    - {apiVersion: security.istio.io/v1, kind: PeerAuthentication, name: triton, namespace: ml-serving, changed: true, action: created}
api_requests:
  description: API requests sent, by HTTP verb.
  returned: always
  type: dict
  sample: {GET: 3, PATCH: 3}
"""

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ResourceNotInstalled
from ansible_collections.aiinfra.cluster.plugins.module_utils.istio_builder import build_istio_policies
from ansible_collections.aiinfra.cluster.plugins.module_utils.runner import execute, kube_module, run_bundle

ARGUMENT_SPEC = {
    "name": {"type": "str", "required": True},
    "namespace": {"type": "str", "default": "default"},
    "labels": {"type": "dict"},
    "selector": {"type": "dict"},
    "target_refs": {
        "type": "list",
        "elements": "dict",
        "options": {
            "kind": {"type": "str", "required": True, "choices": ["Gateway", "GatewayClass", "Service", "ServiceEntry"]},
            "name": {"type": "str", "required": True},
            "group": {"type": "str"},
        },
    },
    "authorization": {
        "type": "dict",
        "options": {
            "action": {"type": "str", "default": "ALLOW", "choices": ["ALLOW", "DENY", "AUDIT", "CUSTOM"]},
            "provider": {"type": "str"},
            "rules": {"type": "list", "elements": "dict"},
        },
        "required_if": [["action", "CUSTOM", ["provider"]]],
    },
    "peer_authentication": {
        "type": "dict",
        "options": {
            "mode": {"type": "str", "default": "STRICT", "choices": ["STRICT", "PERMISSIVE", "DISABLE", "UNSET"]},
            "port_level_mtls": {"type": "dict"},
        },
    },
    "request_authentication": {
        "type": "dict",
        "options": {
            "jwt_rules": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "issuer": {"type": "str", "required": True},
                    "jwks_uri": {"type": "str"},
                    "jwks": {"type": "str"},
                    "audiences": {"type": "list", "elements": "str"},
                    "from_headers": {"type": "list", "elements": "dict"},
                    "from_params": {"type": "list", "elements": "str"},
                    "forward_original_token": {"type": "bool"},
                    "output_payload_to_header": {"type": "str"},
                },
                "mutually_exclusive": [["jwks_uri", "jwks"]],
            }
        },
    },
}


def main():
    module = kube_module(
        ARGUMENT_SPEC,
        creates_namespaces=True,
        shared_spec={"on_missing_crd": {"type": "str", "default": "fail", "choices": ["fail", "warn"]}},
        mutually_exclusive=[["selector", "target_refs"]],
        required_one_of=[["authorization", "peer_authentication", "request_authentication"]],
    )

    missing = []

    def body(client):
        try:
            return run_bundle(module, client, build_istio_policies(dict(module.params)))
        except ResourceNotInstalled as exc:
            if module.params["on_missing_crd"] != "warn":
                raise
            # Once per run, not once per element: the whole mesh is missing, not one policy.
            if not missing:
                module.warn("Istio policies not applied: %s. Install Istio first to enforce them." % exc.msg)
            missing.append(exc.msg)
            return {"changed": False, "resources": [], "skipped_reason": exc.msg}

    execute(module, body)


if __name__ == "__main__":
    main()
