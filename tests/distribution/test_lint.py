# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""ansible-lint with the production profile on the repository as committed (a copy in the
ansible_collections layout, so that aiinfra.cluster resolves to this tree and nothing else)."""

import os

from conftest import ROOT, clean_env, load_yaml, run, tail, tool


def test_lint_config_adds_no_blanket_skips():
    config = load_yaml(os.path.join(ROOT, ".ansible-lint"))
    assert config["profile"] == "production"
    assert not config.get("skip_list"), "skip findings per line with a reason (noqa), not for the whole tree"
    assert not config.get("warn_list"), "warn_list hides findings"


def test_ansible_lint_production_profile(collection_tree, tmp_path):
    # A private HOME: ansible-lint would otherwise also load collections from ~/.ansible/collections
    # (a stale copy of this collection there hides new modules).
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(ANSIBLE_COLLECTIONS_PATH=collection_tree.parents[2], HOME=home)
    rc, out = run([tool("ansible-lint"), "--offline", "--profile", "production", "--nocolor"], cwd=str(collection_tree), env=env)
    assert rc == 0, "ansible-lint --profile production:\n%s" % tail(out, 120)
    assert "Passed" in out or "passed" in out, tail(out)
