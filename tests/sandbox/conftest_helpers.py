"""Shared bits of the sandbox tests: the test CRD and object builders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).parent / "data"
WIDGETS = "/apis/sandbox.test/v1/namespaces/default/widgets"


def widget_crd() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load((DATA / "widgets.yaml").read_text())
    return crd


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "sandbox.test/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"provider": "mailchimp", **spec},
    }


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data,
    }
