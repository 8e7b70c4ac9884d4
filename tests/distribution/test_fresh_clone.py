# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""`make site` as a user who cloned the repository runs it: no ../shared beside the clone (no
offline chart mirror, no third-party CRDs). The charts then come from their upstream
repositories, here stood in for by a Helm repository and an OCI registry on 127.0.0.1, set the
way a user with a mirror of those repositories sets them. Istio and the Prometheus Operator are
not installed: their workloads are skipped with one line saying what to install, and the site
does not fail."""

import hashlib
import json
import os
import re
import shutil
import ssl
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from conftest import ROOT, clean_env, recap, run, source_files, tail, tool

SHARED_CHARTS = os.environ.get("AIINFRA_SHARED_CHARTS", os.path.join(os.path.dirname(ROOT), "shared", "charts"))
# Chart directory under SHARED_CHARTS -> where upstream publishes it: a Helm repository (index.yaml)
# or an OCI repository path.
HTTP_CHARTS = ["gpu-operator", "cert-manager", "fluid"]
OCI_CHARTS = {"kserve-crd": "kserve/charts", "kserve-resources": "kserve/charts", "kserve-runtime-configs": "kserve/charts",
              "kubeflow-trainer": "kubeflow/charts", "jobset": "jobset/charts", "kueue": "kueue/charts"}
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ChartMirror:
    """A read-only Helm repository (/charts/index.yaml) and OCI registry (/v2/...) over HTTPS on
    127.0.0.1, holding the packaged upstream charts. OCI needs TLS (helm talks plain HTTP to a
    registry only with --plain-http); the test's CA reaches helm through SSL_CERT_FILE."""

    def __init__(self, root, helm):
        self.root = root
        self.blobs, self.manifests, self.requests = {}, {}, []
        charts = os.path.join(root, "charts")
        os.makedirs(charts)
        for name in HTTP_CHARTS + sorted(OCI_CHARTS):
            rc, out = run([helm, "package", os.path.join(SHARED_CHARTS, name), "-d", charts])
            assert rc == 0, out
        for name, path in OCI_CHARTS.items():
            package = [f for f in os.listdir(charts) if re.match(re.escape(name) + r"-v?\d", f)][0]
            with open(os.path.join(SHARED_CHARTS, name, "Chart.yaml")) as handle:
                meta = yaml.safe_load(handle)
            with open(os.path.join(charts, package), "rb") as handle:
                layer = handle.read()
            os.remove(os.path.join(charts, package))  # published to the registry only
            config = json.dumps(meta).encode()
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": HELM_CONFIG, "digest": _digest(config), "size": len(config)},
                "layers": [{"mediaType": HELM_LAYER, "digest": _digest(layer), "size": len(layer)}],
            }).encode()
            self.blobs.update({_digest(config): config, _digest(layer): layer, _digest(manifest): manifest})
            repo = "%s/%s" % (path, name)
            self.manifests[(repo, str(meta["version"]).replace("+", "_"))] = manifest
            self.manifests[(repo, _digest(manifest))] = manifest
        rc, out = run([helm, "repo", "index", charts])
        assert rc == 0, out
        self.ca = os.path.join(root, "ca.pem")
        key = os.path.join(root, "key.pem")
        rc, out = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                       "-keyout", key, "-out", self.ca, "-days", "2", "-subj", "/CN=127.0.0.1",
                       "-addext", "subjectAltName=IP:127.0.0.1"])
        assert rc == 0, out
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        mirror = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=mirror.root, **kwargs)

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

            def _serve(self, body):
                mirror.requests.append(self.path)
                match = re.match(r"^/v2/(.+)/(manifests|blobs)/([^/]+)$", self.path)
                if self.path.rstrip("/") == "/v2":
                    return self._send(200, b"{}", "application/json", body)
                if not match:
                    return super().do_GET() if body else super().do_HEAD()
                repo, what, ref = match.groups()
                data = mirror.manifests.get((repo, ref)) if what == "manifests" else mirror.blobs.get(ref)
                if data is None:
                    return self._send(404, b'{"errors": [{"code": "NOT_FOUND"}]}', "application/json", body)
                return self._send(200, data, OCI_MANIFEST if what == "manifests" else "application/octet-stream", body, _digest(data))

            def _send(self, status, data, content_type, body, digest=None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                if digest:
                    self.send_header("Docker-Content-Digest", digest)
                self.end_headers()
                if body:
                    self.wfile.write(data)

        return Handler

    def overrides(self):
        """The upstream repository variables, pointed at this mirror (what a user with a mirror sets)."""
        http = "https://%s/charts" % self.url
        oci = "oci://%s/" % self.url
        return {
            "gpu_operator_chart_repo_url": http,
            "kserve_cert_manager_repo_url": http,
            "fluid_chart_repo_url": http,
            "kserve_chart_oci_repo": oci + "kserve/charts",
            "training_platform_trainer_oci_repo": oci + "kubeflow/charts",
            "training_platform_jobset_oci_repo": oci + "jobset/charts",
            "gpu_scheduling_kueue_oci_repo": oci + "kueue/charts",
        }


@pytest.mark.upstream
def test_site_from_a_clone_without_shared(tmp_path):
    assert os.path.isdir(SHARED_CHARTS), "the upstream charts to serve are missing: %s" % SHARED_CHARTS
    clone = tmp_path / "src" / "aiinfra-cluster"
    for rel in source_files():
        target = clone / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), str(target))
    assert not (clone.parent / "shared").exists()
    collections = clone / ".cache" / "collections"
    (collections / "ansible_collections" / "aiinfra").mkdir(parents=True)
    (collections / "ansible_collections" / "aiinfra" / "cluster").symlink_to(clone)

    rc, bin_dir = run(["bash", str(clone / "tools" / "gobuild" / "build.sh"), "--print-only"])
    bin_dir = bin_dir.strip()
    mirror = ChartMirror(str(tmp_path / "mirror"), os.path.join(bin_dir, "helm"))
    with open(str(tmp_path / "mirror.yml"), "w") as handle:
        yaml.safe_dump(mirror.overrides(), handle)
    helm_home = tmp_path / "helm"
    env = clean_env(
        PATH=bin_dir + os.pathsep + os.path.dirname(tool("ansible-playbook")) + os.pathsep + os.environ["PATH"],
        SSL_CERT_FILE=mirror.ca,
        HELM_CACHE_HOME=helm_home / "cache", HELM_CONFIG_HOME=helm_home / "config", HELM_DATA_HOME=helm_home / "data",
        ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_STDOUT_CALLBACK="default",
        K8S_AUTH_KUBECONFIG=clone / ".local-cluster" / "kubeconfig",
        AIINFRA_LOCAL_CLUSTER_DIR=clone / ".local-cluster",
    )
    env.pop("AIINFRA_REPO_DIR", None)
    env.pop("AIINFRA_CRDS_DIR", None)
    launcher = [tool("python"), str(clone / "tools" / "local_cluster.py")]
    try:
        rc, up = run(launcher + ["up"], cwd=str(clone), env=env, timeout=900)
        assert rc == 0, tail(up)
        assert "no third-party CRDs installed" in up, tail(up)

        # The GPU Operator's ClusterPolicy asks for its own DCGM exporter; the standalone one is
        # deployed anyway so that its ServiceMonitor meets the missing Prometheus Operator CRDs.
        # No GPU Operator controller runs here to create the nvidia RuntimeClass: the exporter
        # uses the default runtime, as on nodes where nvidia is containerd's default.
        playbook = [tool("ansible-playbook"), "-i", "inventories/local", "site.yml", "-e", "@%s" % (tmp_path / "mirror.yml"),
                    "-e", json.dumps({"observability_dcgm_on_gpu_operator": "deploy", "observability_dcgm_runtime_class_name": ""})]
        rc, out = run(playbook, cwd=str(clone), env=env, timeout=1800)
        counts = recap(out).get("localhost", {})
        assert rc == 0 and counts.get("failed") == 0, tail(out, 120)
        # Every chart came from the stand-in for the upstream repositories.
        assert any(p.startswith("/charts/index.yaml") for p in mirror.requests), mirror.requests
        for name, path in OCI_CHARTS.items():
            if name != "jobset":  # the local inventory installs JobSet through the Trainer chart
                assert any(p.startswith("/v2/%s/%s/" % (path, name)) for p in mirror.requests), (name, mirror.requests)
        # One line for each workload whose CRDs are missing, saying what to install.
        istio = re.findall(r'\[WARNING\]: Istio policies not applied: .*kind \w+ is not installed \(CRD \S+\.security\.istio\.io\).*Install Istio', out)
        assert len(istio) == 1, tail(out, 120)
        monitor = re.findall(r'\[WARNING\]: No ServiceMonitor for the DCGM exporter: .*install the Prometheus Operator', out)
        assert len(monitor) == 1, tail(out, 120)
    finally:
        run(launcher + ["down"], cwd=str(clone), env=env, timeout=300)
        mirror.close()
