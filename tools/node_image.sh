#!/usr/bin/env bash
# Builds the local Debian 12 image for the node-role Molecule scenario without any registry:
# debootstrap (minbase + what Ansible needs) from Debian's archive, then `docker import`.
# The root filesystem tarball is cached under ~/.cache/aiinfra-cluster/images; the image is only
# rebuilt when Docker does not have it. Needs a running dockerd (tools/docker_up.sh).
set -euo pipefail
image="${AIINFRA_NODE_IMAGE:-aiinfra-node:bookworm}"
suite="${AIINFRA_NODE_SUITE:-bookworm}"
mirror="${AIINFRA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${AIINFRA_CACHE:-$HOME/.cache/aiinfra-cluster}/images"
tarball="$cache/debian-$suite-minbase.tar"
log() { echo "node_image: $*" >&2; }
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

if docker image inspect "$image" >/dev/null 2>&1; then
  log "$image present"
  exit 0
fi
mkdir -p "$cache"
if [ ! -s "$tarball" ]; then
  rootfs="$(mktemp -d /tmp/aiinfra-rootfs.XXXXXX)"
  trap '$SUDO rm -rf "$rootfs"' EXIT
  log "debootstrap $suite from $mirror (about a minute)"
  $SUDO debootstrap --variant=minbase --include=python3,python3-apt,sudo,ca-certificates \
    "$suite" "$rootfs" "$mirror" >&2
  # Keep the image small; apt lists are fetched again by the roles.
  $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  # An old mtime on the empty lists makes apt's cache_valid_time logic fetch them on first use.
  $SUDO touch -d @0 "$rootfs"/var/lib/apt/lists
  $SUDO tar -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
log "importing $tarball as $image"
docker import --change 'CMD ["sleep", "infinity"]' "$tarball" "$image" >/dev/null
log "$image ready"
