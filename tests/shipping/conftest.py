"""Fixtures of the shipping tests: the chart rendered with each switch flipped, and the kustomizations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.shipping.rendering import MANIFESTS, Manifest, helm_template, kustomize

#: Every switch of the chart flipped on its own; each variant's objects pass the same hardening checks.
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "watch-namespaces": {"watchNamespaces": ["marketing", "analytics"]},
    "webhooks-managed": {"webhooks": {"enabled": True, "certificate": "managed"}},
    "webhooks-cert-manager": {"webhooks": {"enabled": True, "certificate": "certManager"}},
    "service-monitor": {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}},
    "replicas-2": {"replicaCount": 2},
    "replicas-2-watch-namespaces": {"replicaCount": 2, "watchNamespaces": ["marketing"]},
    "extra-env": {"extraEnv": [{"name": "DESTINATIONS_VERBOSE", "value": "1"}]},
    "metrics-off": {"metrics": {"enabled": False}},
    "monitoring": {
        "metrics": {
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True},
            "grafanaDashboard": {"enabled": True},
        }
    },
    "external-service-account": {"serviceAccount": {"create": False, "name": "operator"}},
}


@pytest.fixture(scope="session")
def render_chart(
    helm_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., list[Manifest]]:
    """`render_chart(values)`: the chart's objects for these values (cached per values)."""
    cache: dict[str, list[Manifest]] = {}
    directory = tmp_path_factory.mktemp("chart-values")

    def render(values: dict[str, Any] | None = None) -> list[Manifest]:
        key = repr(values or {})
        if key not in cache:
            cache[key] = helm_template(helm_binary, values or {}, directory / f"values-{len(cache)}.json")
        return cache[key]

    return render


@pytest.fixture(scope="session")
def kustomize_base(kubectl_binary: Path) -> list[Manifest]:
    return kustomize(kubectl_binary, MANIFESTS)


@pytest.fixture(scope="session")
def kustomize_with_webhooks(kubectl_binary: Path) -> list[Manifest]:
    return kustomize(kubectl_binary, MANIFESTS / "overlays" / "webhooks")
