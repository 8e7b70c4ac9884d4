#!/usr/bin/env python3
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Render tools/benchmark/results.json into docs/benchmark.md (between the results markers) and
docs/benchmark.png.

    report.py [results.json] [out_dir]
"""

import json
import math
import os
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _phase(report, key):
    return next((p for p in report["phases"] if p["key"] == key), None)


def targets(report):
    """(target, measured, met) rows for the issue's targets."""
    rows = []
    ours, k8s, floor = _phase(report, "collection"), _phase(report, "kubernetes_core"), _phase(report, "kubectl")
    if ours and k8s:
        for run in ("first", "rerun"):
            speedup = k8s[run]["seconds"] / ours[run]["seconds"]
            rows.append(("%s: >= 5x faster than kubernetes.core" % run, "%.1fx" % speedup, speedup >= 5))
    if ours and floor:
        for run in ("first", "rerun"):
            factor = ours[run]["seconds"] / floor[run]["seconds"]
            rows.append(("%s: within 5x of the kubectl floor" % run, "%.1fx kubectl" % factor, factor <= 5))
    roles = _phase(report, "roles")
    if ours and roles:
        for run in ("first", "rerun"):
            factor = roles[run]["seconds"] / ours[run]["seconds"]
            rows.append(("%s: the roles within 1.25x of the batch phase" % run, "%.2fx batch" % factor, factor <= 1.25))
    site = report.get("site")
    if site:
        rows.append(
            (
                "whole embedded site, no-op re-run: within 5x of the floor",
                "%.1f s = %.1fx the floor (%.1f s)" % (site["rerun"]["seconds"], site["ratio_rerun_floor"], site["floor"]["seconds"]),
                site["ratio_rerun_floor"] <= 5,
            )
        )
        rows.append(
            (
                "whole embedded site, re-run: no write, changed=0",
                "%d writes, changed=%s" % (site["rerun"]["requests"]["writes"], site["rerun"]["tasks_changed"]),
                site["rerun"]["requests"]["writes"] == 0 and site["rerun"]["tasks_changed"] == 0,
            )
        )
    for phase in (ours, roles):
        if not phase:
            continue
        first, rerun = phase["first"], phase["rerun"]
        who = "" if phase is ours else " (roles)"
        rows.append(
            (
                "first run%s: at most one write per object" % who,
                "%.2f writes/object (+%.2f dry-run)" % (first["writes_per_object"], float(first["requests"]["dry_run"]) / phase["objects"]),
                first["writes_per_object"] <= 1 and not first.get("missing"),
            )
        )
        rows.append(
            (
                "re-run%s: no write that changes anything" % who,
                "%d writes, %d objects changed" % (rerun["requests"]["writes"], len(rerun.get("objects_changed") or [])),
                not rerun.get("objects_changed") and rerun["tasks_changed"] == 0,
            )
        )
    info = report.get("gpu_node_info")
    if info:
        node_lists = info["runs"][0]["server_lists"].get("nodes", 0)
        all_lists = (info["runs"][0]["module_requests"] or {}).get("GET", 0)
        allowed = int(math.ceil(info["cluster_nodes"] / 500.0))
        rows.append(("gpu_node_info over %d GPU nodes: under 2 s" % info["gpu_nodes"], "%.2f s (median)" % info["median_seconds"], info["median_seconds"] < 2))
        rows.append(
            (
                "gpu_node_info: at most one list per 500 nodes",
                "%d node lists for %d nodes (%d allowed), %d list requests in all with the pod list" % (node_lists, info["cluster_nodes"], allowed, all_lists),
                node_lists <= allowed,
            )
        )
        if info.get("resource_slices"):
            slice_lists = info["runs"][0]["server_lists"].get("resourceslices", 0)
            claim_lists = info["runs"][0]["server_lists"].get("resourceclaims", 0)
            slices_allowed = int(math.ceil(info["resource_slices"] / 500.0))
            rows.append(
                (
                    "gpu_node_info with DRA: at most one list per 500 ResourceSlices, one claim list",
                    "%d DRA devices; %d slice lists for %d ResourceSlices (%d allowed), %d ResourceClaim list"
                    % (info.get("dra_devices", 0), slice_lists, info["resource_slices"], slices_allowed, claim_lists),
                    slice_lists <= slices_allowed and claim_lists <= 1 and info.get("dra_devices", 0) > 0,
                )
            )
    queue = report.get("queue")
    if queue:
        rows.append(
            (
                "%d queued jobs on %d nodes: each admitted with all pods bound, or queued with no pod" % (queue["jobs"], queue["gpu_nodes"]),
                "%d admitted (%d pods bound), %d queued, in %.1f s" % (queue["admitted"], queue["bound"], queue["queued"], queue["seconds"]),
                queue["settled"],
            )
        )
    return rows


def markdown(report):
    lines = ["Measured %s, %d CPUs; whole benchmark %.0f s." % (report["started"], report["versions"]["cpus"], report["seconds"])]
    load = report.get("load_average")
    if load:
        lines[0] += " Load average (1 min) %.1f at the start, %.1f at the end." % (load["start"], load.get("end", load["start"]))
    lines.append("")
    if report.get("ansible_floor_seconds"):
        lines += [
            "`ansible-playbook` with a single no-op task takes %.1f s here: every Ansible row pays that before its first task."
            % report["ansible_floor_seconds"],
            "",
        ]
    lines += [
        "| Tool | Objects | First run (s) | Re-run (s) | Re-run/first | Requests/object first | Writes first | Dry-run first"
        " | Reads first | Discovery first | Requests re-run | Writes re-run | Changed by re-run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in report["phases"]:
        f, r = p["first"], p["rerun"]
        lines.append(
            "| %s | %d | %.1f | %.1f | %.2f | %.2f | %d | %d | %d | %d | %d | %d | %d |"
            % (
                p["label"],
                p["objects"],
                f["seconds"],
                r["seconds"],
                p["ratio_rerun_first"],
                f["requests_per_object"],
                f["requests"]["writes"],
                f["requests"]["dry_run"],
                f["requests"]["reads"],
                f["requests"]["discovery"],
                r["requests"]["total"],
                r["requests"]["writes"],
                len(r.get("objects_changed") or []),
            )
        )
    lines += ["", "Requests by verb (API server counters; `(dry-run)` = `dryRun=All`, nothing stored):", ""]
    lines += ["| Tool | First run | Re-run |", "|---|---|---|"]

    def fmt(d):
        return ", ".join("%s %d" % kv for kv in sorted(d.items()))

    for p in report["phases"]:
        lines.append("| %s | %s | %s |" % (p["label"], fmt(p["first"]["requests"]["by_verb"]), fmt(p["rerun"]["requests"]["by_verb"])))
    info = report.get("gpu_node_info")
    if info:
        lines += [
            "",
            "`gpu_node_info` over %d simulated GPU nodes (%d nodes in the cluster), %d runs:" % (info["gpu_nodes"], info["cluster_nodes"], len(info["runs"])),
            "",
        ]
        lines += ["| Run | Seconds (process start to exit) | Requests sent (module) | Node LISTs seen by the API server |", "|---:|---:|---|---:|"]
        for i, run in enumerate(info["runs"], 1):
            lines.append(
                "| %d | %.2f | %s | %d |"
                % (i, run["seconds"], ", ".join("%s %d" % kv for kv in sorted((run["module_requests"] or {}).items())), run["server_lists"].get("nodes", 0))
            )
        lines += [
            "",
            "The module's pod list is one more request; the server's pod LIST counter also counts KWOK listing the pods of each node it starts to manage,"
            " so it is not shown.",
        ]
    queue = report.get("queue")
    if queue:
        lines += [
            "",
            "%d training jobs (%d pods x %d GPUs each, `topology: {preferred: rack}`) submitted to one team's Kueue queue (%d GPUs of"
            " quota: %d jobs' worth) in one `training_job` call, on %d simulated GPU nodes with Kueue's real controller:"
            % (queue["jobs"], queue["pods_per_job"], queue["gpus_per_pod"], queue["team_quota"], queue["admitted_expected"], queue["gpu_nodes"]),
            "",
            "| Submitted to settled (s) | Module run (s) | Admitted | Pods bound | Queued on quota | Module requests | API server requests (all clients) |",
            "|---:|---:|---:|---:|---:|---|---|",
            "| %.1f | %.1f | %d | %d | %d | %s | %s |"
            % (queue["seconds"], queue["module_seconds"], queue["admitted"], queue["bound"], queue["queued"], fmt(queue["module_requests"] or {}),
               fmt(queue["server_requests_by_verb"])),
            "",
            "Settled: every admitted job has all its pods bound to nodes and the rest wait on quota (no quota reserved; Kueue writes"
            " `QuotaReserved=False` on the one it tried last), with no pod. The server's requests include Kueue's, the scheduler's and"
            " KWOK's. Most requested resources: %s."
            % ", ".join("%s %d" % kv for kv in queue["server_requests_top_resources"].items()),
        ]
    site = report.get("site")
    if site:
        f, r, floor = site["first"], site["rerun"], site["floor"]
        lines += [
            "",
            "The whole embedded site (`site.yml` with `inventories/local`: platform charts through Helm and every workload role), on a"
            " control plane of its own, against the floor of knowing that nothing changed (one `kubectl apply --server-side"
            " --dry-run=server` of the %d objects the site's modules manage, plus one `helm get values` for each of its %d releases):"
            % (floor["objects"], floor["releases"]),
            "",
            "| Run | Seconds | Changed tasks | Requests | Writes | Reads | Discovery |",
            "|---|---:|---:|---:|---:|---:|---:|",
            "| first run | %.1f | %s | %d | %d | %d | %d |"
            % (f["seconds"], f["tasks_changed"], f["requests"]["total"], f["requests"]["writes"], f["requests"]["reads"], f["requests"]["discovery"]),
            "| no-op re-run | %.1f | %s | %d | %d | %d | %d |"
            % (r["seconds"], r["tasks_changed"], r["requests"]["total"], r["requests"]["writes"], r["requests"]["reads"], r["requests"]["discovery"]),
            "| floor: kubectl dry-run + helm get values | %.1f | | | | | |" % floor["seconds"],
            "",
            "Requests count the site's modules' kinds only (Helm's own reads of its release Secrets are not among them).",
        ]
    lines += ["", "Targets from the issue:", "", "| Target | Measured | Met |", "|---|---|---|"]
    for name, value, met in targets(report):
        lines.append("| %s | %s | %s |" % (name, value, "yes" if met else "**no**"))
    lines += ["", "Versions: " + ", ".join("%s %s" % kv for kv in sorted(report["versions"].items()) if kv[0] not in ("cpus",)) + "."]
    return "\n".join(lines)


def plot(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = report["phases"]
    labels = ["\n".join(textwrap.wrap(p["label"], 20, break_long_words=False)) for p in phases]
    fig, (ax_time, ax_req) = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.38
    xs = range(len(phases))
    for offset, run, color in ((-width / 2, "first", "#4477aa"), (width / 2, "rerun", "#ee7733")):
        values = [p[run]["seconds"] for p in phases]
        bars = ax_time.bar([x + offset for x in xs], values, width, label="first run" if run == "first" else "re-run", color=color)
        ax_time.bar_label(bars, fmt="%.1f", fontsize=8)
        values = [p[run]["requests_per_object"] for p in phases]
        bars = ax_req.bar([x + offset for x in xs], values, width, label="first run" if run == "first" else "re-run", color=color)
        ax_req.bar_label(bars, fmt="%.2f", fontsize=8)
    ax_time.set_yscale("log")
    ax_time.set_ylabel("wall time, seconds (log scale)")
    ax_time.set_title("Apply %d objects, then re-run" % phases[0]["objects"])
    ax_req.set_ylabel("API requests per object")
    ax_req.set_title("API server requests per object")
    for ax in (ax_time, ax_req):
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, fontsize=8)
        ax.legend(fontsize=8)
    info = report.get("gpu_node_info")
    note = (
        "  |  gpu_node_info over %d GPU nodes: %.2f s, %s list requests"
        % (
            info["gpu_nodes"],
            info["median_seconds"],
            (info["runs"][0]["module_requests"] or {}).get("GET", 0),
        )
        if info
        else ""
    )
    fig.suptitle("aiinfra.cluster benchmark, %d CPUs%s" % (report["versions"]["cpus"], note), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(report, out_dir):
    md_path = os.path.join(out_dir, "benchmark.md")
    block = "%s\n%s\n%s" % (START, markdown(report), END)
    if os.path.exists(md_path):
        with open(md_path) as handle:
            text = handle.read()
        if START in text and END in text:
            text = text[: text.index(START)] + block + text[text.index(END) + len(END) :]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    else:
        text = "# Benchmark\n\n" + block + "\n"
    with open(md_path, "w") as handle:
        handle.write(text)
    try:
        plot(report, os.path.join(out_dir, "benchmark.png"))
    except ImportError:
        print("report: matplotlib is not installed (pip install -r tools/benchmark/requirements.txt); no PNG written", file=sys.stderr)


def main(argv):
    results = argv[1] if len(argv) > 1 else os.path.join(HERE, "results.json")
    out_dir = argv[2] if len(argv) > 2 else os.path.join(os.path.dirname(os.path.dirname(HERE)), "docs")
    with open(results) as handle:
        write(json.load(handle), out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
