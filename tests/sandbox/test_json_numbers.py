"""Numbers, booleans and text in typed fields of a custom resource, as the API server reads and returns
them (both backends; the causes were recorded from kube-apiserver 1.36).

The server decodes a JSON number as an int64 when it is one, else as a float64; a `type: integer` field
takes a float that is whole and within 2^53 - 1 (go-openapi/swag IsFloat64AJSONInteger) and converts
nothing else: `"3"` is text, `true` no number. Go's encoding/json then writes every float64 below 1e21
in plain digits, so a whole one comes back as an integer (`3.0` -> `3`), in typed and free-form fields
alike. After a type error the server's other validators still run: an integer field's format check
(a number that is no int64), the bounds of a number, the enum of any value. Reference:
https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.sandbox import SandboxApi

from .conftest_helpers import WIDGETS, create_widget_crd, widget


@pytest.fixture(autouse=True)
def _widgets(sandbox_api: SandboxApi) -> None:
    create_widget_crd(sandbox_api)


def test_whole_floats_come_back_as_integers_in_typed_and_free_form_fields(sandbox_api: SandboxApi) -> None:
    config = {"whole": 3.0, "fraction": 2.5, "float 1e20": 1e20, "beyond int64": 10**20, "1e21": 1e21}
    response = sandbox_api.post(WIDGETS, widget("w", size=3.0, config=config))
    assert response.status_code == 201, response.text
    stored = response.json()["spec"]
    assert (stored["size"], type(stored["size"])) == (3, int)
    assert {key: (value, type(value)) for key, value in stored["config"].items()} == {
        "whole": (3, int),
        "fraction": (2.5, float),
        "float 1e20": (100000000000000000000, int),
        "beyond int64": (100000000000000000000, int),
        "1e21": (1e21, float),
    }


def _type_cause(kind: str, field: str = "size", wanted: str = "integer") -> dict[str, str]:
    return {
        "reason": "FieldValueTypeInvalid",
        "message": f'Invalid value: "{kind}": spec.{field} in body must be of type {wanted}: "{kind}"',
        "field": f"spec.{field}",
    }


FORMAT_CAUSE = {
    "reason": "FieldValueInvalid",
    "message": 'Invalid value: "": Checked value must be of type integer (default format) in spec.size',
    "field": "<nil>",
}


def _bound_cause(shown: str, relation: str) -> dict[str, str]:
    return {
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: {shown}: spec.size in body should be {relation}",
        "field": "spec.size",
    }


def _enum_cause(shown: str) -> dict[str, str]:
    return {
        "reason": "FieldValueNotSupported",
        "message": f'Unsupported value: {shown}: supported values: "mailchimp", "facebook", "webhook"',
        "field": "spec.provider",
    }


#: (case, spec fields sent, the causes of the refusal); `size` is an integer from 1 to 10, `provider`
#: an enum, `label` and `note` strings, `tags` a list of strings.
REFUSED: list[tuple[str, dict[str, Any], list[dict[str, str]]]] = [
    ("integer as text", {"size": "3"}, [_type_cause("string")]),
    ("integer as boolean", {"size": True}, [_type_cause("boolean")]),
    ("integer with a fraction", {"size": 2.5}, [_type_cause("number"), FORMAT_CAUSE]),
    ("integer beyond int64", {"size": 10**20}, [
        _type_cause("number"), FORMAT_CAUSE, _bound_cause("1e+20", "less than or equal to 10"),
    ]),
    ("whole float beyond 2^53", {"size": 2.0**53 + 2}, [
        _type_cause("number"), _bound_cause("9.007199254740994e+15", "less than or equal to 10"),
    ]),
    ("largest exact float, too large", {"size": 2.0**53 - 1}, [
        _bound_cause("9.007199254740991e+15", "less than or equal to 10"),
    ]),
    ("fraction below the minimum", {"size": -0.5}, [
        _type_cause("number"), FORMAT_CAUSE, _bound_cause("-0.5", "greater than or equal to 1"),
    ]),
    ("fraction above the maximum", {"size": 1234567.5}, [
        _type_cause("number"), FORMAT_CAUSE, _bound_cause("1.2345675e+06", "less than or equal to 10"),
    ]),
    ("largest int64, too large", {"size": 2**63 - 1}, [
        _bound_cause("9223372036854775807", "less than or equal to 10"),
    ]),
    ("enum given a number", {"provider": 5}, [
        _type_cause("integer", "provider", "string"), _enum_cause("5"),
    ]),
    ("enum given a boolean", {"provider": True}, [
        _type_cause("boolean", "provider", "string"), _enum_cause("true"),
    ]),
    ("text given a number", {"label": 5}, [_type_cause("integer", "label", "string")]),
    ("text given a fraction", {"label": 5.5}, [_type_cause("number", "label", "string")]),
    ("text given a boolean", {"label": True}, [_type_cause("boolean", "label", "string")]),
    ("nullable text given a number", {"note": 5}, [_type_cause("integer", "note", "string")]),
    ("list item given a number", {"tags": [1, "a"]}, [_type_cause("integer", "tags[0]", "string")]),
]  # fmt: skip


def test_values_of_another_type_are_refused_with_the_servers_causes(sandbox_api: SandboxApi) -> None:
    answers = {}
    for index, (case, fields, _) in enumerate(REFUSED):
        response = sandbox_api.post(WIDGETS, widget(f"w{index}", **fields))
        answers[case] = (response.status_code, response.json().get("details", {}).get("causes"))
    assert answers == {case: (422, causes) for case, _, causes in REFUSED}
