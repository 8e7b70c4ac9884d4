"""Unit tests for the Istio policy builders, including the combinations Istio rejects."""

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError
from ansible_collections.aiinfra.cluster.plugins.module_utils.istio_builder import build_istio_policies

BASE = {"name": "triton", "namespace": "ml-serving"}


def test_full_bundle_in_v1_with_flat_rules_mapped():
    objs = build_istio_policies(
        dict(
            BASE,
            selector={"app": "triton"},
            peer_authentication={"mode": "STRICT", "port_level_mtls": {9400: "PERMISSIVE"}},
            request_authentication={
                "jwt_rules": [
                    {
                        "issuer": "https://auth/",
                        "jwks_uri": "https://auth/jwks",
                        "audiences": ["triton"],
                        "from_headers": [{"name": "Authorization", "prefix": "Bearer "}],
                    }
                ]
            },
            authorization={
                "action": "ALLOW",
                "rules": [
                    {
                        "principals": ["cluster.local/ns/istio-system/sa/gw"],
                        "not_namespaces": ["untrusted"],
                        "methods": ["GET", "POST"],
                        "paths": ["/v2/*"],
                        "ports": [8000],
                        "when": [{"key": "request.auth.claims[iss]", "values": ["https://auth/"]}],
                    }
                ],
            },
        )
    )
    assert [o["kind"] for o in objs] == ["PeerAuthentication", "RequestAuthentication", "AuthorizationPolicy"]
    assert all(o["apiVersion"] == "security.istio.io/v1" for o in objs)
    peer, req, authz = objs
    assert peer["spec"] == {"mtls": {"mode": "STRICT"}, "selector": {"matchLabels": {"app": "triton"}}, "portLevelMtls": {"9400": {"mode": "PERMISSIVE"}}}
    assert req["spec"]["jwtRules"] == [
        {"issuer": "https://auth/", "jwksUri": "https://auth/jwks", "audiences": ["triton"], "fromHeaders": [{"name": "Authorization", "prefix": "Bearer "}]}
    ]
    rule = authz["spec"]["rules"][0]
    assert rule["from"] == [{"source": {"principals": ["cluster.local/ns/istio-system/sa/gw"], "notNamespaces": ["untrusted"]}}]
    assert rule["to"] == [{"operation": {"methods": ["GET", "POST"], "paths": ["/v2/*"], "ports": ["8000"]}}]
    assert rule["when"] == [{"key": "request.auth.claims[iss]", "values": ["https://auth/"]}]


def test_namespace_wide_strict_mtls_and_deny_all_allow_policy():
    (peer,) = build_istio_policies(dict(BASE, peer_authentication={}))
    assert peer["spec"] == {"mtls": {"mode": "STRICT"}}
    (authz,) = build_istio_policies(dict(BASE, authorization={"action": "ALLOW", "rules": []}))
    assert authz["spec"] == {"action": "ALLOW", "rules": []}


def test_target_refs_get_their_group():
    (authz,) = build_istio_policies(
        dict(
            BASE,
            target_refs=[{"kind": "Service", "name": "api"}, {"kind": "Gateway", "name": "gw"}],
            authorization={"action": "DENY", "rules": [{"methods": ["DELETE"]}]},
        )
    )
    assert authz["spec"]["targetRefs"] == [
        {"group": "", "kind": "Service", "name": "api"},
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"},
    ]
    assert "selector" not in authz["spec"]


def test_custom_with_provider():
    (authz,) = build_istio_policies(
        dict(BASE, selector={"app": "x"}, authorization={"action": "CUSTOM", "provider": "oauth2-proxy", "rules": [{"paths": ["/admin/*"]}]})
    )
    assert authz["spec"]["provider"] == {"name": "oauth2-proxy"}


@pytest.mark.parametrize(
    "params, words",
    [
        ({"selector": {"app": "x"}, "target_refs": [{"kind": "Service", "name": "a"}], "authorization": {}}, "selector and target_refs"),
        ({"authorization": {"action": "CUSTOM", "rules": [{"paths": ["/"]}]}}, "CUSTOM needs"),
        ({"authorization": {"action": "ALLOW", "provider": "p"}}, "only valid with action CUSTOM"),
        ({"authorization": {"action": "DENY"}}, "never matches"),
        ({"peer_authentication": {"port_level_mtls": {"80": "STRICT"}}}, "needs selector"),
        ({"target_refs": [{"kind": "Service", "name": "a"}], "peer_authentication": {}}, "PeerAuthentication has no targetRefs"),
        ({"authorization": {"rules": [{"service_accounts": ["a"], "namespaces": ["b"]}]}}, "service_accounts"),
        ({"authorization": {"rules": [{"ports": ["70000"]}]}}, "1 and 65535"),
        ({"authorization": {"rules": [{"methods": ["get"]}]}}, "upper-case"),
        ({"target_refs": [{"kind": "Deployment", "name": "a"}], "authorization": {}}, "not a policy target"),
        ({"target_refs": [{"kind": "Service", "name": "a", "namespace": "other"}], "authorization": {}}, "cross-namespace"),
        ({"selector": {"app": "*"}, "peer_authentication": {}}, "'*'"),
        ({"request_authentication": {"jwt_rules": [{"issuer": "i", "jwks_uri": "https://a", "jwks": "{}"}]}}, "not both"),
        ({"request_authentication": {"jwt_rules": [{"issuer": "i", "jwks_uri": "ftp://a"}]}}, "https://"),
        ({"request_authentication": {"jwt_rules": []}}, "at least one rule"),
        ({}, "at least one of"),
    ],
)
def test_rejected_combinations(params, words):
    with pytest.raises(InputError) as err:
        build_istio_policies(dict(BASE, **params))
    assert words in err.value.msg
