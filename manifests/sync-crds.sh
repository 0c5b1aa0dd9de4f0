#!/usr/bin/env bash
# Copies the generated CRDs (crds/, from `destinations crds --write crds/`) into the places that ship
# them: the kustomize base and the Helm chart. tests/shipping fails while any copy differs.
set -euo pipefail
cd "$(dirname "$0")/.."
for target in manifests/base/crds helm/destinations-operator/crds; do
  rm -f "$target"/*.yaml
  cp crds/*.yaml "$target"/
done
echo "CRDs copied to manifests/base/crds and helm/destinations-operator/crds"
