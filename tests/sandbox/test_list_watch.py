"""List and watch: selectors, paging, resuming watches, 410 Gone and bookmarks.

Reference: https://kubernetes.io/docs/reference/using-api/api-concepts/ (efficient detection of changes,
watch bookmarks, retrieving large results sets in chunks), https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/
and https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/.
"""

from __future__ import annotations

import pytest

from destinations.sandbox import Sandbox, SandboxConfig
from tests.fixtures.sandbox import SandboxApi

from .conftest_helpers import configmap

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def _names(response: object) -> list[str]:
    """The listed names, less `kube-root-ca.crt`: every namespace has it, but on a real control plane
    only once kube-controller-manager got to it, so a test's own objects are what it compares."""
    items = response.json()["items"]  # type: ignore[attr-defined]
    return [item["metadata"]["name"] for item in items if item["metadata"]["name"] != "kube-root-ca.crt"]


@pytest.fixture
def labelled(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(CONFIGMAPS, configmap("a", {"tier": "web", "env": "prod"}))
    sandbox_api.post(CONFIGMAPS, configmap("b", {"tier": "db", "env": "prod"}))
    sandbox_api.post(CONFIGMAPS, configmap("c", {"tier": "web"}))


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["a", "c"]),
        ("tier==web", ["a", "c"]),
        ("tier!=web", ["b"]),
        ("tier in (web,db),env=prod", ["a", "b"]),
        ("tier notin (web)", ["b"]),
        ("env", ["a", "b"]),
        ("!env", ["c"]),
    ],
)
def test_label_selectors(sandbox_api: SandboxApi, labelled: None, selector: str, expected: list[str]) -> None:
    names = _names(sandbox_api.get(CONFIGMAPS, params={"labelSelector": selector}))
    assert names == expected


def test_field_selectors_on_name_and_namespace(sandbox_api: SandboxApi, labelled: None) -> None:
    assert _names(sandbox_api.get(CONFIGMAPS, params={"fieldSelector": "metadata.name=b"})) == ["b"]
    assert _names(sandbox_api.get(CONFIGMAPS, params={"fieldSelector": "metadata.name!=b"})) == ["a", "c"]
    listed = sandbox_api.get("/api/v1/configmaps", params={"fieldSelector": "metadata.namespace=default"})
    assert _names(listed) == ["a", "b", "c"]


def test_unknown_field_selectors_are_refused_as_the_server_words_it_per_kind(sandbox_api: SandboxApi) -> None:
    generic = sandbox_api.get(CONFIGMAPS, params={"fieldSelector": "data.a=1"})
    assert generic.status_code == 400
    assert generic.json()["message"] == (
        '"data.a" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )
    # Pods convert their own field labels (spec.nodeName, status.phase...), with their own wording.
    pods = sandbox_api.get("/api/v1/namespaces/default/pods", params={"fieldSelector": "spec.image=x"})
    assert (pods.status_code, pods.json()["message"]) == (400, "field label not supported: spec.image")


def test_event_field_selectors_on_the_involved_object(sandbox_api: SandboxApi) -> None:
    for name, kind in (("e1", "Pod"), ("e2", "Widget")):
        event = {
            "metadata": {"name": name},
            "involvedObject": {"kind": kind, "name": "x", "namespace": "default", "uid": name},
        }
        sandbox_api.post("/api/v1/namespaces/default/events", {**event, "reason": "R", "message": "m"})
    selector = "involvedObject.kind=Widget,involvedObject.name=x,involvedObject.namespace=default"
    assert _names(
        sandbox_api.get("/api/v1/namespaces/default/events", params={"fieldSelector": selector})
    ) == ["e2"]


def test_unsupported_field_selectors_are_400(sandbox_api: SandboxApi) -> None:
    assert sandbox_api.get(CONFIGMAPS, params={"fieldSelector": "spec.nothing=1"}).status_code == 400


def test_cross_namespace_list(sandbox_api: SandboxApi) -> None:
    sandbox_api.post("/api/v1/namespaces", {"metadata": {"name": "other"}})
    sandbox_api.post(CONFIGMAPS, configmap("here"))
    sandbox_api.post("/api/v1/namespaces/other/configmaps", configmap("there"))
    assert {"here", "there"} <= set(_names(sandbox_api.get("/api/v1/configmaps")))


def test_limit_and_continue_page_through_a_list(sandbox_api: SandboxApi) -> None:
    for index in range(5):
        sandbox_api.post(CONFIGMAPS, configmap(f"page-{index}", {"paged": "yes"}))
    seen: list[str] = []
    token = ""
    while True:
        params = {"limit": "2", "labelSelector": "paged=yes", **({"continue": token} if token else {})}
        body = sandbox_api.get(CONFIGMAPS, params=params).json()
        seen += [item["metadata"]["name"] for item in body["items"]]
        token = body["metadata"].get("continue", "")
        if not token:
            break
    assert seen == [f"page-{index}" for index in range(5)]


def test_watch_from_a_resource_version_replays_later_changes(sandbox_api: SandboxApi) -> None:
    version = sandbox_api.post(CONFIGMAPS, configmap("w", a="1")).json()["metadata"]["resourceVersion"]
    sandbox_api.patch(f"{CONFIGMAPS}/w", {"data": {"a": "2"}})
    sandbox_api.delete(f"{CONFIGMAPS}/w")
    events = list(sandbox_api.watch(CONFIGMAPS, resourceVersion=version, timeoutSeconds="1"))
    assert [(event["type"], event["object"]["metadata"]["name"]) for event in events] == [
        ("MODIFIED", "w"),
        ("DELETED", "w"),
    ]


def test_watch_without_a_resource_version_starts_with_the_current_objects(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(CONFIGMAPS, configmap("w"))
    stream = sandbox_api.watch(CONFIGMAPS, fieldSelector="metadata.name=w")
    first = next(stream)
    assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "w"
    sandbox_api.patch(f"{CONFIGMAPS}/w", {"data": {"x": "y"}})
    assert next(stream)["type"] == "MODIFIED"
    stream.close()


def test_a_label_change_moves_objects_in_and_out_of_a_watched_selection(sandbox_api: SandboxApi) -> None:
    version = sandbox_api.post(CONFIGMAPS, configmap("w", {"on": "no"})).json()["metadata"]["resourceVersion"]
    sandbox_api.patch(f"{CONFIGMAPS}/w", {"metadata": {"labels": {"on": "yes"}}})
    sandbox_api.patch(f"{CONFIGMAPS}/w", {"metadata": {"labels": {"on": "no"}}})
    events = list(
        sandbox_api.watch(CONFIGMAPS, resourceVersion=version, labelSelector="on=yes", timeoutSeconds="1")
    )
    assert [event["type"] for event in events] == ["ADDED", "DELETED"]


def test_watch_from_a_compacted_resource_version_gets_410_gone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = SandboxConfig(
        history_size=3, kubelet=False, install_repo_crds=False, kubeconfig_path=tmp_path / "kc"
    )
    with Sandbox(config) as small:
        api = SandboxApi(small)
        first = api.post(CONFIGMAPS, configmap("w", n="0")).json()["metadata"]["resourceVersion"]
        for index in range(1, 6):
            api.patch(f"{CONFIGMAPS}/w", {"data": {"n": str(index)}})
        events = list(api.watch(CONFIGMAPS, resourceVersion=first, timeoutSeconds="1"))
        assert events[0]["type"] == "ERROR"
        assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
        api.close()


def test_an_expired_continue_token_gets_410(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = SandboxConfig(
        history_size=3, kubelet=False, install_repo_crds=False, kubeconfig_path=tmp_path / "kc"
    )
    with Sandbox(config) as small:
        api = SandboxApi(small)
        for index in range(3):
            api.post(CONFIGMAPS, configmap(f"c{index}"))
        token = api.get(CONFIGMAPS, params={"limit": "1"}).json()["metadata"]["continue"]
        for index in range(5):
            api.patch(f"{CONFIGMAPS}/c0", {"data": {"n": str(index)}})
        response = api.get(CONFIGMAPS, params={"limit": "1", "continue": token})
        assert response.status_code == 410 and response.json()["reason"] == "Expired"
        api.close()


def test_bookmarks_are_sent_when_allowed(sandbox_api: SandboxApi) -> None:
    stream = sandbox_api.watch(CONFIGMAPS, allowWatchBookmarks="true", resourceVersion="0")
    kinds = set()
    for event in stream:
        kinds.add(event["type"])
        if event["type"] == "BOOKMARK":
            assert int(event["object"]["metadata"]["resourceVersion"]) > 0
            break
    stream.close()
    assert "BOOKMARK" in kinds


def test_timeout_seconds_ends_the_watch(sandbox_api: SandboxApi) -> None:
    assert list(sandbox_api.watch(CONFIGMAPS, resourceVersion="999999999", timeoutSeconds="1")) == []
