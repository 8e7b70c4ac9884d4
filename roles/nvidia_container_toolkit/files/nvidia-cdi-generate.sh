#!/bin/sh
# Generates the CDI specification for this node's GPUs and replaces OUTPUT only when it differs
# (prints CHANGED then). In "check" mode it only compares.
# Usage: nvidia-cdi-generate.sh apply|check OUTPUT
set -eu
mode="$1" output="$2"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
nvidia-ctk --quiet cdi generate --output="$tmp"
if cmp -s "$tmp" "$output"; then exit 0; fi
echo CHANGED
if [ "$mode" = apply ]; then
  mkdir -p "$(dirname "$output")"
  install -m 0644 "$tmp" "$output"
fi
