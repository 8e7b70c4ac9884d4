# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Fixtures for the distribution tests: the collection as users get it (a Galaxy tarball installed
into a fresh collections path), as ansible-test wants it (a copy under
<tmp>/ansible_collections/aiinfra/cluster), and helpers to run Ansible's command-line tools with a
clean environment, so nothing from the checkout (the .cache/collections link, ANSIBLE_* variables
of the calling shell, ~/.ansible/collections) leaks into what is tested."""

import glob
import os
import re
import shutil
import subprocess
import sys

import ansible_test
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
HERE = os.path.dirname(os.path.abspath(__file__))

# rbac/: the automation namespace and the two least-privilege accounts (see docs/security.md).
AUTOMATION_NAMESPACE = "aiinfra-automation"
RBAC_FILES = ["namespace.yml", "platform.yml", "workloads.yml"]

RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)", re.M)


def tool(name):
    """A command-line tool from the virtualenv that runs pytest (falls back to PATH)."""
    path = os.path.join(BIN, name)
    return path if os.path.exists(path) else (shutil.which(name) or name)


def clean_env(**extra):
    """os.environ without ANSIBLE_* / K8S_AUTH_* settings, plus `extra` (None values dropped)."""
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "K8S_AUTH_")))
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    for key, value in extra.items():
        if value is not None:
            env[key] = str(value)
    return env


def run(cmd, cwd=None, env=None, timeout=600):
    """Run a command; return (returncode, stdout and stderr together)."""
    proc = subprocess.run(
        cmd, cwd=cwd or ROOT, env=env if env is not None else clean_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, timeout=timeout, check=False,
    )
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def tail(text, lines=80):
    return "\n".join(text.splitlines()[-lines:])


def recap(output):
    """PLAY RECAP counters per host: {host: {ok, changed, unreachable, failed, ...}}."""
    names = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
    return dict((m.group(1), dict(zip(names, (int(g) for g in m.groups()[1:])))) for m in RECAP.finditer(output))


def source_files():
    """The files a fresh clone of the repository holds, plus new files not ignored by git."""
    rc, out = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
    assert rc == 0, out
    return sorted(p for p in out.split("\0") if p and os.path.isfile(os.path.join(ROOT, p)))


def module_names():
    return sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py")) if not p.endswith("__init__.py"))


def role_names():
    return sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "roles", "*", "tasks")))


def load_yaml(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="session")
def dist_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("dist")


@pytest.fixture(scope="session")
def galaxy_meta():
    return load_yaml(os.path.join(ROOT, "galaxy.yml"))


@pytest.fixture(scope="session")
def collection_tarball(dist_tmp, galaxy_meta):
    """`ansible-galaxy collection build` of the checkout, as a release job does."""
    out_dir = dist_tmp / "build"
    out_dir.mkdir()
    rc, out = run([tool("ansible-galaxy"), "collection", "build", "--output-path", str(out_dir), ROOT])
    assert rc == 0, out
    path = out_dir / ("%s-%s-%s.tar.gz" % (galaxy_meta["namespace"], galaxy_meta["name"], galaxy_meta["version"]))
    assert path.exists(), out
    return path


@pytest.fixture(scope="session")
def installed_collections(dist_tmp, collection_tarball):
    """A fresh collections path holding only the built tarball, installed as users install it.

    Galaxy is not reachable here, so dependencies are not fetched: kubernetes.core comes from the
    `ansible` package (tests/distribution/test_build.py checks that its version satisfies galaxy.yml)."""
    path = dist_tmp / "collections"
    # Only this path counts as installed, so a copy in ~/.ansible/collections cannot satisfy the install.
    rc, out = run(
        [tool("ansible-galaxy"), "collection", "install", "--no-deps", "--force", "-p", str(path), str(collection_tarball)],
        env=clean_env(ANSIBLE_COLLECTIONS_PATH=path),
    )
    assert rc == 0, out
    assert (path / "ansible_collections" / "aiinfra" / "cluster" / "MANIFEST.json").exists(), out
    return path


@pytest.fixture(scope="session")
def collection_tree(dist_tmp):
    """The repository copied to <tmp>/ansible_collections/aiinfra/cluster (ansible-test's layout)."""
    dest = dist_tmp / "tree" / "ansible_collections" / "aiinfra" / "cluster"
    for rel in source_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), str(target))
    return dest


@pytest.fixture(scope="session")
def ansible_test_ready():
    """ansible-test bootstraps pip in its sanity/units virtualenvs with a script from
    ci-files.testing.ansible.com, which CI cannot reach; put our stand-in (ensurepip, then pip from
    the package index) where ansible-test looks for a cached copy."""
    cache = os.path.expanduser("~/.ansible/test/cache")
    os.makedirs(cache, exist_ok=True)
    source = os.path.join(HERE, "get_pip_shim.py")
    # The pip version ansible-test bootstraps (get_venv_packages in python_requirements.py).
    with open(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")) as handle:
        pip_version = re.search(r"pip='([0-9.]+)'", handle.read()).group(1)
    target = os.path.join(cache, "get_pip_%s.py" % pip_version.replace(".", "_"))
    if not os.path.exists(target):
        shutil.copyfile(source, target)
    return cache


@pytest.fixture(scope="session")
def kubeconfig():
    """The local control plane's kubeconfig (tools/local_cluster.py up); fails, never skips."""
    path = os.environ.get("K8S_AUTH_KUBECONFIG") or os.path.join(ROOT, ".local-cluster", "kubeconfig")
    if not os.path.exists(path):
        raise RuntimeError("no local control plane (%s missing): run `make up` first" % path)
    return path


@pytest.fixture(scope="session")
def kube(kubeconfig):
    """The collection's own client, for assertions on what the API server holds."""
    # tests/conftest.py has put the checkout on the import path as ansible_collections.aiinfra.cluster.
    from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params

    client = KubeClient(config_from_params({"kubeconfig": kubeconfig}))
    client.get("/readyz")
    yield client
    client.close()


def delete_namespace(kube, name):
    """Best-effort clean-up of a namespace a test created."""
    from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError

    try:
        kube.request("DELETE", "/api/v1/namespaces/%s" % name, body={"propagationPolicy": "Background"})
    except ApiError:
        pass


def ansible_playbook(args, collections_path, cwd, timeout=600, **env):
    """ansible-playbook with ONLY `collections_path` (plus the ansible package's bundled collections)."""
    run_env = clean_env(ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_STDOUT_CALLBACK="default", **env)
    return run([tool("ansible-playbook")] + list(args), cwd=str(cwd), env=run_env, timeout=timeout)


def rbac_manifests():
    objects = []
    for name in RBAC_FILES:
        with open(os.path.join(ROOT, "rbac", name)) as handle:
            for doc in yaml.safe_load_all(handle):
                # A v1 List (one YAML document per file) holds the objects in items.
                objects.extend(doc.get("items", []) if doc and doc.get("kind") == "List" else [doc] if doc else [])
    return objects


@pytest.fixture(scope="session")
def rbac_applied(kube):
    from ansible_collections.aiinfra.cluster.plugins.module_utils.apply import ApplyEngine

    results, _diffs = ApplyEngine(kube).apply_all(rbac_manifests())
    assert all(r["action"] in ("created", "updated", "unchanged") for r in results), results
    return results


def token_kubeconfig(kube, admin_kubeconfig, account, path):
    """A kubeconfig holding only a short-lived token of `account` (TokenRequest API)."""
    answer = kube.request(
        "POST", "/api/v1/namespaces/%s/serviceaccounts/%s/token" % (AUTOMATION_NAMESPACE, account),
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}},
    )
    token = answer["status"]["token"]
    with open(admin_kubeconfig) as handle:
        admin = yaml.safe_load(handle)
    context = dict((c["name"], c["context"]) for c in admin["contexts"])[admin["current-context"]]
    cluster = dict((c["name"], c["cluster"]) for c in admin["clusters"])[context["cluster"]]
    if "certificate-authority" in cluster:  # make it absolute: the new file lives elsewhere
        cluster = dict(cluster, **{"certificate-authority": os.path.join(os.path.dirname(admin_kubeconfig), cluster["certificate-authority"])})
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": account, "preferences": {},
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": "local", "user": account}}],
    }
    with open(str(path), "w") as handle:
        yaml.safe_dump(config, handle)
    os.chmod(str(path), 0o600)
    return str(path), token
