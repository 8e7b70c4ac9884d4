# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""ansible-test sanity and units, with the repository copied to <tmp>/ansible_collections/aiinfra/cluster
(the layout ansible-test requires), locally (no containers). Nothing may be skipped silently: a
sanity test that ansible-test skips for a missing tool fails here, and the ignore file may only
hold per-file entries for the error codes listed below, each with a reason."""

import glob
import os
import re

from conftest import ROOT, clean_env, run, tail, tool

PYTHON = "3.11"
# The only ignore entries allowed, and why.
ALLOWED_IGNORES = {
    # The collection is Apache-2.0 (LICENSE); validate-modules looks for a GPLv3 header.
    "validate-modules:missing-gplv3-license",
    # Developer tools run directly (`tools/local_cluster.py up`), not shipped in the tarball.
    "shebang",
}


def ansible_test(tree, *args):
    env = clean_env(ANSIBLE_COLLECTIONS_PATH=None)
    return run([tool("ansible-test")] + list(args), cwd=str(tree), env=env, timeout=900)


def test_ignore_files_have_no_blanket_entries():
    problems = []
    for path in glob.glob(os.path.join(ROOT, "tests", "sanity", "ignore-*.txt")):
        with open(path) as handle:
            for number, line in enumerate(handle, 1):
                entry = line.split("#", 1)[0].strip()
                if not entry:
                    continue
                target, code = (entry.split(" ", 1) + [""])[:2]
                where = "%s:%d: %s" % (os.path.relpath(path, ROOT), number, line.strip())
                if code.strip() not in ALLOWED_IGNORES:
                    problems.append("%s: error code not allowed; fix the finding instead" % where)
                if "#" not in line:
                    problems.append("%s: give the reason after ' # '" % where)
                if not os.path.isfile(os.path.join(ROOT, target)):
                    problems.append("%s: not a file" % where)
    assert not problems, "\n".join(problems)


def test_ansible_test_sanity(collection_tree, ansible_test_ready):
    rc, out = ansible_test(collection_tree, "sanity", "--local", "--python", PYTHON, "--color", "no")
    skipped = [line for line in out.splitlines() if re.search(r"Skipping sanity test|Required program .* not found|skipped", line, re.I)]
    assert rc == 0, "ansible-test sanity failed:\n%s" % tail(out, 150)
    assert not skipped, "sanity tests were skipped (install what they need):\n%s" % "\n".join(skipped)


def test_ansible_test_units(collection_tree, ansible_test_ready):
    rc, out = ansible_test(collection_tree, "units", "--local", "--python", PYTHON, "--color", "no")
    assert rc == 0, "ansible-test units failed:\n%s" % tail(out, 150)
    ran = re.search(r"(\d+) passed", out)
    assert ran and int(ran.group(1)) > 0, tail(out)
    assert not re.search(r"\d+ skipped", out), "unit tests skipped:\n%s" % tail(out)
