#!/usr/bin/env python3
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Writes the generated section of docs/compatibility.md from meta/compatibility.yml (the data the
preflight checks versions against), so the page and the check never disagree.

    compatibility_doc.py           rewrite the section
    compatibility_doc.py --check   exit 1 when the page differs from what the data gives
"""

import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "meta", "compatibility.yml")
DOC = os.path.join(ROOT, "docs", "compatibility.md")
BEGIN = "<!-- BEGIN generated from meta/compatibility.yml by tools/compatibility_doc.py: do not edit -->"
END = "<!-- END generated -->"


def section(data):
    lines = [
        BEGIN,
        "## Kubernetes versions the preflight accepts",
        "",
        "The preflight (`playbooks/preflight.yml`, the first play of `site.yml`) refuses a run that installs a",
        "component on a Kubernetes version below its minimum (or above a maximum its docs state).",
        "",
        "| Component | Installed by (version variable) | Kubernetes min | max | Validated upstream | Source |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for comp in data["components"]:
        kube = comp.get("kubernetes") or {}
        lines.append("| %s | %s (`%s`) | %s | %s | %s | %s |" % (
            comp["name"], comp["role"], comp["version_var"], kube.get("min") or "-", kube.get("max") or "-",
            kube.get("validated") or "-", comp.get("source") or "-"))
    cuda = data.get("cuda_min_driver") or {}
    lines += [
        "",
        "## CUDA images and NVIDIA drivers",
        "",
        "A GPU workload's image needs a driver branch at least as new as its CUDA major version's minimum",
        "(CUDA minor version compatibility, %s). The preflight reads the nodes' driver from GPU Feature" % cuda.get("source"),
        "Discovery's `nvidia.com/cuda.driver-version.*` (or `nvidia.com/cuda.driver.*`) labels.",
        "",
        "| CUDA | Lowest driver branch |",
        "| --- | --- |",
    ]
    for major, branch in sorted(((int(k), v) for k, v in (cuda.get("branches") or {}).items())):
        lines.append("| %d.x | %s |" % (major, branch))
    lines += ["", "| Images | Tag pattern | CUDA | Source |", "| --- | --- | --- | --- |"]
    for rule in data.get("cuda_images") or []:
        if rule.get("ngc_from"):
            cuda_text = ", ".join("%s+: %s" % (s["release"], s["cuda"]) for s in rule["ngc_from"])
        else:
            cuda_text = rule.get("cuda") or "from the tag"
        lines.append("| %s | `%s` | %s | %s |" % (rule["name"], rule["tag"], cuda_text, rule.get("source") or "-"))
    lines.append(END)
    return "\n".join(lines) + "\n"


def render(text, data):
    generated = section(data)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        return head + generated + ("\n" + tail if tail else "")
    return text.rstrip("\n") + "\n\n" + generated


def main(argv):
    with open(DATA) as handle:
        data = yaml.safe_load(handle)
    with open(DOC) as handle:
        text = handle.read()
    wanted = render(text, data)
    if "--check" in argv:
        if wanted != text:
            print("docs/compatibility.md differs from meta/compatibility.yml: run tools/compatibility_doc.py", file=sys.stderr)
            return 1
        return 0
    if wanted != text:
        with open(DOC, "w") as handle:
            handle.write(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
