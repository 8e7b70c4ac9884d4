#!/usr/bin/env bash
# Stops the dockerd started by tools/docker_up.sh, by the PID in its pid file (and nothing else).
# Containers of the node scenario are removed by `molecule destroy`; images stay cached.
set -euo pipefail
state="${AIINFRA_DOCKER_DIR:-/tmp/aiinfra-docker}"
pidfile="$state/dockerd.pid"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
if [ ! -s "$pidfile" ]; then
  echo "docker_down: no pid file at $pidfile, nothing to stop" >&2
  exit 0
fi
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
  $SUDO kill -TERM "$pid"
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "docker_down: dockerd (pid $pid) still running after 30 s" >&2
    exit 1
  fi
fi
rm -f "$pidfile"
echo "docker_down: dockerd (pid $pid) stopped" >&2
