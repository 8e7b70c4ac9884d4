# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Changelog fragments lint clean, fold into a release changelog with antsibull-changelog, and
CHANGELOG.rst is exactly what changelogs/changelog.yaml generates."""

import glob
import os

import yaml

from conftest import ROOT, clean_env, load_yaml, run, tail, tool


def changelog_env(collections):
    # antsibull-changelog runs ansible-doc to list new modules and roles.
    return clean_env(ANSIBLE_COLLECTIONS_PATH=collections)


def test_fragments_lint_clean():
    rc, out = run([tool("antsibull-changelog"), "lint"])
    assert rc == 0 and not out.strip(), out


def test_committed_changelog_is_generated(tmp_path, collection_tree):
    target = tmp_path / "CHANGELOG.rst"
    rc, out = run([tool("antsibull-changelog"), "generate", "--output", str(target), "--output-format", "rst"],
                  cwd=str(collection_tree), env=changelog_env(collection_tree.parents[2]))
    assert rc == 0, tail(out)
    with open(os.path.join(ROOT, "CHANGELOG.rst")) as handle:
        assert handle.read() == target.read_text(), "CHANGELOG.rst is stale: run antsibull-changelog generate"


def test_release_folds_every_fragment(collection_tree):
    """`antsibull-changelog release` on a copy: every fragment's entries land in CHANGELOG.rst."""
    version = load_yaml(os.path.join(ROOT, "galaxy.yml"))["version"]
    rc, out = run([tool("antsibull-changelog"), "release", "--version", version, "--update-existing", "--reload-plugins"],
                  cwd=str(collection_tree), env=changelog_env(collection_tree.parents[2]))
    assert rc == 0, tail(out)
    changelog = (collection_tree / "CHANGELOG.rst").read_text()
    for path in glob.glob(os.path.join(ROOT, "changelogs", "fragments", "*.yml")):
        for section, entries in (load_yaml(path) or {}).items():
            for entry in entries if isinstance(entries, list) else [entries]:
                first_words = " ".join(entry.split()[:6]).replace("``", "")
                assert first_words in changelog.replace("``", "").replace("\n", " "), (os.path.basename(path), section, first_words)
    for module in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py")):
        assert "aiinfra.cluster.%s " % os.path.basename(module)[:-3] in changelog, "new module missing from the release notes: %s" % module
    assert yaml.safe_load((collection_tree / "changelogs" / "changelog.yaml").read_text())["releases"][version]
