#!/usr/bin/env bash
# Builds the stand-in container program (main.go here, standard library only: no network) into
# a cache outside the repository keyed by main.go's content, only when it is missing, and prints
# the binary's path. The directory may be given as $1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
sum="$(sha256sum "$here/main.go" | cut -c1-12)"
dir="${1:-${AIINFRA_CACHE:-$HOME/.cache/aiinfra-cluster}/kind/standin-$sum}"
mkdir -p -- "$dir"
dir="$(cd -- "$dir" && pwd)" # absolute: go build runs in $here
out="$dir/standin"
if [ ! -x "$out" ]; then
  echo "standin-build: $out" >&2
  # Built beside the target and renamed, so that a concurrent or interrupted build leaves no
  # half-written binary for the next run to take as done.
  tmp="$(mktemp -- "$dir/.standin.XXXXXX")"
  trap 'rm -f "$tmp"' EXIT
  (cd "$here" && go build -trimpath -ldflags '-s -w' -o "$tmp" .) >&2
  chmod 0755 "$tmp"
  mv -f "$tmp" "$out"
fi
echo "$out"
