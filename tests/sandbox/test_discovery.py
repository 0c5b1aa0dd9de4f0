"""Discovery, /version and OpenAPI, as kubectl uses them to map kinds to URLs and to validate.

Reference: https://kubernetes.io/docs/concepts/overview/kubernetes-api/ (discovery API, OpenAPI v3)
and https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation.
"""

from __future__ import annotations

from tests.fixtures.sandbox import SandboxApi, wait_until

from .conftest_helpers import WIDGETS, create_widget_crd, widget


def _names(resource_list: dict) -> set[str]:  # type: ignore[type-arg]
    return {resource["name"] for resource in resource_list["resources"]}


def test_core_group_lists_the_built_in_resources_and_subresources(sandbox_api: SandboxApi) -> None:
    assert sandbox_api.get("/api").json()["versions"] == ["v1"]
    names = _names(sandbox_api.get("/api/v1").json())
    assert {
        "namespaces",
        "pods",
        "pods/log",
        "pods/status",
        "secrets",
        "configmaps",
        "events",
        "serviceaccounts",
        "services",
    } <= names


def test_named_groups_are_listed_with_their_preferred_version(sandbox_api: SandboxApi) -> None:
    groups = {group["name"]: group for group in sandbox_api.get("/apis").json()["groups"]}
    for name in (
        "apps",
        "coordination.k8s.io",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "admissionregistration.k8s.io",
        "events.k8s.io",
    ):
        assert groups[name]["preferredVersion"]["version"] == "v1"
    assert "deployments" in _names(sandbox_api.get("/apis/apps/v1").json())
    assert "leases" in _names(sandbox_api.get("/apis/coordination.k8s.io/v1").json())
    assert {"roles", "rolebindings", "clusterroles", "clusterrolebindings"} <= _names(
        sandbox_api.get("/apis/rbac.authorization.k8s.io/v1").json()
    )
    assert {"validatingwebhookconfigurations", "mutatingwebhookconfigurations"} <= _names(
        sandbox_api.get("/apis/admissionregistration.k8s.io/v1").json()
    )


def test_a_crd_created_through_the_api_is_established_and_discoverable(sandbox_api: SandboxApi) -> None:
    created = create_widget_crd(sandbox_api)
    conditions = {c["type"]: c["status"] for c in created["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert "sandbox.test" in {group["name"] for group in sandbox_api.get("/apis").json()["groups"]}
    widgets = next(
        r for r in sandbox_api.get("/apis/sandbox.test/v1").json()["resources"] if r["name"] == "widgets"
    )
    assert (
        widgets["shortNames"] == ["wd"] and widgets["categories"] == ["sandboxtest"] and widgets["namespaced"]
    )
    assert "widgets/status" in _names(sandbox_api.get("/apis/sandbox.test/v1").json())


def test_deleting_a_crd_stops_serving_its_resource(sandbox_api: SandboxApi) -> None:
    create_widget_crd(sandbox_api)
    assert sandbox_api.post(WIDGETS, widget("w")).status_code == 201
    response = sandbox_api.delete(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.sandbox.test"
    )
    # The answer is the CRD, terminating: held by the cleanup finalizer until its widgets are gone.
    assert response.status_code == 200
    deleted = response.json()
    assert deleted["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]
    assert deleted["metadata"]["deletionTimestamp"]
    terminating = next(c for c in deleted["status"]["conditions"] if c["type"] == "Terminating")
    assert (terminating["status"], terminating["reason"]) == ("True", "InstanceDeletionPending")
    wait_until(
        lambda: (
            sandbox_api.get("/apis/sandbox.test/v1").status_code == 404
            and sandbox_api.get(WIDGETS).status_code == 404
            and sandbox_api.get(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.sandbox.test"
            ).status_code
            == 404
        ),
        message="the CRD and its resource to go",
    )
    create_widget_crd(sandbox_api)
    assert sandbox_api.get(WIDGETS).json()["items"] == []


def test_the_repository_crds_are_installed_at_start_up(sandbox_api: SandboxApi, repo_root) -> None:  # type: ignore[no-untyped-def]
    expected = {path.name.removesuffix(".yaml") for path in (repo_root / "crds").glob("*.yaml")}
    installed = {
        crd["metadata"]["name"]
        for crd in sandbox_api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").json()["items"]
    }
    assert expected <= installed


def test_version_reports_a_kubernetes_version(sandbox_api: SandboxApi) -> None:
    version = sandbox_api.get("/version").json()
    assert version["major"] == "1" and version["gitVersion"].startswith("v1.")


def test_openapi_v3_advertises_server_side_field_validation(sandbox_api: SandboxApi) -> None:
    root = sandbox_api.get("/openapi/v3").json()["paths"]
    assert "api/v1" in root and "apis/apps/v1" in root
    document = sandbox_api.get(root["api/v1"]["serverRelativeURL"]).json()
    patch = document["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "ConfigMap"
    assert "fieldValidation" in {parameter["name"] for parameter in patch["parameters"]}


def test_requests_without_a_valid_token_are_unauthorized(sandbox_api: SandboxApi) -> None:
    response = sandbox_api.client.get("/api/v1/namespaces", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.json()["reason"] == "Unauthorized"
