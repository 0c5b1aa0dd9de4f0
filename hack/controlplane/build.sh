#!/usr/bin/env bash
# Builds the test bed's control plane (etcd, kube-apiserver, kube-controller-manager) from Go
# modules and prints the folder holding the binaries (the envtest convention: KUBEBUILDER_ASSETS).
#
# - KUBEBUILDER_ASSETS naming a folder with kube-apiserver and etcd (what `setup-envtest use`
#   gives) is used as it is; kube-controller-manager is taken from it when present, else built.
# - Otherwise the binaries are built once per machine into a cache outside the clone, keyed by the
#   versions and the go.sum files, so later runs (CI included) reuse them. Nothing is downloaded
#   but Go modules from the module proxy.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

module_version() {  # module_version <go.mod> <module>: the version the go.mod requires
  awk -v module="$2" '{ for (i = 1; i < NF; i++) if ($i == module) { print $(i + 1); exit } }' "$1"
}
kube_version=$(module_version "$here/kubernetes/go.mod" k8s.io/kubernetes)
etcd_version=$(module_version "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)
key=$(cat "$here/kubernetes/go.sum" "$here/etcd/go.sum" "$0" | sha256sum | cut -c1-12)
cache_root=${DESTINATIONS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/destinations}
target="$cache_root/control-plane/kubernetes-$kube_version-etcd-$etcd_version-$key"

log() { echo "build-control-plane: $*" >&2; }

build_kube() {  # build_kube <command> <output folder>
  local major minor rest
  major=${kube_version#v}; major=${major%%.*}
  rest=${kube_version#v"$major".}; minor=${rest%%.*}
  local flags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$here/kubernetes" && go build -trimpath -ldflags "-s -w$flags" -o "$2/$1" "k8s.io/kubernetes/cmd/$1")
}

build_etcd() {  # build_etcd <output folder>
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$1/etcd" go.etcd.io/etcd/server/v3)
}

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  if [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ]; then
    if [ -x "$KUBEBUILDER_ASSETS/kube-controller-manager" ]; then
      echo "$KUBEBUILDER_ASSETS"; exit 0
    fi
    # envtest's assets have no controller manager: complete them in the cache, next to links.
    target="$cache_root/control-plane/envtest-$(echo "$KUBEBUILDER_ASSETS" | sha256sum | cut -c1-12)"
    if [ ! -x "$target/kube-controller-manager" ]; then
      log "KUBEBUILDER_ASSETS has no kube-controller-manager; building it ($kube_version)"
      work=$(mktemp -d "$cache_root/.build-XXXXXX")
      build_kube kube-controller-manager "$work"
      ln -sf "$KUBEBUILDER_ASSETS/kube-apiserver" "$work/kube-apiserver"
      ln -sf "$KUBEBUILDER_ASSETS/etcd" "$work/etcd"
      mkdir -p "$(dirname "$target")"; rm -rf "$target"; mv "$work" "$target"
    fi
    echo "$target"; exit 0
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks kube-apiserver or etcd; building instead"
fi

if [ -x "$target/kube-apiserver" ] && [ -x "$target/kube-controller-manager" ] && [ -x "$target/etcd" ]; then
  echo "$target"; exit 0
fi
command -v go >/dev/null || { log "Go is needed to build the control plane (or set KUBEBUILDER_ASSETS)"; exit 1; }
mkdir -p "$cache_root/control-plane"
work=$(mktemp -d "$cache_root/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
log "building etcd $etcd_version and Kubernetes $kube_version into $target (once per machine)"
build_etcd "$work"
build_kube kube-apiserver "$work"
build_kube kube-controller-manager "$work"
rm -rf "$target"; mv "$work" "$target"; trap - EXIT
log "built in $(( $(date +%s) - start )) s"
echo "$target"
