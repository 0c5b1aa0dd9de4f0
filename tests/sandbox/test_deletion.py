"""Deletion: finalizers and deletionTimestamp, garbage collection through ownerReferences, namespaces.

Reference: https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/,
https://kubernetes.io/docs/concepts/architecture/garbage-collection/ and
https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/.
"""

from __future__ import annotations

from destinations.sandbox import Sandbox
from tests.fixtures.sandbox import SandboxApi, wait_until

from .conftest_helpers import WIDGETS, configmap, create_widget_crd, widget

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def _owned(name: str, owner: dict) -> dict:  # type: ignore[type-arg]
    body = configmap(name)
    body["metadata"]["ownerReferences"] = [
        {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
        }
    ]
    return body


def _wait_gone(sandbox_api: SandboxApi, path: str) -> None:
    """Garbage collection is asynchronous on both backends: wait for the 404."""
    wait_until(lambda: sandbox_api.get(path).status_code == 404, message=f"{path} to be collected")


def test_delete_with_finalizers_sets_deletion_timestamp_and_keeps_the_object(sandbox_api: SandboxApi) -> None:
    create_widget_crd(sandbox_api)
    body = widget("w")
    body["metadata"]["finalizers"] = ["sandbox.test/hold"]
    created = sandbox_api.post(WIDGETS, body).json()
    deleted = sandbox_api.delete(f"{WIDGETS}/w").json()
    meta = deleted["metadata"]
    assert meta["deletionTimestamp"] and meta["deletionGracePeriodSeconds"] == 0
    assert meta["generation"] == created["metadata"]["generation"] + 1
    assert sandbox_api.get(f"{WIDGETS}/w").status_code == 200
    assert sandbox_api.patch(f"{WIDGETS}/w", {"metadata": {"finalizers": None}}).status_code == 200
    assert sandbox_api.get(f"{WIDGETS}/w").status_code == 404


def test_finalizers_cannot_be_added_to_an_object_being_deleted(sandbox_api: SandboxApi) -> None:
    body = configmap("c")
    body["metadata"]["finalizers"] = ["a/b"]
    sandbox_api.post(CONFIGMAPS, body)
    sandbox_api.delete(f"{CONFIGMAPS}/c")
    response = sandbox_api.patch(f"{CONFIGMAPS}/c", {"metadata": {"finalizers": ["a/b", "c/d"]}})
    assert response.status_code == 422


def test_deleting_an_owner_deletes_its_dependents_in_the_background(
    sandbox: Sandbox, sandbox_api: SandboxApi
) -> None:
    owner = sandbox_api.post(CONFIGMAPS, configmap("owner")).json()
    sandbox_api.post(CONFIGMAPS, _owned("dependent", owner))
    sandbox_api.delete(f"{CONFIGMAPS}/owner")
    _wait_gone(sandbox_api, f"{CONFIGMAPS}/dependent")


def test_orphan_propagation_keeps_dependents_and_drops_the_reference(
    sandbox: Sandbox, sandbox_api: SandboxApi
) -> None:
    owner = sandbox_api.post(CONFIGMAPS, configmap("owner")).json()
    sandbox_api.post(CONFIGMAPS, _owned("dependent", owner))
    sandbox_api.delete(f"{CONFIGMAPS}/owner", {"propagationPolicy": "Orphan"})
    wait_until(
        lambda: "ownerReferences" not in sandbox_api.get(f"{CONFIGMAPS}/dependent").json()["metadata"],
        message="the garbage collector to orphan the dependent",
    )
    _wait_gone(sandbox_api, f"{CONFIGMAPS}/owner")
    assert sandbox_api.get(f"{CONFIGMAPS}/dependent").status_code == 200


def test_foreground_propagation_deletes_dependents_before_the_owner(
    sandbox: Sandbox, sandbox_api: SandboxApi
) -> None:
    owner = sandbox_api.post(CONFIGMAPS, configmap("owner")).json()
    sandbox_api.post(CONFIGMAPS, _owned("dependent", owner))
    response = sandbox_api.delete(f"{CONFIGMAPS}/owner", {"propagationPolicy": "Foreground"})
    assert "foregroundDeletion" in response.json()["metadata"]["finalizers"]
    _wait_gone(sandbox_api, f"{CONFIGMAPS}/owner")
    assert sandbox_api.get(f"{CONFIGMAPS}/dependent").status_code == 404


def test_a_dependent_of_a_missing_owner_is_collected(sandbox: Sandbox, sandbox_api: SandboxApi) -> None:
    ghost = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000000"},
    }
    sandbox_api.post(CONFIGMAPS, _owned("orphan", ghost))
    _wait_gone(sandbox_api, f"{CONFIGMAPS}/orphan")


def test_deleting_a_namespace_deletes_its_contents(sandbox: Sandbox, sandbox_api: SandboxApi) -> None:
    sandbox_api.post("/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    held = configmap("held")
    held["metadata"]["finalizers"] = ["a/b"]
    sandbox_api.post("/api/v1/namespaces/doomed/configmaps", held)
    sandbox_api.post("/api/v1/namespaces/doomed/configmaps", configmap("free"))
    deleted = sandbox_api.delete("/api/v1/namespaces/doomed").json()
    assert deleted["status"]["phase"] == "Terminating"
    refused = sandbox_api.post("/api/v1/namespaces/doomed/configmaps", configmap("late"))
    assert refused.status_code == 403
    wait_until(lambda: sandbox_api.get("/api/v1/namespaces/doomed/configmaps/free").status_code == 404)
    assert sandbox_api.get("/api/v1/namespaces/doomed").status_code == 200  # held by the finalizer of `held`
    sandbox_api.patch("/api/v1/namespaces/doomed/configmaps/held", {"metadata": {"finalizers": None}})
    wait_until(
        lambda: sandbox_api.get("/api/v1/namespaces/doomed").status_code == 404, message="namespace removal"
    )


def test_delete_collection_by_label(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(CONFIGMAPS, configmap("x", {"group": "g"}))
    sandbox_api.post(CONFIGMAPS, configmap("y", {"group": "g"}))
    sandbox_api.post(CONFIGMAPS, configmap("z"))
    assert sandbox_api.request("DELETE", CONFIGMAPS, params={"labelSelector": "group=g"}).status_code == 200
    remaining = [item["metadata"]["name"] for item in sandbox_api.get(CONFIGMAPS).json()["items"]]
    assert [name for name in remaining if name != "kube-root-ca.crt"] == ["z"]


def test_delete_with_a_wrong_uid_precondition_is_409(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(CONFIGMAPS, configmap("c"))
    response = sandbox_api.delete(f"{CONFIGMAPS}/c", {"preconditions": {"uid": "nope"}})
    assert response.status_code == 409
