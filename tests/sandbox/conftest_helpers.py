"""Shared bits of the sandbox tests: the test CRD and object builders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.sandbox import SandboxApi, wait_until

DATA = Path(__file__).parent / "data"
WIDGETS = "/apis/sandbox.test/v1/namespaces/default/widgets"


def widget_crd() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load((DATA / "widgets.yaml").read_text())
    return crd


CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def create_widget_crd(sandbox_api: SandboxApi, crd: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create the widget CRD and wait, as a client must, until its resource is served.

    A real API server answers the POST before the CRD is `Established` and its collection is routed
    (a widget posted at once gets 404); the emulator is ready at once. Returns the CRD as it is then,
    with its conditions. Reference:
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#create-a-customresourcedefinition
    """
    crd = crd or widget_crd()
    created = sandbox_api.post(CRDS, crd)
    assert created.status_code == 201, created.text
    name = crd["metadata"]["name"]
    group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
    version = next(v["name"] for v in crd["spec"]["versions"] if v.get("served", True))
    collection = f"/apis/{group}/{version}/{plural}"

    def established() -> dict[str, Any] | None:
        current: dict[str, Any] = sandbox_api.get(f"{CRDS}/{name}").json()
        conditions = {c["type"]: c["status"] for c in (current.get("status") or {}).get("conditions") or []}
        if conditions.get("Established") != "True" or sandbox_api.get(collection).status_code != 200:
            return None
        return current

    result: dict[str, Any] = wait_until(established, timeout=30, message=f"CRD {name} to be served")
    return result


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
