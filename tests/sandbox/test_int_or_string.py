"""`x-kubernetes-int-or-string` fields, as the API server validates and stores them (both backends).

The form is the one structural schemas allow and controller-gen writes for quantities: no `type`,
`anyOf: [{type: integer}, {type: string}]`, a `pattern` for the string form. The real server decodes a
JSON number as an int64 when it is one, else as a float64 that counts as an integer only when whole and
within 2^53 (go-openapi/swag IsFloat64AJSONInteger); a whole float is then written back as an integer.
The expected values below were recorded from kube-apiserver 1.36. Reference:
https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#int-or-string
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.sandbox import SandboxApi

from .conftest_helpers import WIDGETS, create_widget_crd, widget, widget_crd

PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"


@pytest.fixture(autouse=True)
def _quantities(sandbox_api: SandboxApi) -> None:
    crd = widget_crd()
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["quantity"] = {
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": PATTERN,
    }
    create_widget_crd(sandbox_api, crd)


#: (case, value sent, value stored): one control plane for all cases.
ACCEPTED = [
    ("integer", 1, 1),
    ("text", "500m", "500m"),
    ("whole float", 1.0, 1),
    ("float 1e3", 1e3, 1000),
    ("negative", -3, -3),
    ("largest exact float", 2.0**53 - 1, 2**53 - 1),
    ("largest int64", 2**63 - 1, 2**63 - 1),
]


def test_integers_and_text_are_accepted_and_whole_floats_become_integers(sandbox_api: SandboxApi) -> None:
    stored = {}
    for index, (case, given, _) in enumerate(ACCEPTED):
        response = sandbox_api.post(WIDGETS, widget(f"w{index}", quantity=given))
        value = response.json()["spec"]["quantity"] if response.status_code == 201 else response.text
        stored[case] = (value, type(value))
    assert stored == {case: (value, type(value)) for case, _, value in ACCEPTED}


def test_null_is_dropped(sandbox_api: SandboxApi) -> None:
    response = sandbox_api.post(WIDGETS, widget("w", quantity=None))
    assert response.status_code == 201, response.text
    assert "quantity" not in response.json()["spec"]


def _type_causes(kind: str, *, format_check: bool = False) -> list[dict[str, str]]:
    """The causes the real server gives for a value of JSON type `kind` (neither integer nor string);
    `format_check`: a number that is no int64 also fails the integer alternative's format."""
    causes = [
        {
            "reason": "FieldValueTypeInvalid",
            "message": f'Invalid value: "{kind}": spec.quantity in body must be of type integer,string: '
            f'"{kind}"',
            "field": "spec.quantity",
        },
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "": "spec.quantity" must validate at least one schema (anyOf)',
            "field": "<nil>",
        },
        {
            "reason": "FieldValueTypeInvalid",
            "message": f'Invalid value: "{kind}": spec.quantity in body must be of type integer: "{kind}"',
            "field": "spec.quantity",
        },
    ]
    if format_check:
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "message": 'Invalid value: "": Checked value must be of type integer (default format) in '
                "spec.quantity",
                "field": "<nil>",
            }
        )
    return causes


#: (case, value sent, the causes of the refusal).
REFUSED = [
    ("fraction", 0.5, _type_causes("number", format_check=True)),
    ("whole float beyond 2^53", 2.0**53 + 2, _type_causes("number")),
    ("integer beyond int64", 10**20, _type_causes("number", format_check=True)),
    ("boolean", True, _type_causes("boolean")),
    ("object", {}, _type_causes("object")),
    ("array", [], _type_causes("array")),
    ("text with a space", "1 GB", [{
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: \"1 GB\": spec.quantity in body should match '{PATTERN}'",
        "field": "spec.quantity",
    }]),
    ("empty text", "", [{
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: \"\": spec.quantity in body should match '{PATTERN}'",
        "field": "spec.quantity",
    }]),
]  # fmt: skip


def test_other_values_are_refused_with_the_servers_causes(sandbox_api: SandboxApi) -> None:
    answers = {}
    for index, (case, given, _) in enumerate(REFUSED):
        response = sandbox_api.post(WIDGETS, widget(f"w{index}", quantity=given))
        answers[case] = (response.status_code, response.json().get("details", {}).get("causes"))
    assert answers == {case: (422, causes) for case, _, causes in REFUSED}


def test_the_whole_message_of_a_fraction_reads_as_the_servers(sandbox_api: SandboxApi) -> None:
    response = sandbox_api.post(WIDGETS, widget("w", quantity=0.5))
    assert response.json()["message"] == (
        'Widget.sandbox.test "w" is invalid: [spec.quantity: Invalid value: "number": spec.quantity in body '
        'must be of type integer,string: "number", <nil>: Invalid value: "": "spec.quantity" must validate '
        'at least one schema (anyOf), spec.quantity: Invalid value: "number": spec.quantity in body must be '
        'of type integer: "number", <nil>: Invalid value: "": Checked value must be of type integer (default '
        "format) in spec.quantity]"
    )


# ---------------------------------------------------------------------- the DestinationJob's quantities

JOBS = "/apis/destinations.dev/v1/namespaces/default/destinationjobs"


def _job(resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {"name": "export"},
        "spec": {
            "provider": "webhook",
            "type": "export",
            "authorizationRef": {"name": "hook"},
            "source": {"url": {"url": "https://example.com/records.jsonl"}},
            "podTemplate": {"resources": resources},
        },
    }


def test_a_job_takes_whole_number_quantities_like_a_pod(sandbox_api: SandboxApi) -> None:
    response = sandbox_api.post(
        JOBS, _job({"requests": {"cpu": 1, "memory": "128Mi"}, "limits": {"cpu": 2.0}})
    )
    assert response.status_code == 201, response.text
    assert response.json()["spec"]["podTemplate"]["resources"] == {
        "requests": {"cpu": 1, "memory": "128Mi"},
        "limits": {"cpu": 2},
    }


def test_a_job_refuses_a_quantity_with_a_fraction_naming_it(sandbox_api: SandboxApi) -> None:
    response = sandbox_api.post(JOBS, _job({"requests": {"cpu": 0.5}}))
    assert response.status_code == 422, response.text
    fields = {cause["field"] for cause in response.json()["details"]["causes"]}
    assert fields == {"spec.podTemplate.resources.requests.cpu", "<nil>"}
