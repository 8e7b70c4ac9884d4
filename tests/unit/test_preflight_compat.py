"""docs/compatibility.md's generated section is what meta/compatibility.yml gives: a change to one
without regenerating the other (tools/compatibility_doc.py) fails here."""

import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import compatibility_doc  # noqa: E402


def test_doc_matches_data():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "compatibility_doc.py"), "--check"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    assert proc.returncode == 0, proc.stdout.decode()


def test_drift_is_detected():
    with open(compatibility_doc.DATA) as handle:
        data = yaml.safe_load(handle)
    with open(compatibility_doc.DOC) as handle:
        text = handle.read()
    assert compatibility_doc.render(text, data) == text
    data["components"][0]["kubernetes"]["min"] = "1.99"
    changed = compatibility_doc.render(text, data)
    assert changed != text and "| 1.99 |" in changed
    # The hand-written part of the page is kept as it is.
    assert changed.split(compatibility_doc.BEGIN)[0] == text.split(compatibility_doc.BEGIN)[0]
