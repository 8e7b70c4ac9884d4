#!/bin/sh
# Adds the NVIDIA runtime to a container runtime's configuration with `nvidia-ctk runtime configure`
# and prints CHANGED when the configuration files differ afterwards (Ansible's changed_when).
# In "check" mode it configures copies in a temporary directory and leaves the node untouched.
# Usage: nvidia-ctk-configure.sh apply|check RUNTIME CONFIG DROP_IN|- [nvidia-ctk flags...]
set -eu
mode="$1" runtime="$2" config="$3" dropin="$4"
shift 4

digest() {
  for f in "$@"; do
    if [ -f "$f" ]; then sha256sum "$f"; else echo "absent $f"; fi
  done
}

if [ "$mode" = check ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  target="$config"
  if [ -f "$config" ]; then cp "$config" "$tmp/config"; fi
  set -- --config="$tmp/config" "$@"
  if [ "$dropin" != "-" ]; then
    target="$dropin"
    if [ -f "$dropin" ]; then cp "$dropin" "$tmp/dropin"; fi
    set -- --drop-in-config="$tmp/dropin" "$@"
  fi
  nvidia-ctk --quiet runtime configure --runtime="$runtime" "$@"
  result="$tmp/config"
  [ "$dropin" = "-" ] || result="$tmp/dropin"
  if [ -f "$result" ] && ! cmp -s "$result" "$target"; then echo CHANGED; fi
  if [ "$dropin" != "-" ] && [ "$runtime" = containerd ] && ! grep -qs "$(dirname "$dropin")" "$config"; then
    echo CHANGED
  fi
  exit 0
fi

files="$config"
if [ "$dropin" != "-" ]; then
  files="$config $dropin"
  set -- --drop-in-config="$dropin" "$@"
fi
# shellcheck disable=SC2086
before="$(digest $files)"
nvidia-ctk --quiet runtime configure --runtime="$runtime" --config="$config" "$@"
# shellcheck disable=SC2086
after="$(digest $files)"
if [ "$before" != "$after" ]; then echo CHANGED; fi
