"""The status subresource splits writes: the main resource ignores status, /status changes only status.

Reference: https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource
"""

from __future__ import annotations

import pytest

from tests.fixtures.sandbox import SandboxApi

from .conftest_helpers import WIDGETS, create_widget_crd, widget


@pytest.fixture(autouse=True)
def _widgets(sandbox_api: SandboxApi) -> None:
    create_widget_crd(sandbox_api)


def test_status_sent_on_create_is_dropped(sandbox_api: SandboxApi) -> None:
    created = sandbox_api.post(WIDGETS, {**widget("w"), "status": {"message": "forged"}}).json()
    assert "status" not in created


def test_writes_to_the_main_resource_ignore_status(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(WIDGETS, widget("w"))
    sandbox_api.patch(f"{WIDGETS}/w/status", {"status": {"message": "real"}})
    patched = sandbox_api.patch(f"{WIDGETS}/w", {"spec": {"size": 5}, "status": {"message": "forged"}}).json()
    assert patched["status"]["message"] == "real" and patched["spec"]["size"] == 5


def test_writes_to_status_change_only_status(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(WIDGETS, widget("w"))
    current = sandbox_api.get(f"{WIDGETS}/w").json()
    body = {
        **current,
        "spec": {"provider": "facebook"},
        "metadata": {**current["metadata"], "labels": {"x": "y"}},
    }
    body["status"] = {"message": "done"}
    updated = sandbox_api.put(f"{WIDGETS}/w/status", body).json()
    assert updated["status"] == {"message": "done"}
    assert updated["spec"]["provider"] == "mailchimp" and "labels" not in updated["metadata"]


def test_pod_status_is_a_subresource_too(sandbox_api: SandboxApi) -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "other"}]}}
    created = sandbox_api.post("/api/v1/namespaces/default/pods", pod).json()
    assert created["status"]["phase"] == "Pending"
    assert sandbox_api.get("/api/v1/namespaces/default/pods/p/status").json()["metadata"]["name"] == "p"
