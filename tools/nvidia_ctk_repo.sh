#!/usr/bin/env bash
# Builds a local apt repository with the NVIDIA Container Toolkit built from source, for machines
# that cannot reach NVIDIA's package repository (the node-role Molecule scenario, air-gapped labs).
#
# The Go commands (nvidia-ctk, nvidia-container-runtime, nvidia-cdi-hook,
# nvidia-container-runtime-hook) come from the Go module proxy at the pinned tag and are packaged
# with dpkg-deb as nvidia-container-toolkit-base and nvidia-container-toolkit, laid out like
# NVIDIA's packages. libnvidia-container1 / libnvidia-container-tools are C libraries that are not
# on the module proxy, so this repository does not carry them (the package's dependency on them is
# dropped here; see the role README).
#
# Everything is cached under ~/.cache/aiinfra-cluster/nvidia-ctk/<version>/ (binaries and repo);
# a second run with the same version builds nothing. Prints the repository directory on stdout.
# Needs: go (>= the toolkit's go directive), gcc (cgo, for NVML bindings), dpkg-deb, dpkg-scanpackages.
set -euo pipefail
# shellcheck source=/dev/null
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/gobuild/lib.sh"
version="${NVIDIA_CTK_VERSION:-1.20.2}"
revision="${NVIDIA_CTK_DEB_REVISION:-1}"
module="github.com/NVIDIA/nvidia-container-toolkit"
cache="${AIINFRA_CACHE:-$HOME/.cache/aiinfra-cluster}/nvidia-ctk/$version"
bin="$cache/bin"
repo="$cache/repo"
arch="$(dpkg --print-architecture)"
debver="$version-$revision"
log() { echo "nvidia_ctk_repo: $*" >&2; }

if [ -s "$repo/Packages" ] && [ -s "$repo/nvidia-container-toolkit_${debver}_${arch}.deb" ]; then
  log "repository for $debver cached"
  echo "$repo"
  exit 0
fi

if ! command -v dpkg-scanpackages >/dev/null 2>&1; then
  log "installing dpkg-dev"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends dpkg-dev >&2
fi

cmds="nvidia-ctk nvidia-container-runtime nvidia-cdi-hook nvidia-container-runtime-hook"
need_build=0
for c in $cmds; do [ -x "$bin/$c" ] || need_build=1; done
if [ "$need_build" = 1 ]; then
  log "building $module v$version from the module proxy (about a minute)"
  mkdir -p "$bin"
  pkgs=()
  for c in $cmds; do pkgs+=("$module/cmd/$c@v$version"); done
  # cgo: the NVML bindings are C; the result links against the build host's glibc, so build on
  # the same Debian release as the nodes that install it.
  GOTOOLCHAIN=local CGO_ENABLED=1 GOFLAGS=-mod=mod GOBIN="$bin" go install -trimpath \
    -ldflags "-s -w -X $module/internal/info.version=$version" "${pkgs[@]}" 2> "$cache/build.log" \
    || { tail -n 30 "$cache/build.log" >&2; exit 1; }
fi

work="$(mktemp -d /tmp/aiinfra-ctk-deb.XXXXXX)"
trap 'rm -rf "$work"' EXIT
srcdir="$(GOFLAGS=-mod=mod module_dir "$module@v$version")"

package() {  # name, description, depends, files...
  local name="$1" desc="$2" depends="$3" root="$work/$1"
  shift 3
  mkdir -p "$root/DEBIAN" "$root/usr/bin"
  for f in "$@"; do install -m 0755 "$bin/$f" "$root/usr/bin/$f"; done
  {
    echo "Package: $name"
    echo "Version: $debver"
    echo "Architecture: $arch"
    echo "Maintainer: aiinfra.cluster test build <noreply@example.invalid>"
    [ -n "$depends" ] && echo "Depends: $depends"
    echo "Section: utils"
    echo "Priority: optional"
    echo "Homepage: https://github.com/NVIDIA/nvidia-container-toolkit"
    echo "Description: $desc"
    echo " Built from $module v$version (Go module proxy) by tools/nvidia_ctk_repo.sh."
  } > "$root/DEBIAN/control"
}

package nvidia-container-toolkit-base "NVIDIA Container Toolkit Base (local build)" "" \
  nvidia-ctk nvidia-container-runtime nvidia-cdi-hook
# The upstream unit files for CDI spec refresh, as NVIDIA's package ships them.
mkdir -p "$work/nvidia-container-toolkit-base/lib/systemd/system" "$work/nvidia-container-toolkit-base/etc/nvidia-container-toolkit"
install -m 0644 "$srcdir/deployments/systemd/nvidia-cdi-refresh.service" "$srcdir/deployments/systemd/nvidia-cdi-refresh.path" \
  "$work/nvidia-container-toolkit-base/lib/systemd/system/"
install -m 0644 "$srcdir/deployments/systemd/nvidia-cdi-refresh.env" "$work/nvidia-container-toolkit-base/etc/nvidia-container-toolkit/"
echo /etc/nvidia-container-toolkit/nvidia-cdi-refresh.env > "$work/nvidia-container-toolkit-base/DEBIAN/conffiles"
# Same postinst step as upstream: write/refresh the runtime's config.toml.
cat > "$work/nvidia-container-toolkit-base/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  mkdir -p /etc/nvidia-container-runtime
  /usr/bin/nvidia-ctk --quiet config --config-file=/etc/nvidia-container-runtime/config.toml --in-place
fi
exit 0
POSTINST
chmod 0755 "$work/nvidia-container-toolkit-base/DEBIAN/postinst"

package nvidia-container-toolkit "NVIDIA Container Toolkit (local build)" \
  "nvidia-container-toolkit-base (= $debver)" nvidia-container-runtime-hook

rm -rf "$repo.tmp"
mkdir -p "$repo.tmp"
for p in nvidia-container-toolkit-base nvidia-container-toolkit; do
  dpkg-deb --root-owner-group -Zxz --build "$work/$p" "$repo.tmp/${p}_${debver}_${arch}.deb" >&2
done
(cd "$repo.tmp" && dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null && gzip -9kn Packages)
rm -rf "$repo"
mv "$repo.tmp" "$repo"
log "repository at $repo ($(find "$repo" -name "*.deb" | wc -l) packages)"
echo "$repo"
