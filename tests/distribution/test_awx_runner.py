# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""site.yml run the way an AWX job template runs it: ansible-runner on a private data dir with
the project (a playbook that imports aiinfra.cluster.site), the inventory, the survey's answers
as extravars (strings, as surveys give them) and the kubeconfig injected ONLY as the
K8S_AUTH_KUBECONFIG environment variable, as an AWX credential does (docs/awx.md)."""

import glob
import json
import os
import uuid

import pytest
import yaml

from conftest import ROOT, clean_env, delete_namespace, run, tail, tool


def job_events(artifacts):
    events = []
    for path in sorted(glob.glob(os.path.join(artifacts, "job_events", "*.json"))):
        with open(path) as handle:
            events.append(json.load(handle))
    return events


@pytest.mark.upstream
def test_site_as_an_awx_job_template(installed_collections, kubeconfig, kube, tmp_path):
    private = tmp_path / "awx-job"
    (private / "project").mkdir(parents=True)
    (private / "env").mkdir()
    # The AWX project: a repository with a playbook (and collections/requirements.yml, which AWX
    # installs; here the collection is already installed from the tarball).
    (private / "project" / "site.yml").write_text(
        "---\n- name: aiinfra.cluster site\n  ansible.builtin.import_playbook: aiinfra.cluster.site\n"
    )
    namespace = "aiinfra-awx-%s" % uuid.uuid4().hex[:6]
    survey = {
        # Survey answers arrive as strings (text and multiple-choice questions).
        "aiinfra_system_namespace": namespace,
        "aiinfra_fluid_enabled": "false",
        "aiinfra_training_platform_enabled": "false",
        "kserve_deployment_mode": "Standard",
    }
    (private / "env" / "extravars").write_text(yaml.safe_dump(survey))
    # What the credential injects, and nothing else about the cluster.
    (private / "env" / "envvars").write_text(yaml.safe_dump({
        "K8S_AUTH_KUBECONFIG": kubeconfig,
        "ANSIBLE_COLLECTIONS_PATH": str(installed_collections),
        "ANSIBLE_FORCE_COLOR": "0",
    }))
    ident = "job-1"
    inventory = os.path.join(ROOT, "inventories", "local", "hosts.yml")
    try:
        rc, out = run(
            [tool("ansible-runner"), "run", str(private), "-p", "site.yml", "--inventory", inventory, "--ident", ident],
            cwd=str(tmp_path), env=clean_env(AIINFRA_REPO_DIR=ROOT), timeout=900,
        )
        artifacts = private / "artifacts" / ident
        status = (artifacts / "status").read_text().strip()
        assert rc == 0 and status == "successful", "ansible-runner: rc=%s status=%s\n%s" % (rc, status, tail(out, 120))

        events = job_events(str(artifacts))
        stats = [e for e in events if e.get("event") == "playbook_on_stats"][-1]["event_data"]
        assert not stats.get("failures") and not stats.get("dark"), stats
        # Survey strings "false" switch components off: none of their tasks ran.
        ran_roles = set(e["event_data"].get("role") for e in events if e.get("event") == "runner_on_ok")
        assert not ran_roles & {"fluid", "training_platform"}, ran_roles
        assert ran_roles & {"gpu_operator", "gpu_scheduling", "kserve"}, "the platform roles did not run: %s" % ran_roles
        # The kubeconfig came only from the environment, and it is the local control plane's.
        assert kube.get("/api/v1/namespaces/%s" % namespace)["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "aiinfra.cluster"
        assert "kubeconfig" not in (private / "env" / "extravars").read_text()
        # The job's stdout names the collection installed from the tarball, never the checkout.
        stdout = (artifacts / "stdout").read_text()
        assert "/.cache/collections/" not in stdout, tail(stdout)
    finally:
        delete_namespace(kube, namespace)
