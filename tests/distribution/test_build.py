# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The Galaxy tarball: small, holds what users run and nothing of the development tree, and
once installed into an empty collections path runs `ansible-playbook aiinfra.cluster.site`
against the local control plane, twice (the second run changes nothing)."""

import json
import os
import tarfile
import uuid

import pytest
import yaml

from conftest import ROOT, ansible_playbook, clean_env, delete_namespace, module_names, recap, role_names, run, tail, tool

# The whole collection is text; a tarball past this carries something it should not (a venv,
# a cache, a build output).
MAX_TARBALL_BYTES = 1024 * 1024
DEV_ONLY = ("tests/", "tools/", "molecule/", ".venv/", ".cache/", ".git/", ".local-cluster/", ".pytest_cache/", ".ci/", ".ansible/")


def members(tarball):
    with tarfile.open(str(tarball)) as archive:
        return [m.name[2:] if m.name.startswith("./") else m.name for m in archive.getmembers()]


def test_tarball_is_small_and_has_no_development_files(collection_tarball):
    size = os.path.getsize(str(collection_tarball))
    assert size < MAX_TARBALL_BYTES, "tarball is %d bytes: check build_ignore in galaxy.yml" % size
    names = members(collection_tarball)
    leaked = [n for n in names if n.startswith(DEV_ONLY) or "__pycache__" in n or n.endswith((".pyc", ".tar.gz", ".retry"))]
    assert not leaked, "build_ignore lets these into the tarball: %s" % leaked
    for dev_file in ("Makefile", "requirements-dev.txt", ".ansible-lint", ".yamllint", ".gitignore"):
        assert dev_file not in names


def test_tarball_holds_every_plugin_role_and_user_file(collection_tarball):
    names = set(members(collection_tarball))
    expected = ["plugins/modules/%s.py" % m for m in module_names()]
    expected += ["roles/%s/tasks/main.yml" % r for r in role_names()]
    expected += ["roles/%s/meta/argument_specs.yml" % r for r in role_names()]
    expected += [
        "MANIFEST.json", "FILES.json", "LICENSE", "README.md", "meta/runtime.yml", "meta/execution-environment.yml",
        "playbooks/site.yml", "inventories/local/hosts.yml", "changelogs/changelog.yaml", "CHANGELOG.rst",
        "collections/requirements.yml", "execution-environment/requirements.txt", "execution-environment/bindep.txt",
    ]
    expected += [os.path.relpath(p, ROOT) for p in sorted(_files_under("rbac") + _files_under("docs"))]
    missing = sorted(set(expected) - names)
    assert not missing, "missing from the tarball: %s" % missing


def _files_under(folder):
    found = []
    for base, _dirs, files in os.walk(os.path.join(ROOT, folder)):
        found.extend(os.path.join(base, f) for f in files if not os.path.basename(f).startswith("benchmark"))
    return [f for f in found if not os.path.relpath(f, ROOT).startswith("docs/benchmark")]


def test_manifest_matches_galaxy_yml(installed_collections, galaxy_meta):
    with open(str(installed_collections / "ansible_collections" / "aiinfra" / "cluster" / "MANIFEST.json")) as handle:
        info = json.load(handle)["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == (galaxy_meta["namespace"], galaxy_meta["name"], galaxy_meta["version"])
    assert info["dependencies"] == galaxy_meta["dependencies"]


def test_dependencies_are_satisfied_without_galaxy(installed_collections, galaxy_meta):
    """Dependencies not fetched (no Galaxy here) must come from the ansible package at a version galaxy.yml accepts."""
    rc, out = run([tool("ansible-galaxy"), "collection", "list", "--format", "json"], env=clean_env(ANSIBLE_COLLECTIONS_PATH=installed_collections))
    assert rc == 0, out
    listing = json.loads(out[out.index("{"):])
    found = {}
    for collections in listing.values():
        found.update(dict((name, meta.get("version")) for name, meta in collections.items()))
    assert found.get("aiinfra.cluster"), listing
    for dependency, spec in galaxy_meta["dependencies"].items():
        assert dependency in found, "%s (galaxy.yml dependency) is not installed" % dependency
        minimum = spec.replace(">=", "").strip()
        assert _version(found[dependency]) >= _version(minimum), "%s %s does not satisfy %s" % (dependency, found[dependency], spec)


def _version(text):
    return tuple(int(p) for p in text.split(".")[:3] if p.isdigit())


@pytest.mark.upstream
def test_installed_collection_runs_site_idempotently(installed_collections, kubeconfig, kube, dist_tmp):
    """`ansible-playbook aiinfra.cluster.site` from the installed tarball only (run from an empty
    directory, so nothing of the checkout is used), against the local control plane."""
    collection = installed_collections / "ansible_collections" / "aiinfra" / "cluster"
    # The local inventory of the checkout: its group_vars find the control plane's Helm and the
    # offline chart mirror next to the checkout. Playbooks, roles and plugins come from the tarball.
    inventory = os.path.join(ROOT, "inventories", "local", "hosts.yml")
    workdir = dist_tmp / "site-run"
    workdir.mkdir()
    namespace = "aiinfra-dist-%s" % uuid.uuid4().hex[:6]
    args = ["aiinfra.cluster.site", "-i", inventory, "-e", "aiinfra_system_namespace=%s" % namespace]
    try:
        rc, out = ansible_playbook(args, installed_collections, workdir, K8S_AUTH_KUBECONFIG=kubeconfig)
        assert rc == 0, tail(out)
        counts = recap(out)
        assert counts.get("localhost", {}).get("failed") == 0, tail(out)
        assert counts["localhost"]["changed"] >= 1, "the first run created nothing:\n%s" % tail(out)
        assert "PLAY [Platform tier" in out and "TASK [aiinfra.cluster." in out, tail(out)
        created = kube.get("/api/v1/namespaces/%s" % namespace)
        assert created["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "aiinfra.cluster"
        # The site ran from the installed copy, not from the checkout.
        assert str(collection) in _playbook_paths(installed_collections, workdir, kubeconfig, args)

        rc, out = ansible_playbook(args, installed_collections, workdir, K8S_AUTH_KUBECONFIG=kubeconfig)
        assert rc == 0, tail(out)
        assert recap(out)["localhost"]["changed"] == 0, "second run is not idempotent:\n%s" % tail(out, 150)

        # The preview docs/site.md offers, after a real run: nothing would change.
        rc, out = ansible_playbook(args + ["--check", "--diff"], installed_collections, workdir, K8S_AUTH_KUBECONFIG=kubeconfig)
        assert rc == 0 and recap(out)["localhost"]["changed"] == 0, "--check after a run reports changes:\n%s" % tail(out, 150)
    finally:
        delete_namespace(kube, namespace)


def _playbook_paths(collections, workdir, kubeconfig, args):
    """`-vv` names the playbook file it loaded ("N plays in <path>")."""
    rc, out = ansible_playbook(args + ["--list-tasks", "-vv"], collections, workdir, K8S_AUTH_KUBECONFIG=kubeconfig)
    assert rc == 0, tail(out)
    return out


def test_galaxy_yml_build_ignore_is_complete(galaxy_meta):
    """Every folder that exists only for development is kept out by name."""
    ignored = set(galaxy_meta["build_ignore"])
    for folder in ("tests", "tools", "molecule", ".venv", ".cache", ".local-cluster", ".ci", ".git"):
        assert folder in ignored, folder
    assert yaml.safe_load(open(os.path.join(ROOT, "meta", "runtime.yml")))["requires_ansible"]
