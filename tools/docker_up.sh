#!/usr/bin/env bash
# Starts a Docker engine from Debian's docker.io package for the node-role Molecule scenario
# (the `docker` on PATH may be a bare client). Installs what the node tests need when missing,
# runs dockerd in the background with a pid file and a log file, and waits until it answers.
# Containers use host networking only, so dockerd is started without a bridge or iptables rules.
# Stop it with tools/docker_down.sh (by PID).
#
# Where runc cannot grant CAP_SYS_RESOURCE (it is not in this machine's capability bounding set),
# no privileged container could start; dockerd then runs every container through
# tools/kind/runc-capfix, which drops that one capability. `docker_up.sh --has-sys-resource`
# only answers whether the capability is there (exit 0) or not (exit 1).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
state="${AIINFRA_DOCKER_DIR:-/tmp/aiinfra-docker}"
pidfile="$state/dockerd.pid"
log() { echo "docker_up: $*" >&2; }

has_sys_resource() {
  local bounding
  bounding="$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)"
  (( (16#$bounding >> 24) & 1 ))
}
if [ "${1:-}" = "--has-sys-resource" ]; then has_sys_resource; exit; fi

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v dpkg-scanpackages >/dev/null 2>&1 || missing+=(dpkg-dev)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

mkdir -p "$state"
if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  log "dockerd already running (pid $(cat "$pidfile"))"
  if ! has_sys_resource && [ "$(docker info --format '{{.DefaultRuntime}}' 2>/dev/null)" != capfix ]; then
    log "it runs without runc-capfix, so no privileged container (a kind node) can start; restart it: tools/docker_down.sh && tools/docker_up.sh"
  fi
else
  # overlay2 needs a filesystem that supports it; fall back to vfs where it does not.
  driver="${AIINFRA_DOCKER_STORAGE_DRIVER:-}"
  args=(--pidfile "$pidfile" --bridge=none --iptables=false --ip6tables=false)
  [ -n "$driver" ] && args+=(--storage-driver "$driver")
  if ! has_sys_resource; then
    # A copy beside the pid file: dockerd may outlive the checkout that started it.
    install -m0755 "$here/kind/runc-capfix" "$state/runc-capfix"
    log "CAP_SYS_RESOURCE is not in this machine's bounding set: containers run through runc-capfix"
    args+=(--add-runtime "capfix=$state/runc-capfix" --default-runtime capfix)
  fi
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
