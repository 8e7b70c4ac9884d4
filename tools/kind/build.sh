#!/usr/bin/env bash
# Builds the binaries of the offline kind node image from the Go module proxy into a cache
# outside the repository, keyed by version (a second run with the same versions builds nothing),
# and prints that directory. Kubernetes' node commands come from the release the local control
# plane runs (tools/gobuild/versions.env); its control-plane binaries and etcd are reused from
# tools/gobuild/build.sh's cache.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null
. "$here/../gobuild/versions.env"
# shellcheck source=/dev/null
. "$here/versions.env"
# shellcheck source=/dev/null
. "$here/../gobuild/lib.sh"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
cache="${AIINFRA_CACHE:-$HOME/.cache/aiinfra-cluster}"
bin="$cache/kind/bin-k8s-$KUBERNETES_VERSION-kind-$KIND_VERSION-containerd-$CONTAINERD_VERSION-coredns-$COREDNS_VERSION-crictl-$CRI_TOOLS_VERSION-cni-$CNI_PLUGINS_VERSION-registry-$REGISTRY_VERSION"
if [ "${1:-}" = "--print-only" ]; then echo "$bin"; exit 0; fi
mkdir -p "$bin" "$bin/cni"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.kind-build.lock"
  flock 9
fi
log() { echo "kind-build: $*" >&2; }
need() { for f in "$@"; do [ -x "$bin/$f" ] || return 0; done; return 1; }

if need kind; then
  log "kind $KIND_VERSION"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@$KIND_VERSION"
fi
if need kubelet kubeadm kubectl kube-proxy; then
  log "kubelet, kubeadm, kubectl, kube-proxy $KUBERNETES_VERSION"
  (cd "$here/gomod/kubernetes-node" && go build -trimpath -ldflags "$(kube_ldflags)" -o "$bin/" \
      k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kube-proxy)
fi
if need containerd containerd-shim-runc-v2 ctr; then
  log "containerd $CONTAINERD_VERSION"
  (cd "$here/gomod/containerd" && go build -trimpath -tags no_btrfs \
      -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" -o "$bin/" \
      github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
      github.com/containerd/containerd/v2/cmd/ctr)
fi
if need coredns; then
  log "coredns $COREDNS_VERSION"
  (cd "$here/gomod/coredns" && go build -trimpath -ldflags "-s -w" -o "$bin/coredns" github.com/coredns/coredns)
fi
if need crictl; then
  log "crictl $CRI_TOOLS_VERSION"
  (cd "$here/gomod/cri-tools" && go build -trimpath -ldflags "-s -w" -o "$bin/crictl" sigs.k8s.io/cri-tools/cmd/crictl)
fi
if [ ! -x "$bin/cni/ptp" ]; then
  log "CNI plugins $CNI_PLUGINS_VERSION"
  (cd "$here/gomod/cni-plugins" && go build -trimpath -ldflags "-s -w" -o "$bin/cni/" \
      github.com/containernetworking/plugins/plugins/ipam/host-local github.com/containernetworking/plugins/plugins/main/loopback \
      github.com/containernetworking/plugins/plugins/main/ptp github.com/containernetworking/plugins/plugins/meta/portmap)
fi
if need registry; then
  log "registry (distribution) $REGISTRY_VERSION"
  (cd "$here/gomod/registry" && go build -trimpath -ldflags "-s -w" -o "$bin/registry" github.com/distribution/distribution/v3/cmd/registry)
fi
if need pause; then
  # The pod sandbox's pause: Kubernetes' own C source from the module, linked statically.
  log "pause $PAUSE_VERSION"
  src="$(module_dir "k8s.io/kubernetes@$KUBERNETES_VERSION")/build/pause/linux/pause.c"
  cc -static -Os -DVERSION="$PAUSE_VERSION" -o "$bin/pause.tmp" "$src"
  mv "$bin/pause.tmp" "$bin/pause"
fi
echo "$bin"
