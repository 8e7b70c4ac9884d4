#!/usr/bin/env bash
# A kind cluster on the offline node image (tools/kind/node_image.sh), with no network access
# beyond this machine:
#   tools/kind/cluster.sh up [NAME] [WORKERS]    # default aiinfra-kind, 4 workers (molecule/kind's shape)
#   tools/kind/cluster.sh down [NAME]            # the nodes, the kind network, what up left behind
# The kubeconfig is written to $AIINFRA_KIND_DIR (default /tmp/aiinfra-kind-NAME)/kubeconfig. Needs
# a Docker engine (tools/docker_up.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command="${1:-}"
name="${2:-aiinfra-kind}"
workers="${3:-4}"
state="${AIINFRA_KIND_DIR:-/tmp/aiinfra-kind-$name}"
kind="$(bash "$here/build.sh" --print-only)/kind"
log() { echo "kind-cluster: $*" >&2; }

up() {
  docker info >/dev/null 2>&1 || { log "no Docker engine answers; start one with tools/docker_up.sh"; exit 1; }
  if ! bash "$here/../docker_up.sh" --has-sys-resource && [ "$(docker info --format '{{.DefaultRuntime}}')" != capfix ]; then
    log "this machine lacks CAP_SYS_RESOURCE and dockerd does not run containers through runc-capfix: no kind node can start;"
    log "restart it with tools/docker_down.sh && tools/docker_up.sh"
    exit 1
  fi
  local image started=$SECONDS
  image="$(bash "$here/node_image.sh")"
  bash "$here/build.sh" >/dev/null
  mkdir -p "$state"
  # kind bind-mounts /lib/modules; on a host without it Docker creates it, and down removes it again.
  [ -e /lib/modules ] || touch "$state/created-lib-modules"
  docker network inspect kind >/dev/null 2>&1 || touch "$state/created-kind-network"
  {
    echo "kind: Cluster"
    echo "apiVersion: kind.x-k8s.io/v1alpha4"
    echo "nodes:"
    echo "- role: control-plane"
    for _ in $(seq 1 "$workers"); do echo "- role: worker"; done
    # kubelet 1.37 refuses cgroup v1 unless told otherwise (kind still supports it).
    if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
      printf 'kubeadmConfigPatches:\n- |\n  kind: KubeletConfiguration\n  failCgroupV1: false\n'
    fi
  } > "$state/kind.yaml"
  "$kind" create cluster --name "$name" --image "$image" --config "$state/kind.yaml" --kubeconfig "$state/kubeconfig" --wait 300s
  log "$name up in $((SECONDS - started)) s on $image; kubeconfig $state/kubeconfig"
}

down() {
  if [ -x "$kind" ]; then "$kind" delete cluster --name "$name" --kubeconfig "$state/kubeconfig" || true; fi
  if [ -e "$state/created-kind-network" ] && [ -z "$(docker network inspect kind --format '{{range .Containers}}{{.Name}} {{end}}' 2>/dev/null)" ]; then
    docker network rm kind >/dev/null 2>&1 || true
  fi
  if [ -e "$state/created-lib-modules" ]; then rmdir /lib/modules 2>/dev/null || true; fi
  rm -rf "$state"
}

case "$command" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down [NAME] [WORKERS]" >&2; exit 2 ;;
esac
