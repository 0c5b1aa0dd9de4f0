"""PATCH in its four content types: JSON merge, JSON patch, strategic merge and server-side apply.

Reference: https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
and https://kubernetes.io/docs/reference/using-api/server-side-apply/.
"""

from __future__ import annotations

from tests.fixtures.sandbox import SandboxApi

from .conftest_helpers import WIDGETS, configmap, widget, widget_crd

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def _deployment() -> dict:  # type: ignore[type-arg]
    return {
        "metadata": {"name": "d", "finalizers": ["a/one"]},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "x",
                            "env": [{"name": "A", "value": "1"}],
                            "ports": [{"containerPort": 80}],
                        },
                        {"name": "side", "image": "y"},
                    ]
                },
            },
        },
    }


def test_merge_patch_merges_maps_and_null_deletes(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(CONFIGMAPS, configmap("c", a="1", b="2"))
    patched = sandbox_api.patch(f"{CONFIGMAPS}/c", {"data": {"a": "9", "b": None, "c": "3"}}).json()
    assert patched["data"] == {"a": "9", "c": "3"}


def test_json_patch_applies_operations_in_order(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(CONFIGMAPS, configmap("c", a="1"))
    operations = [
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "add", "path": "/data/b", "value": "2"},
        {"op": "remove", "path": "/data/a"},
        {"op": "add", "path": "/metadata/labels", "value": {"x~y": "z"}},
    ]
    patched = sandbox_api.patch(f"{CONFIGMAPS}/c", operations, "application/json-patch+json").json()
    assert patched["data"] == {"b": "2"} and patched["metadata"]["labels"] == {"x~y": "z"}


def test_json_patch_with_a_failing_test_operation_is_422_and_changes_nothing(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(CONFIGMAPS, configmap("c", a="1"))
    operations = [
        {"op": "replace", "path": "/data/a", "value": "2"},
        {"op": "test", "path": "/data/a", "value": "1"},
    ]
    response = sandbox_api.patch(f"{CONFIGMAPS}/c", operations, "application/json-patch+json")
    assert response.status_code == 422
    assert sandbox_api.get(f"{CONFIGMAPS}/c").json()["data"] == {"a": "1"}


def test_strategic_merge_patch_merges_containers_by_name_and_env_by_name(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(DEPLOYMENTS, _deployment())
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "main", "image": "x2", "env": [{"name": "B", "value": "2"}]}]
                }
            }
        }
    }
    patched = sandbox_api.patch(f"{DEPLOYMENTS}/d", patch, "application/strategic-merge-patch+json").json()
    containers = patched["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["main", "side"]
    assert containers[0]["image"] == "x2"
    assert [e["name"] for e in containers[0]["env"]] == ["A", "B"]
    assert containers[0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_strategic_merge_patch_deletes_list_items_with_the_patch_directive(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(DEPLOYMENTS, _deployment())
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}}
    patched = sandbox_api.patch(f"{DEPLOYMENTS}/d", patch, "application/strategic-merge-patch+json").json()
    assert [c["name"] for c in patched["spec"]["template"]["spec"]["containers"]] == ["main"]


def test_strategic_merge_patch_merges_finalizers_as_a_set(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(DEPLOYMENTS, _deployment())
    patch = {"metadata": {"finalizers": ["a/two"]}}
    patched = sandbox_api.patch(f"{DEPLOYMENTS}/d", patch, "application/strategic-merge-patch+json").json()
    assert patched["metadata"]["finalizers"] == ["a/one", "a/two"]
    removal = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/one", "a/two"]}}
    sandbox_api.patch(f"{DEPLOYMENTS}/d", removal, "application/strategic-merge-patch+json")


def test_strategic_merge_patch_is_refused_for_custom_resources(sandbox_api: SandboxApi) -> None:
    sandbox_api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", widget_crd())
    sandbox_api.post(WIDGETS, widget("w"))
    response = sandbox_api.patch(
        f"{WIDGETS}/w", {"spec": {"size": 2}}, "application/strategic-merge-patch+json"
    )
    assert response.status_code == 415


def test_server_side_apply_creates_then_updates(sandbox_api: SandboxApi) -> None:
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: '1'\n"
    response = sandbox_api.request(
        "PATCH",
        f"{CONFIGMAPS}/applied",
        content=manifest,
        headers={"Content-Type": "application/apply-patch+yaml"},
        params={"fieldManager": "test"},
    )
    assert response.status_code in (200, 201) and response.json()["data"] == {"a": "1"}
    updated = sandbox_api.request(
        "PATCH",
        f"{CONFIGMAPS}/applied",
        content=manifest.replace("'1'", "'2'"),
        headers={"Content-Type": "application/apply-patch+yaml"},
        params={"fieldManager": "test"},
    )
    assert updated.json()["data"] == {"a": "2"}


def test_server_side_apply_requires_a_field_manager(sandbox_api: SandboxApi) -> None:
    response = sandbox_api.request(
        "PATCH",
        f"{CONFIGMAPS}/applied",
        content="data: {}",
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert response.status_code == 400
