# shellcheck shell=bash
# Helpers of the build scripts that fetch from the Go module proxy (sourced by tools/gobuild/build.sh,
# tools/gobuild/operators.sh, tools/kind/build.sh, tools/kind/node_image.sh, tools/nvidia_ctk_repo.sh).

# The -ldflags a Kubernetes command is built with, so `--version` reports $KUBERNETES_VERSION as a
# release build does.
kube_ldflags() {
  local minor p ldf="-s -w"
  minor="$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$ldf"
}

# The directory of MODULE@VERSION in the module cache (downloaded when missing): for the data
# files and sources a build takes from a module rather than compiles.
module_dir() {
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}
