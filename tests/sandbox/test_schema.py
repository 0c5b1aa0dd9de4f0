"""Custom resources against their CRD's openAPIV3Schema: validation, defaulting, pruning, field validation.

Reference: https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
(validation, defaulting, field pruning) and https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.sandbox import SandboxApi

from .conftest_helpers import WIDGETS, create_widget_crd, widget


@pytest.fixture(autouse=True)
def _widgets(sandbox_api: SandboxApi) -> None:
    create_widget_crd(sandbox_api)


def _causes(sandbox_api: SandboxApi, **spec: Any) -> dict[str, str]:
    response = sandbox_api.post(WIDGETS, widget("w", **spec))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["reason"] == "Invalid" and body["message"].startswith('Widget.sandbox.test "w" is invalid: ')
    return {cause["field"]: cause["message"] for cause in body["details"]["causes"]}


def test_defaults_are_applied_including_nested_ones(sandbox_api: SandboxApi) -> None:
    created = sandbox_api.post(WIDGETS, widget("w")).json()
    assert created["spec"]["size"] == 3
    assert created["spec"]["retry"] == {"initialBackoff": "1m", "maxBackoff": "1h"}


def test_required_fields_are_reported(sandbox_api: SandboxApi) -> None:
    body = widget("w")
    del body["spec"]["provider"]
    response = sandbox_api.post(WIDGETS, body)
    assert response.status_code == 422
    assert response.json()["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.provider"}
    ]


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        ({"provider": "nope"}, "spec.provider", 'Unsupported value: "nope"'),
        ({"size": "big"}, "spec.size", "must be of type integer"),
        ({"size": 0}, "spec.size", "should be greater than or equal to 1"),
        ({"size": 11}, "spec.size", "should be less than or equal to 10"),
        ({"label": "ABC"}, "spec.label", "should match '^[a-z]+$'"),
        ({"label": "a"}, "spec.label", "should be at least 2 chars long"),
        ({"label": "abcdefghij"}, "spec.label", "Too long"),
        ({"tags": ["a", "b", "c"]}, "spec.tags", "must have at most 2 items"),
        ({"when": "yesterday"}, "spec.when", "must be of type date-time"),
        ({"retry": {"initialBackoff": "soon"}}, "spec.retry.initialBackoff", "should match"),
        ({"port": True}, "spec.port", "integer,string"),
    ],
)
def test_schema_violations_name_the_field(
    sandbox_api: SandboxApi, spec: dict[str, Any], field: str, fragment: str
) -> None:
    causes = _causes(sandbox_api, **spec)
    assert fragment in causes[field]


def test_string_checks_stop_at_the_first_failure(sandbox_api: SandboxApi) -> None:
    # "A" is both too short and off the pattern: the server's string validator reports the length only.
    # The real server walks an object's properties in Go map order, so causes are compared sorted.
    response = sandbox_api.post(WIDGETS, widget("w", size=0, label="A"))
    causes = sorted(response.json()["details"]["causes"], key=lambda cause: cause["field"], reverse=True)
    assert causes == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 0: spec.size in body should be greater than or equal to 1",
            "field": "spec.size",
        },
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "A": spec.label in body should be at least 2 chars long',
            "field": "spec.label",
        },
    ]


def test_a_bad_format_is_a_type_error(sandbox_api: SandboxApi) -> None:
    response = sandbox_api.post(WIDGETS, widget("w", when="yesterday"))
    assert response.json()["details"]["causes"] == [
        {
            "reason": "FieldValueTypeInvalid",
            "message": 'Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"',
            "field": "spec.when",
        }
    ]


def test_int_or_string_and_nullable_accept_their_values(sandbox_api: SandboxApi) -> None:
    assert sandbox_api.post(WIDGETS, widget("a", port=80, note=None)).status_code == 201
    assert sandbox_api.post(WIDGETS, widget("b", port="http")).status_code == 201


def test_unknown_fields_are_pruned_except_under_preserve_unknown_fields(sandbox_api: SandboxApi) -> None:
    created = sandbox_api.post(WIDGETS, widget("w", extra=1, config={"anything": {"goes": True}})).json()
    assert "extra" not in created["spec"]
    assert created["spec"]["config"] == {"anything": {"goes": True}}


def test_strict_field_validation_refuses_unknown_fields(sandbox_api: SandboxApi) -> None:
    response = sandbox_api.post(WIDGETS, widget("w", extra=1), params={"fieldValidation": "Strict"})
    assert response.status_code == 400
    assert 'unknown field "spec.extra"' in response.json()["message"]


def test_warn_field_validation_returns_a_warning_header(sandbox_api: SandboxApi) -> None:
    response = sandbox_api.post(WIDGETS, widget("w", extra=1), params={"fieldValidation": "Warn"})
    assert response.status_code == 201
    assert 'unknown field \\"spec.extra\\"' in response.headers["Warning"]


def test_updates_are_validated_too(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(WIDGETS, widget("w"))
    response = sandbox_api.patch(f"{WIDGETS}/w", {"spec": {"size": 99}})
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "spec.size"
