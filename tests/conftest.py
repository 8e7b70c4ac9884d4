"""Shared test plumbing: import the collection as ansible_collections.aiinfra.cluster, and run
modules the way Ansible does (a separate process with the module's arguments)."""

import json
import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
# Under ansible-test the tree already is ansible_collections/aiinfra/cluster: leave its loader be.
IN_COLLECTION_TREE = os.path.basename(os.path.dirname(os.path.dirname(ROOT))) == "ansible_collections"
if not IN_COLLECTION_TREE:
    _link = os.path.join(COLLECTIONS, "ansible_collections", "aiinfra", "cluster")
    if not os.path.exists(_link):
        os.makedirs(os.path.dirname(_link), exist_ok=True)
        os.symlink(ROOT, _link)
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    os.environ["ANSIBLE_COLLECTIONS_PATH"] = COLLECTIONS

    # ansible_collections is a namespace package spread over site-packages and our path.
    import ansible_collections  # noqa: E402 pylint: disable=wrong-import-position

    if os.path.join(COLLECTIONS, "ansible_collections") not in list(ansible_collections.__path__):
        ansible_collections.__path__.append(os.path.join(COLLECTIONS, "ansible_collections"))


def run_module(name, args, check_mode=False, diff=False, env=None):
    """Run plugins/modules/<name>.py in a subprocess; return its JSON result (failed ones too)."""
    payload = dict(args)
    payload["_ansible_check_mode"] = check_mode
    payload["_ansible_diff"] = diff
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": payload}, handle)
        args_file = handle.name
    run_env = dict(os.environ)
    # The module process imports the collection from the path holding ansible_collections/: the
    # .cache/collections link, or under ansible-test the directory above the copied tree (its loader
    # is only installed in the pytest process, not in the module's).
    search_path = os.path.dirname(os.path.dirname(os.path.dirname(ROOT))) if IN_COLLECTION_TREE else COLLECTIONS
    run_env["PYTHONPATH"] = search_path + os.pathsep + run_env.get("PYTHONPATH", "")
    if env is not None:
        run_env.update(env)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ansible_collections.aiinfra.cluster.plugins.modules." + name, args_file],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=run_env,
            cwd=ROOT,
            timeout=900,
            check=False,
        )
    finally:
        os.unlink(args_file)
    out = proc.stdout.decode()
    try:
        result = json.loads(out[out.index("{"):])
    except ValueError:
        raise AssertionError("module %s printed no JSON (rc=%d):\n%s\n%s" % (name, proc.returncode, out, proc.stderr.decode()))
    assert "Traceback" not in proc.stderr.decode(), proc.stderr.decode()
    return result


@pytest.fixture
def module_runner():
    return run_module


# The upstream CRDs and charts sit in ../shared beside a checkout of this project; a plain clone
# has neither (tools/local_cluster.py then installs no CRDs). Tests that apply the operators' kinds
# or install their charts are marked `upstream` and skipped there, saying what is missing.
SHARED_DIR = os.path.join(os.path.dirname(ROOT), "shared")
UPSTREAM_CRDS = os.environ.get("AIINFRA_CRDS_DIR", os.path.join(SHARED_DIR, "crds"))
UPSTREAM_CHARTS = os.environ.get("AIINFRA_CHARTS_DIR", os.path.join(SHARED_DIR, "charts"))


def pytest_configure(config):
    config.addinivalue_line("markers", "upstream: needs the upstream CRDs and charts (../shared beside the clone)")


def pytest_collection_modifyitems(config, items):
    missing = [d for d in (UPSTREAM_CRDS, UPSTREAM_CHARTS) if not (d and os.path.isdir(d))]
    if not missing:
        return
    skip = pytest.mark.skip(reason="needs the upstream CRDs and charts; not found: %s" % ", ".join(d or "(none given)" for d in missing))
    for item in items:
        if item.get_closest_marker("upstream"):
            item.add_marker(skip)
