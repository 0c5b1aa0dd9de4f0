"""Object identity and optimistic concurrency.

Reference: https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions,
https://kubernetes.io/docs/concepts/overview/working-with-objects/names/ (generateName) and
https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/object-meta/ (generation, uid).
"""

from __future__ import annotations

from tests.fixtures.sandbox import SandboxApi, wait_until

from .conftest_helpers import WIDGETS, configmap, create_widget_crd, widget

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def test_created_objects_get_uid_creation_timestamp_and_resource_version(sandbox_api: SandboxApi) -> None:
    meta = sandbox_api.post(CONFIGMAPS, configmap("one", a="1")).json()["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and int(meta["resourceVersion"]) > 0


def test_resource_versions_increase_across_kinds(sandbox_api: SandboxApi) -> None:
    first = int(sandbox_api.post(CONFIGMAPS, configmap("one")).json()["metadata"]["resourceVersion"])
    secret = {"metadata": {"name": "s"}, "stringData": {"k": "v"}}
    second = int(
        sandbox_api.post("/api/v1/namespaces/default/secrets", secret).json()["metadata"]["resourceVersion"]
    )
    assert second > first


def test_create_of_an_existing_name_is_409_already_exists(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(CONFIGMAPS, configmap("one"))
    response = sandbox_api.post(CONFIGMAPS, configmap("one"))
    assert response.status_code == 409
    assert response.json()["reason"] == "AlreadyExists"
    assert response.json()["details"] == {"name": "one", "kind": "configmaps"}


def test_generate_name_appends_a_random_suffix(sandbox_api: SandboxApi) -> None:
    body = {"metadata": {"generateName": "run-"}, "data": {}}
    names = {sandbox_api.post(CONFIGMAPS, body).json()["metadata"]["name"] for _ in range(3)}
    assert len(names) == 3 and all(name.startswith("run-") and len(name) == 9 for name in names)


def test_update_with_a_stale_resource_version_is_409_conflict(sandbox_api: SandboxApi) -> None:
    created = sandbox_api.post(CONFIGMAPS, configmap("one", a="1")).json()
    stale = dict(created)
    sandbox_api.put(f"{CONFIGMAPS}/one", {**created, "data": {"a": "2"}})
    response = sandbox_api.put(f"{CONFIGMAPS}/one", {**stale, "data": {"a": "3"}})
    assert response.status_code == 409 and response.json()["reason"] == "Conflict"


def test_patch_with_a_stale_resource_version_is_409_conflict(sandbox_api: SandboxApi) -> None:
    created = sandbox_api.post(CONFIGMAPS, configmap("one", a="1")).json()
    sandbox_api.patch(f"{CONFIGMAPS}/one", {"data": {"a": "2"}})
    response = sandbox_api.patch(
        f"{CONFIGMAPS}/one",
        {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"a": "3"}},
    )
    assert response.status_code == 409


def test_a_no_op_update_keeps_the_resource_version(sandbox_api: SandboxApi) -> None:
    created = sandbox_api.post(CONFIGMAPS, configmap("one", a="1")).json()
    patched = sandbox_api.patch(f"{CONFIGMAPS}/one", {"data": {"a": "1"}}).json()
    assert patched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_custom_resource_generation_counts_spec_changes_only(sandbox_api: SandboxApi) -> None:
    create_widget_crd(sandbox_api)
    assert sandbox_api.post(WIDGETS, widget("w")).json()["metadata"]["generation"] == 1
    labelled = sandbox_api.patch(f"{WIDGETS}/w", {"metadata": {"labels": {"a": "b"}}}).json()
    assert labelled["metadata"]["generation"] == 1
    status = sandbox_api.patch(f"{WIDGETS}/w/status", {"status": {"message": "hi"}}).json()
    assert status["metadata"]["generation"] == 1
    assert sandbox_api.patch(f"{WIDGETS}/w", {"spec": {"size": 4}}).json()["metadata"]["generation"] == 2


def test_invalid_names_are_422_with_the_field(sandbox_api: SandboxApi) -> None:
    response = sandbox_api.post(CONFIGMAPS, configmap("Not_Valid"))
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "metadata.name"


def test_creating_in_a_missing_namespace_is_404(sandbox_api: SandboxApi) -> None:
    response = sandbox_api.post("/api/v1/namespaces/nowhere/configmaps", configmap("one"))
    assert response.status_code == 404
    assert response.json()["message"] == 'namespaces "nowhere" not found'


def test_get_of_a_missing_object_is_a_not_found_status(sandbox_api: SandboxApi) -> None:
    response = sandbox_api.get(f"{CONFIGMAPS}/missing")
    assert response.status_code == 404
    body = response.json()
    assert (
        body["kind"] == "Status"
        and body["reason"] == "NotFound"
        and body["message"] == 'configmaps "missing" not found'
    )


def test_secret_string_data_is_folded_into_data(sandbox_api: SandboxApi) -> None:
    secret = sandbox_api.post(
        "/api/v1/namespaces/default/secrets", {"metadata": {"name": "s"}, "stringData": {"k": "v"}}
    ).json()
    assert secret["data"] == {"k": "dg=="} and "stringData" not in secret and secret["type"] == "Opaque"


def test_new_namespaces_get_a_default_service_account(sandbox_api: SandboxApi) -> None:
    # On a real control plane kube-controller-manager creates it, a moment after the namespace.
    sandbox_api.post("/api/v1/namespaces", {"metadata": {"name": "team"}})
    wait_until(
        lambda: sandbox_api.get("/api/v1/namespaces/team/serviceaccounts/default").status_code == 200,
        message="the default service account",
    )


def test_new_namespaces_get_the_root_ca_configmap(sandbox_api: SandboxApi) -> None:
    sandbox_api.post("/api/v1/namespaces", {"metadata": {"name": "team"}})
    path = "/api/v1/namespaces/team/configmaps/kube-root-ca.crt"
    wait_until(lambda: sandbox_api.get(path).status_code == 200, message="kube-root-ca.crt")
    published = sandbox_api.get(path).json()
    assert list(published["data"]) == ["ca.crt"]
    assert published["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----\n")
    assert published["metadata"]["annotations"]["kubernetes.io/description"].startswith(
        "Contains a CA bundle that can be used to verify the kube-apiserver"
    )


def test_label_keys_and_values_and_annotation_keys_are_validated(sandbox_api: SandboxApi) -> None:
    body = {
        "metadata": {
            "name": "c",
            "labels": {"x~y": "z", "ok": "-bad-", "Ex_ample/a": "v"},
            "annotations": {"a" * 64: "any value"},
        }
    }
    response = sandbox_api.post("/api/v1/namespaces/default/configmaps", body)
    assert response.status_code == 422
    # Messages as kube-apiserver 1.36 words them (its order of map keys varies, so compare as a set).
    name_part = (
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
        "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation "
        "is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    )
    assert {(c["field"], c["message"]) for c in response.json()["details"]["causes"]} == {
        ("metadata.labels", f'Invalid value: "x~y": {name_part}'),
        (
            "metadata.labels",
            'Invalid value: "-bad-": a valid label must be an empty string or consist of alphanumeric '
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
            "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
            "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
        (
            "metadata.labels",
            'Invalid value: "Ex_ample/a": prefix part a lowercase RFC 1123 subdomain must consist of lower '
            "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        ("metadata.annotations", f'Invalid value: "{"a" * 64}": name part must be no more than 63 bytes'),
    }


def test_an_update_with_an_invalid_label_is_refused(sandbox_api: SandboxApi) -> None:
    sandbox_api.post("/api/v1/namespaces/default/configmaps", configmap("c"))
    response = sandbox_api.patch(
        "/api/v1/namespaces/default/configmaps/c", {"metadata": {"labels": {"a": "-"}}}
    )
    assert response.status_code == 422
    assert response.json()["message"].startswith(
        'ConfigMap "c" is invalid: metadata.labels: Invalid value: "-": a valid label must be an empty string'
    )
