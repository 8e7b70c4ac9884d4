"""inventories/files/helm-local-webhooks: the local control plane's helm post-renderer."""

import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RENDERER = os.path.join(ROOT, "inventories", "files", "helm-local-webhooks")

MANIFEST = """---
apiVersion: v1
kind: Service
metadata:
  name: kserve-webhook-server-service
spec:
  ports: [{port: 443}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: inferenceservice.serving.kserve.io
webhooks:
  - name: inferenceservice.kserve-webhook-server.validator
    clientConfig:
      caBundle: Cg==
      service: {name: kserve-webhook-server-service, namespace: kserve, port: 443, path: /validate-serving-kserve-io-v1beta1-inferenceservice}
    failurePolicy: Fail
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: cert-manager-webhook
webhooks:
  - name: webhook.cert-manager.io
    clientConfig:
      service: {name: cert-manager-webhook, namespace: cert-manager, path: /mutate}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: workloads.kueue.x-k8s.io
spec:
  conversion:
    strategy: Webhook
    webhook:
      clientConfig:
        service: {name: kueue-webhook-service, namespace: kueue-system, path: /convert}
      conversionReviewVersions: [v1]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta2.visibility.kueue.x-k8s.io
spec:
  group: visibility.kueue.x-k8s.io
  version: v1beta2
  groupPriorityMinimum: 100
  versionPriority: 100
  service: {name: kueue-visibility-server, namespace: kueue-system}
"""


def render(tmp_path, state):
    env = dict(os.environ, AIINFRA_LOCAL_CLUSTER_DIR=str(tmp_path))
    if state is not None:
        (tmp_path / "webhooks.json").write_text(json.dumps(state))
    out = subprocess.run([sys.executable, RENDERER], input=MANIFEST, capture_output=True, text=True, env=env, check=True).stdout
    return dict((d["kind"] + "/" + d["metadata"]["name"], d) for d in yaml.safe_load_all(out) if d)


def test_served_webhooks_point_at_loopback_with_the_launcher_ca(tmp_path):
    state = {"ca_bundle": "Q0E=", "ca_bundles": {"kueue-webhook-service": "S0NB"},
             "servers": {"kserve-webhook-server-service": "https://127.0.0.1:4321", "kueue-webhook-service": "https://127.0.0.1:4400"}}
    docs = render(tmp_path, state)
    hook = docs["ValidatingWebhookConfiguration/inferenceservice.serving.kserve.io"]["webhooks"][0]
    assert hook["clientConfig"] == {"url": "https://127.0.0.1:4321/validate-serving-kserve-io-v1beta1-inferenceservice", "caBundle": "Q0E="}
    assert hook["failurePolicy"] == "Fail"
    conversion = docs["CustomResourceDefinition/workloads.kueue.x-k8s.io"]["spec"]["conversion"]["webhook"]
    # Kueue's server has a CA of its own (the launcher's make_kueue_pki).
    assert conversion["clientConfig"] == {"url": "https://127.0.0.1:4400/convert", "caBundle": "S0NB"}
    assert conversion["conversionReviewVersions"] == ["v1"]
    # No controller serves cert-manager's webhook here: dropped, not left failing every request.
    assert "MutatingWebhookConfiguration/cert-manager-webhook" not in docs
    assert docs["Service/kserve-webhook-server-service"]["spec"] == {"ports": [{"port": 443}]}
    # The aggregated visibility API server does not run here: its APIService would stall discovery.
    assert "APIService/v1beta2.visibility.kueue.x-k8s.io" not in docs


def test_without_controllers_every_webhook_is_dropped(tmp_path):
    docs = render(tmp_path, None)
    assert sorted(docs) == ["CustomResourceDefinition/workloads.kueue.x-k8s.io", "Service/kserve-webhook-server-service"]
    # A conversion webhook nothing serves stays as the chart has it.
    service = docs["CustomResourceDefinition/workloads.kueue.x-k8s.io"]["spec"]["conversion"]["webhook"]["clientConfig"]["service"]
    assert service["name"] == "kueue-webhook-service"
