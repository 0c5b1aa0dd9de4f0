#!/usr/bin/env bash
# Builds the kstatus check (see main.go) once per machine into a cache outside the clone, keyed by
# its sources, and prints the binary's path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
key=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -c1-12)
cache_root=${DESTINATIONS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/destinations}
target="$cache_root/kstatus-$key/kstatus"
if [ ! -x "$target" ]; then
  mkdir -p "$(dirname "$target")"
  (cd "$here" && go build -trimpath -ldflags "-s -w" -o "$target.tmp" .)
  mv "$target.tmp" "$target"
fi
echo "$target"
