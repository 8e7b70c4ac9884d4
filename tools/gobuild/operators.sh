#!/usr/bin/env bash
# Builds the operators' own controllers from the Go module proxy into a cache outside the
# repository, one directory per operator keyed by its version: a second run builds nothing.
# Usage: operators.sh [--print-only] [OPERATOR...]   (default: every operator below)
# Prints the cache's operators directory on stdout; the launcher finds <name>-<version>/<binary> there.
#
# Each operator has a wrapper module here (tools/gobuild/<name>): the upstream go.mod and go.sum
# with only the module line changed plus one require of the upstream module, so upstream's
# replace/exclude blocks and dependency set are kept. `go install MODULE@VERSION` is not used:
# the proxy refuses the version list of several of these modules, which `go install` reads.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null
. "$here/versions.env"
# shellcheck source=/dev/null
. "$here/lib.sh"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
cache="${AIINFRA_CACHE:-$HOME/.cache/aiinfra-cluster}"
root="$cache/operators"
print_only=0
if [ "${1:-}" = "--print-only" ]; then print_only=1; shift; fi
log() { echo "build: $*" >&2; }

# name -> "module version main-packages..." (binary name = last path element of each package)
spec() {
  case "$1" in
    jobset)  echo "sigs.k8s.io/jobset $JOBSET_VERSION sigs.k8s.io/jobset" ;;
    kserve)  echo "github.com/kserve/kserve $KSERVE_VERSION github.com/kserve/kserve/cmd/manager" ;;
    trainer) echo "github.com/kubeflow/trainer/v2 $TRAINER_VERSION github.com/kubeflow/trainer/v2/cmd/trainer-controller-manager" ;;
    fluid)   echo "github.com/fluid-cloudnative/fluid $FLUID_VERSION github.com/fluid-cloudnative/fluid/cmd/dataset github.com/fluid-cloudnative/fluid/cmd/alluxio" ;;
    kueue)   echo "sigs.k8s.io/kueue $KUEUE_VERSION sigs.k8s.io/kueue/cmd/kueue" ;;
    *) echo "unknown operator: $1" >&2; return 1 ;;
  esac
}

build_one() {
  local name="$1" mod ver pkgs dir p missing=0 t0
  read -r mod ver pkgs <<<"$(spec "$name")"
  dir="$root/$name-$ver"
  for p in $pkgs; do [ -x "$dir/${p##*/}" ] || missing=1; done
  if [ "$missing" = 0 ]; then data_files "$name" "$mod" "$ver" "$dir"; return 0; fi
  # The wrapper module must pin the same version as versions.env (the cache key).
  if ! grep -qx "require $mod $ver" "$here/$name/go.mod"; then
    echo "tools/gobuild/$name/go.mod does not require $mod $ver (versions.env)" >&2; return 1
  fi
  log "$name $ver (cold: minutes on 2 cores)"
  t0=$SECONDS
  mkdir -p "$dir.tmp"
  # shellcheck disable=SC2086 # pkgs is a list of package paths
  (cd "$here/$name" && go build -trimpath -ldflags "-s -w" -o "$dir.tmp/" $pkgs)
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  log "$name $ver built in $((SECONDS - t0)) s"
  data_files "$name" "$mod" "$ver" "$dir"
}

# Fluid's Alluxio runtime controller installs its cache with helm from runtime charts (in the
# image they are under /charts): take them from the same module version (data files, not code).
data_files() {
  local name="$1" mod="$2" ver="$3" dir="$4" src
  [ "$name" = fluid ] && [ ! -d "$dir/charts" ] || return 0
  src="$(cd "$here/$name" && module_dir "$mod@$ver")"
  cp -r "$src/charts" "$dir/charts.tmp" && chmod -R u+w "$dir/charts.tmp"
  # The runtime charts depend on file://../library; the image's helm fork resolves that in place,
  # helm v3 wants it under charts/ (what `helm dependency build` would put there).
  local chart
  for chart in "$dir"/charts.tmp/*/; do
    if grep -q 'file://../library' "$chart/Chart.yaml" 2>/dev/null; then
      mkdir -p "$chart/charts" && cp -r "$dir/charts.tmp/library" "$chart/charts/library"
    fi
  done
  mv "$dir/charts.tmp" "$dir/charts"
}

names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(jobset kserve trainer fluid kueue)
if [ "$print_only" = 0 ]; then
  # Several launchers may start at once (`make test` runs tests with control planes of their own
  # beside the suite): one builds, the others wait and then find the binaries.
  mkdir -p "$root"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$root/.build.lock"
    flock 9
  fi
  for n in "${names[@]}"; do build_one "$n"; done
fi
echo "$root"
