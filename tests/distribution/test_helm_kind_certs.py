"""inventories/files/helm-kind-certs: the kind cluster's helm post-renderer that stands in for
cert-manager (Certificates become TLS Secrets, inject-ca-from becomes a caBundle)."""

import base64
import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RENDERER = os.path.join(ROOT, "inventories", "files", "helm-kind-certs")
CHARTS = os.environ.get("AIINFRA_CHARTS_DIR", os.path.join(os.path.dirname(ROOT), "shared", "charts"))
CERT_MANAGER_GROUP = "cert-manager.io"

CONFIGMAP = """# Source: demo/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo-config
  namespace: demo
data:
  # a comment and odd spacing the post-renderer must not touch
  note:   "issued by cert-manager.io, but not a Certificate"
  empty: ""
"""

MANIFEST = """---
# Source: demo/templates/issuer.yaml
apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: selfsigned-issuer
  namespace: demo
spec:
  selfSigned: {}
---
# Source: demo/templates/certificate.yaml
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: serving-cert
  namespace: demo
spec:
  commonName: demo-webhook.demo.svc
  dnsNames:
  - demo-webhook.demo.svc.cluster.local
  - demo-webhook.demo.svc
  issuerRef: {kind: Issuer, name: selfsigned-issuer}
  secretName: demo-webhook-cert
  secretTemplate:
    labels: {app: demo}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: demo-mutating
  annotations:
    cert-manager.io/inject-ca-from: demo/serving-cert
webhooks:
- name: one.demo.io
  clientConfig:
    service: {name: demo-webhook, namespace: demo, path: /mutate-one}
  admissionReviewVersions: [v1]
  sideEffects: None
- name: two.demo.io
  clientConfig:
    service: {name: demo-webhook, namespace: demo, path: /mutate-two}
  admissionReviewVersions: [v1]
  sideEffects: None
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.demo.io
  annotations:
    cert-manager.io/inject-ca-from: demo/serving-cert
    keep: me
spec:
  group: demo.io
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  conversion:
    strategy: Webhook
    webhook:
      clientConfig:
        service: {name: demo-webhook, namespace: demo, path: /convert}
      conversionReviewVersions: [v1]
---
""" + CONFIGMAP


def run(manifest, state, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("HELM_NAMESPACE", "K8S_AUTH_KUBECONFIG")}
    environ.update(env, AIINFRA_KIND_DIR=str(state))
    return subprocess.run([sys.executable, RENDERER], input=manifest, capture_output=True, text=True, env=environ, check=False)


def render(manifest, state, **env):
    result = run(manifest, state, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def by_key(out):
    return {d["kind"] + "/" + d["metadata"]["name"]: d for d in yaml.safe_load_all(out) if d}


def certificate(pem):
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem)


def assert_verifies(tmp_path, leaf_pem, ca_pem):
    """openssl's own check: the serving certificate chains to the caBundle for TLS server use."""
    (tmp_path / "leaf.pem").write_bytes(leaf_pem)
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    result = subprocess.run(["openssl", "verify", "-purpose", "sslserver", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "leaf.pem")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.strip().endswith(": OK"), result.stdout + result.stderr


def test_is_executable_python_with_the_header():
    assert os.access(RENDERER, os.X_OK)
    with open(RENDERER) as handle:
        head = handle.read().splitlines()[:3]
    assert head == ["#!/usr/bin/env python3", "# Copyright (c) 2026 aiinfra.cluster contributors", "# Apache License 2.0 (see LICENSE)"]


def test_certificate_becomes_a_tls_secret_signed_by_the_injected_ca(tmp_path):
    from cryptography import x509

    state = tmp_path / "state"
    out = render(MANIFEST, state)
    docs = by_key(out)
    assert sorted(docs) == ["ConfigMap/demo-config", "CustomResourceDefinition/widgets.demo.io",
                            "MutatingWebhookConfiguration/demo-mutating", "Secret/demo-webhook-cert"]
    # Document order is kept: the Secret stands where the Certificate stood.
    assert [d["kind"] for d in yaml.safe_load_all(out) if d] == ["Secret", "MutatingWebhookConfiguration", "CustomResourceDefinition", "ConfigMap"]
    assert CERT_MANAGER_GROUP + "/" not in "".join(str(d.get("apiVersion")) for d in docs.values())

    secret = docs["Secret/demo-webhook-cert"]
    assert secret["apiVersion"] == "v1" and secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"] == {"name": "demo-webhook-cert", "namespace": "demo", "labels": {"app": "demo"}}
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert sorted(data) == ["ca.crt", "tls.crt", "tls.key"]

    hooks = docs["MutatingWebhookConfiguration/demo-mutating"]["webhooks"]
    bundles = {hook["clientConfig"]["caBundle"] for hook in hooks}
    conversion = docs["CustomResourceDefinition/widgets.demo.io"]["spec"]["conversion"]["webhook"]["clientConfig"]
    bundles.add(conversion["caBundle"])
    assert len(bundles) == 1 and len(hooks) == 2
    ca_pem = base64.b64decode(bundles.pop())
    assert ca_pem == data["ca.crt"]
    assert [h["clientConfig"]["service"]["path"] for h in hooks] == ["/mutate-one", "/mutate-two"]
    assert conversion["service"]["path"] == "/convert"
    assert docs["CustomResourceDefinition/widgets.demo.io"]["metadata"]["annotations"] == {"keep": "me"}
    assert "annotations" not in docs["MutatingWebhookConfiguration/demo-mutating"]["metadata"]

    assert_verifies(tmp_path, data["tls.crt"], ca_pem)
    leaf, ca = certificate(data["tls.crt"]), certificate(ca_pem)
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == ["demo-webhook.demo.svc", "demo-webhook.demo.svc.cluster.local"]
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH])
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.public_key().curve.name == "secp256r1"
    after, before = (getattr(leaf, "not_valid_after_utc", None) or leaf.not_valid_after), (getattr(leaf, "not_valid_before_utc", None) or leaf.not_valid_before)
    assert (after - before).days >= 3649
    # The key is the certificate's.
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    assert load_pem_private_key(data["tls.key"], None).public_key().public_numbers() == leaf.public_key().public_numbers()

    # Untouched documents pass through byte for byte.
    assert out.endswith("---\n" + CONFIGMAP)
    assert "# Source: demo/templates/certificate.yaml\napiVersion: v1\nkind: Secret\n" in out

    # Same input, same state: the same bytes (helm upgrades must not roll the certificate).
    assert render(MANIFEST, state) == out
    assert sorted(os.listdir(state / "webhook-certs"))[0] == "ca.pem"


def test_other_names_get_another_certificate_from_the_same_ca(tmp_path):
    state = tmp_path / "state"
    first = by_key(render(MANIFEST, state))["Secret/demo-webhook-cert"]["data"]
    second = by_key(render(MANIFEST.replace("  - demo-webhook.demo.svc.cluster.local\n", ""), state))["Secret/demo-webhook-cert"]["data"]
    assert second["ca.crt"] == first["ca.crt"] and second["tls.crt"] != first["tls.crt"]
    # A lost state directory gives a new CA (and so new bytes): the state is what keeps it stable.
    other = by_key(render(MANIFEST, tmp_path / "other"))["Secret/demo-webhook-cert"]["data"]
    assert other["ca.crt"] != first["ca.crt"]
    # A lost ca.pem gives a new CA, and the certificates kept from the old one are issued anew.
    (state / "webhook-certs" / "ca.pem").unlink()
    out = render(MANIFEST, state)
    renewed = by_key(out)["Secret/demo-webhook-cert"]["data"]
    assert renewed["ca.crt"] != first["ca.crt"] and renewed["tls.crt"] != first["tls.crt"]
    assert_verifies(tmp_path, base64.b64decode(renewed["tls.crt"]), base64.b64decode(renewed["ca.crt"]))
    assert render(MANIFEST, state) == out


def test_state_directory_and_namespace_from_the_environment(tmp_path):
    manifest = MANIFEST.replace("  name: serving-cert\n  namespace: demo\n", "  name: serving-cert\n")
    environ = {k: v for k, v in os.environ.items() if k not in ("AIINFRA_KIND_DIR", "HELM_NAMESPACE")}
    kubeconfig = tmp_path / "kind" / "kubeconfig"
    kubeconfig.parent.mkdir()
    environ["K8S_AUTH_KUBECONFIG"] = str(kubeconfig)
    out = subprocess.run([sys.executable, RENDERER], input=manifest, capture_output=True, text=True, env=environ, check=True).stdout
    assert "namespace" not in by_key(out)["Secret/demo-webhook-cert"]["metadata"]  # helm applies the release namespace
    assert (tmp_path / "kind" / "webhook-certs" / "ca.pem").is_file()
    secret = by_key(render(manifest, tmp_path / "state", HELM_NAMESPACE="team-a"))["Secret/demo-webhook-cert"]
    assert secret["metadata"]["namespace"] == "team-a"


def test_errors_fail_with_a_message(tmp_path):
    result = run("apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\nspec: {dnsNames: [a.b]}\n", tmp_path)
    assert result.returncode == 1 and "secretName" in result.stderr and result.stdout == ""
    result = run("apiVersion: cert-manager.io/v1\nkind: CertificateRequest\nmetadata: {name: r}\n", tmp_path)
    assert result.returncode == 1 and "CertificateRequest" in result.stderr


def test_without_cert_manager_documents_output_is_input(tmp_path):
    manifest = "---\n" + CONFIGMAP + "---\n# Source: x\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
    assert render(manifest, tmp_path / "state") == manifest
    assert not (tmp_path / "state").exists()  # nothing issued, no CA made


def helm():
    binary = os.path.join(subprocess.run(["bash", os.path.join(ROOT, "tools", "gobuild", "build.sh"), "--print-only"], capture_output=True,
                                         text=True, check=False).stdout.strip(), "helm")
    return binary if os.access(binary, os.X_OK) else shutil.which("helm")


@pytest.mark.upstream
def test_kserve_chart_needs_no_cert_manager(tmp_path):
    binary = helm()
    if not binary:
        pytest.skip("no helm binary")
    # What roles/kserve passes (kserve_resources_values with the defaults: Standard mode, no
    # registry, no extra values); the chart's createSharedResources default renders cert-manager.
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"kserve": {"controller": {"deploymentMode": "Standard"}}}))
    rendered = subprocess.run([binary, "template", "kserve-resources", os.path.join(CHARTS, "kserve-resources"), "-n", "kserve", "-f", str(values)],
                              capture_output=True, text=True, check=True).stdout
    before = [d for d in yaml.safe_load_all(rendered) if d]
    assert any(d["kind"] == "Certificate" for d in before), "the chart no longer renders a Certificate: check what this stands in for"
    out = render(rendered, tmp_path / "state")
    after = [d for d in yaml.safe_load_all(out) if d]
    assert not [d for d in after if str(d["apiVersion"]).startswith(CERT_MANAGER_GROUP + "/")]
    assert not [d for d in after if "cert-manager.io/inject-ca-from" in (d["metadata"].get("annotations") or {})]
    hooks = [h for d in after if d["kind"].endswith("WebhookConfiguration") for h in d["webhooks"]]
    assert hooks and all(h["clientConfig"].get("caBundle") for h in hooks)
    secret = [d for d in after if d["kind"] == "Secret" and d["metadata"]["name"] == "kserve-webhook-server-cert"]
    assert len(secret) == 1 and secret[0]["metadata"]["namespace"] == "kserve"
    # The controller mounts that Secret.
    volumes = [v for d in after if d["kind"] == "Deployment" for v in d["spec"]["template"]["spec"].get("volumes") or []]
    assert "kserve-webhook-server-cert" in [(v.get("secret") or {}).get("secretName") for v in volumes]
    leaf = base64.b64decode(secret[0]["data"]["tls.crt"])
    assert_verifies(tmp_path, leaf, base64.b64decode(hooks[0]["clientConfig"]["caBundle"]))
    assert len(after) == len(before) - 1  # the Issuer is gone, the Certificate became the Secret
    assert render(rendered, tmp_path / "state") == out

    crds = subprocess.run([binary, "template", "kserve-crd", os.path.join(CHARTS, "kserve-crd"), "-n", "kserve"],
                          capture_output=True, text=True, check=True).stdout
    assert render(crds, tmp_path / "state") == crds
