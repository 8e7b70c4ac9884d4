#!/usr/bin/env bash
# A kind cluster on the offline node image (tools/kind/node_image.sh), with no network access
# beyond this machine:
#   tools/kind/cluster.sh up [NAME] [WORKERS]    # default aiinfra-kind, 4 workers (molecule/kind's shape)
#   tools/kind/cluster.sh down [NAME]            # the nodes, the kind network, what up left behind
# AIINFRA_KIND_GPU_NODES=N adds N simulated GPU nodes (tools/kind/gpu_nodes.py: KWOK on this machine,
# tainted nvidia.com/gpu=present:NoSchedule; the API server tolerates it for pods asking for GPUs).
# The kubeconfig is written to $AIINFRA_KIND_DIR (default /tmp/aiinfra-kind-NAME)/kubeconfig. Needs
# a Docker engine (tools/docker_up.sh).
# A local OCI registry (distribution, built here) runs beside the nodes as the container
# NAME-registry, published on 127.0.0.1:$AIINFRA_KIND_REGISTRY_PORT (default 5001): push to it with
# tools/kind/push_image.py, and pods pull localhost:PORT/... from it (each node's containerd maps
# that name to the container).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null
. "$here/versions.env"
command="${1:-}"
name="${2:-aiinfra-kind}"
workers="${3:-4}"
gpu_nodes="${AIINFRA_KIND_GPU_NODES:-0}"
state="${AIINFRA_KIND_DIR:-/tmp/aiinfra-kind-$name}"
port="${AIINFRA_KIND_REGISTRY_PORT:-5001}"
bin="$(bash "$here/build.sh" --print-only)"
kind="$bin/kind"
registry="$name-registry"
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
    # The label tells the kind nodes (real containers) from the simulated GPU nodes.
    printf -- '- role: control-plane\n  labels: {aiinfra.cluster/kind-node: "true"}\n'
    for _ in $(seq 1 "$workers"); do printf -- '- role: worker\n  labels: {aiinfra.cluster/kind-node: "true"}\n'; done
    # kubelet 1.37 refuses cgroup v1 unless told otherwise (kind still supports it).
    if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
      printf 'kubeadmConfigPatches:\n- |\n  kind: KubeletConfiguration\n  failCgroupV1: false\n'
    fi
    # GPU nodes are tainted, as many fleets do: a pod asking for nvidia.com/gpu gets the toleration
    # from this admission plugin, every other pod stays off them.
    printf 'kubeadmConfigPatchesJSON6902:\n- group: kubeadm.k8s.io\n  version: v1beta4\n  kind: ClusterConfiguration\n'
    printf '  patch: |\n    - op: add\n      path: /apiServer/extraArgs/-\n'
    printf '      value: {name: enable-admission-plugins, value: "NodeRestriction,ExtendedResourceToleration"}\n'
  } > "$state/kind.yaml"
  "$kind" create cluster --name "$name" --image "$image" --config "$state/kind.yaml" --kubeconfig "$state/kubeconfig" --wait 300s
  registry_up
  if [ "$gpu_nodes" -gt 0 ]; then
    python3 "$here/gpu_nodes.py" up --kubeconfig "$state/kubeconfig" --state-dir "$state" --nodes "$gpu_nodes"
  fi
  log "$name up in $((SECONDS - started)) s on $image; kubeconfig $state/kubeconfig; registry 127.0.0.1:$port"
}

registry_up() {
  local image="aiinfra.local/registry:$REGISTRY_VERSION"
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    local root
    root="$(mktemp -d)"
    mkdir -p "$root/etc/distribution" "$root/var/lib/registry"
    install -m0755 "$bin/registry" "$root/registry"
    printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n  delete:\n    enabled: true\nhttp:\n  addr: :5000\n' \
      > "$root/etc/distribution/config.yml"
    tar -C "$root" -c . | docker import --change 'ENTRYPOINT ["/registry", "serve", "/etc/distribution/config.yml"]' - "$image" >/dev/null
    rm -rf "$root"
  fi
  docker run -d --name "$registry" --network kind -p "127.0.0.1:$port:5000" "$image" >/dev/null
  local node
  for node in $("$kind" get nodes --name "$name"); do
    docker exec "$node" mkdir -p "/etc/containerd/certs.d/localhost:$port"
    printf '[host."http://%s:5000"]\n  capabilities = ["pull", "resolve"]\n' "$registry" \
      | docker exec -i "$node" cp /dev/stdin "/etc/containerd/certs.d/localhost:$port/hosts.toml"
  done
  for _ in $(seq 1 30); do
    curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && return 0
    sleep 1
  done
  log "the registry did not answer on 127.0.0.1:$port"; docker logs "$registry" >&2; exit 1
}

down() {
  if [ -e "$state/kwok.pid" ]; then python3 "$here/gpu_nodes.py" down --kubeconfig "$state/kubeconfig" --state-dir "$state" || true; fi
  docker rm -f "$registry" >/dev/null 2>&1 || true
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
