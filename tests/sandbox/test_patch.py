"""PATCH in its four content types: JSON merge, JSON patch, strategic merge and server-side apply.

Reference: https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
and https://kubernetes.io/docs/reference/using-api/server-side-apply/.
"""

from __future__ import annotations

from tests.fixtures.sandbox import SandboxApi

from .conftest_helpers import WIDGETS, configmap, create_widget_crd, widget

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
        {"op": "add", "path": "/metadata/labels", "value": {"example.com/tier": "web"}},
        {"op": "replace", "path": "/metadata/labels/example.com~1tier", "value": "db"},
    ]
    patched = sandbox_api.patch(f"{CONFIGMAPS}/c", operations, "application/json-patch+json").json()
    assert patched["data"] == {"b": "2"} and patched["metadata"]["labels"] == {"example.com/tier": "db"}


def test_json_patch_replace_of_a_missing_key_adds_it(sandbox_api: SandboxApi) -> None:
    # evanphx/json-patch v4, which the API server uses, does not check the key exists (RFC 6902 would).
    sandbox_api.post(CONFIGMAPS, configmap("c", a="1"))
    operations = [{"op": "replace", "path": "/data/b", "value": "2"}]
    patched = sandbox_api.patch(f"{CONFIGMAPS}/c", operations, "application/json-patch+json").json()
    assert patched["data"] == {"a": "1", "b": "2"}


def test_json_patch_with_an_unknown_operation_is_422(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(CONFIGMAPS, configmap("c", a="1"))
    operations = [{"op": "frob", "path": "/data/a", "value": "2"}]
    response = sandbox_api.patch(f"{CONFIGMAPS}/c", operations, "application/json-patch+json")
    assert response.status_code == 422
    assert response.json()["message"] == "the server rejected our request due to an error in our request"


def test_json_patch_with_a_failing_test_operation_is_422_and_changes_nothing(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(CONFIGMAPS, configmap("c", a="1"))
    operations = [
        {"op": "replace", "path": "/data/a", "value": "2"},
        {"op": "test", "path": "/data/a", "value": "1"},
    ]
    response = sandbox_api.patch(f"{CONFIGMAPS}/c", operations, "application/json-patch+json")
    assert response.status_code == 422
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server rejected our request due to an error in our request",
        "reason": "Invalid",
        "details": {},
        "code": 422,
    }
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
    # The server's order: the patch's items first, then the items only the server had (a new env B
    # goes before A); main, patched, keeps its place before side.
    assert [c["name"] for c in containers] == ["main", "side"]
    assert containers[0]["image"] == "x2"
    assert [e["name"] for e in containers[0]["env"]] == ["B", "A"]
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
    assert patched["metadata"]["finalizers"] == ["a/two", "a/one"]
    removal = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/one", "a/two"]}}
    sandbox_api.patch(f"{DEPLOYMENTS}/d", removal, "application/strategic-merge-patch+json")


def test_strategic_merge_patch_is_refused_for_custom_resources(sandbox_api: SandboxApi) -> None:
    create_widget_crd(sandbox_api)
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
    assert response.status_code == 422
    assert response.json()["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
    )
    assert response.json()["details"]["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value: is required for apply patch",
            "field": "fieldManager",
        }
    ]


def test_strategic_merge_patch_orders_patch_items_before_server_only_ones_where_it_can(
    sandbox_api: SandboxApi,
) -> None:
    deployment = _deployment()
    deployment["spec"]["template"]["spec"]["containers"] = [
        {"name": name, "image": "x"} for name in ("a", "b", "c", "d")
    ]
    sandbox_api.post(DEPLOYMENTS, deployment)
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "z", "image": "q"},
                        {"name": "c", "image": "q"},
                        {"name": "a", "image": "q"},
                    ]
                }
            }
        }
    }
    patched = sandbox_api.patch(f"{DEPLOYMENTS}/d", patch, "application/strategic-merge-patch+json").json()
    assert [c["name"] for c in patched["spec"]["template"]["spec"]["containers"]] == ["z", "b", "c", "a", "d"]


def test_strategic_merge_patch_follows_set_element_order(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(DEPLOYMENTS, _deployment())
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "side"}, {"name": "extra"}, {"name": "main"}],
                    "containers": [{"name": "extra", "image": "e"}],
                }
            }
        }
    }
    patched = sandbox_api.patch(f"{DEPLOYMENTS}/d", patch, "application/strategic-merge-patch+json").json()
    containers = patched["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["side", "extra", "main"]
