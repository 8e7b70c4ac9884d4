# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The AWX / Automation Platform execution environment: ansible-builder accepts the EE definition
and writes a build context (no image is built here), and ansible-builder's own introspection of
the installed collection finds the requirements in meta/execution-environment.yml, as it does
while building any EE that includes this collection."""

import os

import yaml

from conftest import ROOT, load_yaml, run, tail, tool

EE_DIR = os.path.join(ROOT, "execution-environment")


def requirement_lines(path):
    with open(path) as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("#")]


def test_builder_creates_a_build_context(tmp_path):
    context = tmp_path / "context"
    rc, out = run([tool("ansible-builder"), "create", "-f", os.path.join(EE_DIR, "execution-environment.yml"),
                   "--context", str(context), "--output-filename", "Containerfile"])
    assert rc == 0, tail(out)
    containerfile = (context / "Containerfile").read_text()
    build = context / "_build"
    assert yaml.safe_load((build / "requirements.yml").read_text()) == load_yaml(os.path.join(EE_DIR, "requirements.yml"))
    for name in ("requirements.txt", "bindep.txt"):
        assert requirement_lines(str(build / name)) == requirement_lines(os.path.join(EE_DIR, name)), name
    for expected in ("ansible-core==", "ansible-runner==", "HELM_VERSION", "sha256sum -c"):
        assert expected in containerfile, expected


def test_collection_requirements_are_found_by_introspection(installed_collections, tmp_path):
    meta = load_yaml(os.path.join(ROOT, "meta", "execution-environment.yml"))
    for key in ("python", "system"):
        path = meta["dependencies"][key]
        assert not os.path.isabs(path) and os.path.exists(os.path.join(ROOT, path)), path
    pip_out, bindep_out = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    rc, out = run([tool("ansible-builder"), "introspect", str(installed_collections), "--write-pip", str(pip_out), "--write-bindep", str(bindep_out)])
    assert rc == 0, tail(out)
    pip = pip_out.read_text()
    bindep = bindep_out.read_text()
    for line in requirement_lines(os.path.join(EE_DIR, "requirements.txt")):
        assert line.split(">")[0].split("=")[0] in pip, (line, pip)
    for line in requirement_lines(os.path.join(EE_DIR, "bindep.txt")):
        assert line.split()[0] in bindep, (line, bindep)
    assert "aiinfra.cluster" in pip and "aiinfra.cluster" in bindep, "introspection did not attribute the requirements to the collection"


def test_requirements_files_agree():
    """collections/requirements.yml (users, AWX projects) and the EE's list name the same collections."""
    users = load_yaml(os.path.join(ROOT, "collections", "requirements.yml"))["collections"]
    image = load_yaml(os.path.join(EE_DIR, "requirements.yml"))["collections"]
    assert dict((c["name"], c["version"]) for c in users) == dict((c["name"], c["version"]) for c in image)
    galaxy = load_yaml(os.path.join(ROOT, "galaxy.yml"))
    assert set(galaxy["dependencies"]) <= set(c["name"] for c in users)
