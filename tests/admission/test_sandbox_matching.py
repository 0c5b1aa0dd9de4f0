"""How the sandbox decides which registered webhooks a request goes to (as kube-apiserver does)."""

from __future__ import annotations

from destinations.sandbox import AdmissionRequest, Caller
from destinations.sandbox._resources import ResourceType
from destinations.sandbox._webhooks import rule_matches, selector_matches

JOBS = ResourceType("destinations.dev", "v1", "destinationjobs", "DestinationJob", True, custom=True)
RULE = {
    "apiGroups": ["destinations.dev"],
    "apiVersions": ["v1"],
    "resources": ["destinationjobs"],
    "operations": ["CREATE", "UPDATE"],
    "scope": "Namespaced",
}


def _call(operation: str = "CREATE", subresource: str = "") -> AdmissionRequest:
    return AdmissionRequest(
        operation, JOBS, "team", "export", subresource, {}, None, Caller("alice", ()), False
    )


def test_a_rule_matches_its_operations_only() -> None:
    assert rule_matches(RULE, _call("CREATE"))
    assert not rule_matches(RULE, _call("DELETE"))
    assert rule_matches({**RULE, "operations": ["*"]}, _call("DELETE"))


def test_a_rule_for_the_main_resource_does_not_match_its_status_subresource() -> None:
    assert not rule_matches(RULE, _call(subresource="status"))
    assert rule_matches({**RULE, "resources": ["destinationjobs/*"]}, _call(subresource="status"))
    assert rule_matches({**RULE, "resources": ["*"]}, _call())
    assert not rule_matches({**RULE, "resources": ["*"]}, _call(subresource="status"))


def test_a_rule_for_another_group_or_scope_does_not_match() -> None:
    assert not rule_matches({**RULE, "apiGroups": ["apps"]}, _call())
    assert not rule_matches({**RULE, "scope": "Cluster"}, _call())


def test_label_selectors_follow_match_labels_and_expressions() -> None:
    labels = {"kubernetes.io/metadata.name": "team", "tier": "gold"}

    assert selector_matches(None, labels)
    assert selector_matches({"matchLabels": {"tier": "gold"}}, labels)
    assert not selector_matches(
        {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["team"]}
            ]
        },
        labels,
    )
    assert selector_matches({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, labels)
