#!/usr/bin/env bash
# Starts a Docker engine from Debian's docker.io package for the node-role Molecule scenario
# (the `docker` on PATH may be a bare client). Installs what the node tests need when missing,
# runs dockerd in the background with a pid file and a log file, and waits until it answers.
# Containers use host networking only, so dockerd is started without a bridge or iptables rules.
# Stop it with tools/docker_down.sh (by PID).
set -euo pipefail
state="${AIINFRA_DOCKER_DIR:-/tmp/aiinfra-docker}"
pidfile="$state/dockerd.pid"
log() { echo "docker_up: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v dpkg-scanpackages >/dev/null 2>&1 || missing+=(dpkg-dev)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

mkdir -p "$state"
if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  log "dockerd already running (pid $(cat "$pidfile"))"
else
  # overlay2 needs a filesystem that supports it; fall back to vfs where it does not.
  driver="${AIINFRA_DOCKER_STORAGE_DRIVER:-}"
  args=(--pidfile "$pidfile" --bridge=none --iptables=false --ip6tables=false)
  [ -n "$driver" ] && args+=(--storage-driver "$driver")
  log "starting dockerd (log: $state/dockerd.log)"
  # setsid: dockerd must not die with the shell that started it.
  $SUDO setsid dockerd "${args[@]}" >"$state/dockerd.log" 2>&1 < /dev/null &
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "dockerd ready (pid $(cat "$pidfile"))"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 60 s; last log lines:"
tail -n 20 "$state/dockerd.log" >&2
exit 1
