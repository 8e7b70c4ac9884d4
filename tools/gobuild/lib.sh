# shellcheck shell=bash
# The -ldflags a Kubernetes command is built with, so `--version` reports $KUBERNETES_VERSION as a
# release build does (sourced by tools/gobuild/build.sh and tools/kind/build.sh).
kube_ldflags() {
  local minor p ldf="-s -w"
  minor="$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$ldf"
}
