#!/usr/bin/env bash
# Builds the local control plane's binaries from the Go module proxy into a cache outside the
# repository, keyed by version: a second run with the same versions builds nothing.
# Prints the bin directory on stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null
. "$here/versions.env"
# shellcheck source=/dev/null
. "$here/lib.sh"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
cache="${AIINFRA_CACHE:-$HOME/.cache/aiinfra-cluster}"
bin="$cache/bin/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-helm-$HELM_VERSION"
if [ "${1:-}" = "--print-only" ]; then echo "$bin"; exit 0; fi
mkdir -p "$bin"
# Two control planes may start at once (`make test` runs the node tier beside the suite): one
# builds, the other waits and then finds the binaries.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.build.lock"
  flock 9
fi
log() { echo "build: $*" >&2; }

build_kubernetes() {
  (cd "$here/kubernetes" && go build -trimpath -ldflags "$(kube_ldflags)" -o "$bin/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubectl)
}

build_etcd() {
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3)
}

build_kwok() {
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  # kwok >= 0.8 ships no built-in stages: take the upstream "fast" node/pod stages from the
  # same module version (data files, not code).
  local dir
  dir="$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")"
  mkdir -p "$bin/kwok-stages"
  cp "$dir/kustomize/stage/node/fast/node-initialize.yaml" \
     "$dir/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
     "$dir/kustomize/stage/pod/fast/pod-ready.yaml" \
     "$dir/kustomize/stage/pod/fast/pod-complete.yaml" \
     "$dir/kustomize/stage/pod/fast/pod-delete.yaml" "$bin/kwok-stages/"
  chmod 0644 "$bin/kwok-stages/"*.yaml
}

build_helm() {
  GOBIN="$bin" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

need() { for f in "$@"; do [ -x "$bin/$f" ] || return 0; done; return 1; }
if need etcd; then log "etcd $ETCD_VERSION"; build_etcd; fi
if need kube-apiserver kube-controller-manager kube-scheduler kubectl; then
  log "kubernetes $KUBERNETES_VERSION (cold: tens of minutes on 2 cores)"; build_kubernetes
fi
if need kwok || [ ! -d "$bin/kwok-stages" ]; then log "kwok $KWOK_VERSION"; build_kwok; fi
if need helm; then log "helm $HELM_VERSION"; build_helm; fi
echo "$bin"
