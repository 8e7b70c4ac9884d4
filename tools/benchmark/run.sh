#!/usr/bin/env bash
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
#
# The benchmark in one command: a private local control plane (4 simulated GPU nodes, grown to
# 1000 for gpu_node_info), the three ways of applying the workload, results in docs/benchmark.md
# and docs/benchmark.png, and the control plane brought down again whatever happens.
#
#   tools/benchmark/run.sh [run.py options, e.g. --skip collection_loop]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
STATE="${BENCH_STATE_DIR:-$(mktemp -d /tmp/aiinfra-bench.XXXXXX)}"

cd "$ROOT"
make -s collection
"$PY" -c "import kubernetes, matplotlib" 2>/dev/null || "$PY" -m pip install -q -r tools/benchmark/requirements.txt
GOBIN_DIR="$(bash tools/gobuild/build.sh --print-only)"
export PATH="$GOBIN_DIR:$PATH"
export AIINFRA_LOCAL_CLUSTER_DIR="$STATE" K8S_AUTH_KUBECONFIG="$STATE/kubeconfig"
trap '"$PY" tools/local_cluster.py down --state-dir "$STATE"' EXIT
# No operator controllers for the workload phases: the API server's request counters would count
# their requests on the workload's kinds too (the whole-site phase starts its own, with them).
"$PY" tools/local_cluster.py up --state-dir "$STATE" --no-operators
"$PY" tools/benchmark/run.py --state-dir "$STATE" "$@"
