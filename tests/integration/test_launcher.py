"""tools/local_cluster.py: up is idempotent, status reports, down stops what up started."""

import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCHER = [sys.executable, os.path.join(ROOT, "tools", "local_cluster.py")]


def launch(state_dir, *args):
    return subprocess.run(LAUNCHER + list(args) + ["--state-dir", str(state_dir)], capture_output=True, text=True, timeout=600, check=False)


def alive(pid):
    """Running and not a zombie (stopped children of an exited launcher may await reaping)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_up_twice_status_down(tmp_path):
    state_dir = tmp_path / "lc"
    args = ["--gpu-nodes", "2", "--gpus-per-node", "4", "--gpu-product", "NVIDIA-L40S", "--cpu-nodes", "0", "--crds-dir", "", "--no-operators"]
    try:
        first = launch(state_dir, "up", *args)
        assert first.returncode == 0, first.stderr
        pids = [p["pid"] for p in json.loads((state_dir / "state.json").read_text())["processes"]]
        assert len(pids) == 5 and all(alive(p) for p in pids)

        status = launch(state_dir, "status")
        assert status.returncode == 0 and "nodes 2, GPUs 8" in status.stdout, status.stdout

        second = launch(state_dir, "up", *args)
        assert second.returncode == 0 and "already running" in second.stderr and "0 created" in second.stderr
        assert [p["pid"] for p in json.loads((state_dir / "state.json").read_text())["processes"]] == pids
    finally:
        down = launch(state_dir, "down")
    assert down.returncode == 0
    deadline = time.time() + 10  # a killed process can take a moment to leave the process table
    while any(alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids), [open("/proc/%d/stat" % p).read() for p in pids if alive(p)]
    assert not state_dir.exists()
    assert launch(state_dir, "status").returncode == 1


@pytest.mark.upstream
def test_operators_start_report_and_stop(tmp_path):
    state_dir = tmp_path / "lc"
    base = ["--gpu-nodes", "1", "--gpus-per-node", "1", "--cpu-nodes", "0"]
    # Without the CRDs KServe's manager exits: `up` fails, naming the controller and its log.
    failed = launch(state_dir, "up", *base, "--crds-dir", "", "--operators", "kserve")
    assert failed.returncode == 1, failed.stderr
    assert "controller kserve did not become healthy (log %s)" % (state_dir / "logs" / "kserve.log") in failed.stderr, failed.stderr[-3000:]
    assert not (state_dir / "state.json").exists()

    pids = []
    try:
        up = launch(state_dir, "up", *base, "--operators", "jobset")
        assert up.returncode == 0, up.stderr[-3000:]
        assert "controller jobset healthy" in up.stderr
        procs = json.loads((state_dir / "state.json").read_text())["processes"]
        jobset = [p for p in procs if p.get("operator")]
        assert [p["name"] for p in jobset] == ["jobset"] and alive(jobset[0]["pid"])
        pids = [p["pid"] for p in procs]
        webhooks = json.loads((state_dir / "webhooks.json").read_text())
        assert list(webhooks["servers"]) == ["jobset-webhook-service"] and webhooks["servers"]["jobset-webhook-service"].startswith("https://127.0.0.1:")
        status = launch(state_dir, "status")
        line = [ln for ln in status.stdout.splitlines() if ln.startswith("jobset ")][0]
        assert "pid %d" % jobset[0]["pid"] in line and "running" in line and jobset[0]["log"] in line, status.stdout
        # --no-operators on the running cluster stops the controllers, keeps the control plane.
        bare = launch(state_dir, "up", *base, "--no-operators")
        assert bare.returncode == 0 and "already running" in bare.stderr, bare.stderr[-3000:]
        assert not alive(jobset[0]["pid"]) and not (state_dir / "webhooks.json").exists()
    finally:
        launch(state_dir, "down")
    assert not any(alive(p) for p in pids)
