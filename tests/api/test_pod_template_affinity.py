"""`podTemplate.affinity` is checked as the API server checks a Pod's, quantities are int-or-string like a
Pod's, and an image pull secret no Secret can be named is refused saying so (issue 13, item 5).

Every rule below was seen refused by kube-apiserver 1.36 (tests/controller/test_pod_values.py proves
it on the real server), except the two we refuse on purpose and say so: a `Gt`/`Lt` value that is not
a whole number (the server accepts it; the scheduler never matches it) and a key in both
`matchLabelKeys` and `labelSelector` when the pod lacks that label (the API reference forbids it; the
server notices only when the pod carries the label). Sources: validateAffinity and friends in
k8s.io/kubernetes pkg/apis/core/validation/validation.go, ValidateLabelSelector in
k8s.io/apimachinery pkg/apis/meta/v1/validation, and
https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#scheduling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from destinations.api.models import DestinationJobSpec
from destinations.controller.admission import VALIDATE_JOB, ClusterFacts, review
from destinations.controller.observing import JobView, parse_spec
from destinations.controller.pods import AuthorizationInfo, JobIdentity, render_sync_pod
from destinations.lifecycle import sync_pod_name
from destinations.validate import validate_job_spec, validate_sources
from tests.api.affinity_cases import ACCEPTED, REFUSED, STRICTER_THAN_THE_SERVER, A
from tests.fixtures.sandbox import SandboxApi


def _spec(**pod_template: Any) -> dict[str, Any]:
    return {
        "provider": "webhook",
        "type": "export",
        "authorizationRef": {"name": "hook"},
        "config": {"url": "https://example.com/hook"},
        "source": {"url": {"url": "https://example.com/records.jsonl"}},
        "podTemplate": pod_template,
    }


def _problems(affinity: dict[str, Any]) -> list[str]:
    return [str(problem) for problem in validate_job_spec(_spec(affinity=affinity), "team")]


@pytest.mark.parametrize(
    ("affinity", "expected"),
    [(affinity, expected) for _, affinity, expected in REFUSED + STRICTER_THAN_THE_SERVER],
    ids=[case for case, _, _ in REFUSED + STRICTER_THAN_THE_SERVER],
)
def test_validate_refuses_an_affinity_the_api_server_refuses_naming_the_field(
    affinity: dict[str, Any], expected: list[str]
) -> None:
    assert _problems(affinity) == expected


@pytest.mark.parametrize(
    ("affinity"), [affinity for _, affinity in ACCEPTED], ids=[case for case, _ in ACCEPTED]
)
def test_validate_accepts_awkward_valid_affinities(affinity: dict[str, Any]) -> None:
    assert _problems(affinity) == []


def test_validate_refuses_an_unknown_affinity_field_naming_the_accepted_ones() -> None:
    # A Pod drops an unknown field (kubectl's strict field validation refuses it); the CRD does the same.
    assert _problems({"nodeAffinity": {"requiredDuringScheduling": {}}}) == [
        A + "nodeAffinity.requiredDuringScheduling: is not a known field; accepted fields: "
        "requiredDuringSchedulingIgnoredDuringExecution, preferredDuringSchedulingIgnoredDuringExecution"
    ]


def _render(spec: dict[str, Any]) -> dict[str, Any]:
    return render_sync_pod(
        JobIdentity("team", "export", "00000000-0000-0000-0000-000000000001"),
        DestinationJobSpec.model_validate(spec),
        1,
        sync_pod_name("export", 1),
        AuthorizationInfo("apiKey", "hook.credentials"),
        image="destinations:test",
    )


def test_the_pod_carries_the_affinity_as_written_including_empty_selectors() -> None:
    # `labelSelector: {}` selects every pod, a missing one none; an empty term matches no node: all kept.
    affinity = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}},
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone", "labelSelector": {}}],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 5, "podAffinityTerm": {"topologyKey": "zone", "namespaces": ["team"]}}
            ],
        },
    }
    pod = _render(_spec(affinity=affinity))
    assert pod["spec"]["affinity"] == affinity


def test_an_empty_affinity_adds_nothing_to_the_pod() -> None:
    assert "affinity" not in _render(_spec(affinity={}))["spec"]


def _admission(spec: dict[str, Any]) -> tuple[bool, str | None]:
    job = {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {"name": "export", "namespace": "team"},
        "spec": spec,
    }
    request = {"operation": "CREATE", "object": job, "userInfo": {"username": "alice"}, "namespace": "team"}
    verdict = review(VALIDATE_JOB, request, ClusterFacts(authorizations=[]))
    return verdict.allowed, verdict.message


BAD_WEIGHT = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
    {"weight": 0, "podAffinityTerm": {"topologyKey": "zone"}}]}}  # fmt: skip
BAD_WEIGHT_PROBLEM = (
    "spec.podTemplate.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: "
    "must be at least 1 (got 0)"
)


def test_admission_refuses_a_bad_affinity_naming_the_field() -> None:
    allowed, message = _admission(_spec(affinity=BAD_WEIGHT))
    assert not allowed and message is not None
    assert message.startswith(BAD_WEIGHT_PROBLEM)


def test_the_operator_refuses_a_bad_affinity_naming_the_field() -> None:
    view = JobView("team", "export", "uid-1", 1, _spec(affinity=BAD_WEIGHT), None, None, False)
    parsed = parse_spec(view, None, default_purge_after=None)
    assert parsed.spec is None
    assert parsed.problems == BAD_WEIGHT_PROBLEM


# ------------------------------------------------------------------------------------------ quantities


def test_whole_number_quantities_are_accepted_and_reach_the_pod_as_text() -> None:
    # `cpu: 1` unquoted: kubectl sends the number 1, which a Pod (int-or-string) and now the CRD accept;
    # 1e9 and 2.0 are whole numbers too (the API server reads them as integers).
    resources = {"requests": {"cpu": 1, "memory": 1e9}, "limits": {"cpu": 2.0, "memory": "2Gi"}}
    assert validate_job_spec(_spec(resources=resources), "team") == []
    container = _render(_spec(resources=resources))["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "1000000000"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }


def test_validate_reads_unquoted_quantities_from_yaml_as_kubectl_does(tmp_path: Path) -> None:
    job = (
        "apiVersion: destinations.dev/v1\nkind: DestinationJob\nmetadata: {{name: export, namespace: team}}\n"
        "spec:\n  provider: webhook\n  type: export\n  authorizationRef: {{name: hook}}\n"
        "  config: {{url: 'https://example.com/hook'}}\n"
        "  source: {{url: {{url: 'https://example.com/records.jsonl'}}}}\n"
        "  podTemplate:\n    resources:\n      requests: {{cpu: 1, memory: 1e9}}\n"
        "      limits: {{cpu: {limit}}}\n"
    )
    whole, fraction = tmp_path / "whole.yaml", tmp_path / "fraction.yaml"
    whole.write_text(job.format(limit="2"), encoding="utf-8")
    fraction.write_text(job.format(limit="0.5"), encoding="utf-8")
    assert validate_sources([str(whole)]) == (1, [])
    assert validate_sources([str(fraction)])[1] == [
        f"{fraction}: DestinationJob/export: spec.podTemplate.resources.limits.cpu: a quantity is text such "
        "as '500m' or a whole number, not a number with a fraction: unquoted in YAML, kubectl sends it as a "
        "number; write it in quotes: '0.5' (got 0.5)"
    ]


def test_a_quantity_too_large_for_a_json_integer_must_be_quoted() -> None:
    problems = validate_job_spec(_spec(resources={"limits": {"memory": 1e20}}), "team")
    assert [str(problem) for problem in problems] == [
        "spec.podTemplate.resources.limits.memory: a quantity is text such as '500m' or a whole number, not "
        "a number this large: unquoted in YAML, kubectl sends it as a number; put it in quotes (got 1e+20)"
    ]


def test_whole_number_quantities_are_compared_with_text_ones() -> None:
    problems = validate_job_spec(
        _spec(resources={"requests": {"cpu": 2}, "limits": {"cpu": "1500m"}}), "team"
    )
    assert [str(problem) for problem in problems] == [
        "spec.podTemplate.resources.requests.cpu: requests.cpu 2 must not exceed limits.cpu 1500m"
    ]


# ------------------------------------------------------------------------------------- image pull secrets


def test_an_image_pull_secret_no_secret_can_be_named_is_refused_saying_so() -> None:
    problems = validate_job_spec(_spec(imagePullSecrets=[{"name": "Registry"}]), "team")
    assert [str(problem) for problem in problems] == [
        "spec.podTemplate.imagePullSecrets[0].name: 'Registry' must be a Kubernetes name: lower-case "
        "letters, digits, '-' and '.', starting and ending with a letter or digit; no Secret can have this "
        "name, so image pulls would find no credentials (the API server accepts it in a Pod; we refuse it)"
    ]


# ------------------------------------------------------------------------------------------- nulls

NULLS_IN_AFFINITY = {
    "nodeAffinity": None,
    "podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {
                "topologyKey": "zone",
                "labelSelector": {"matchLabels": {"app": None}},
                "namespaceSelector": None,
            }
        ],
        "preferredDuringSchedulingIgnoredDuringExecution": None,
    },
}


def test_the_api_server_drops_the_same_nulls_in_an_affinity(sandbox_api: SandboxApi) -> None:
    # Typed now, the affinity loses its nulls on the server like every other field (not nullable).
    sandbox_api.post(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    )
    body = {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {"name": "export"},
        "spec": _spec(affinity=NULLS_IN_AFFINITY),
    }
    response = sandbox_api.post("/apis/destinations.dev/v1/namespaces/team/destinationjobs", body)
    assert response.status_code == 201, response.text
    stored = response.json()["spec"]["podTemplate"]["affinity"]
    assert stored == {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "zone", "labelSelector": {"matchLabels": {}}}
            ]
        }
    }
    ours = DestinationJobSpec.model_validate(_spec(affinity=NULLS_IN_AFFINITY)).pod_template
    assert ours is not None and ours.affinity is not None
    assert ours.affinity.to_pod() == {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone", "labelSelector": {}}]
        }
    }


def test_the_crd_keeps_every_affinity_field(sandbox_api: SandboxApi) -> None:
    # A field the CRD schema lacked would be pruned silently (kubectl apply without strict validation).
    pruned = {}
    for index, (case, affinity) in enumerate(ACCEPTED):  # one control plane for all cases
        if case == "nulls left out":
            continue
        body = {
            "apiVersion": "destinations.dev/v1",
            "kind": "DestinationJob",
            "metadata": {"name": f"export-{index}"},
            "spec": _spec(affinity=affinity),
        }
        response = sandbox_api.post("/apis/destinations.dev/v1/namespaces/default/destinationjobs", body)
        stored = (
            response.json()["spec"]["podTemplate"].get("affinity") if response.status_code == 201 else None
        )
        if stored != affinity:
            pruned[case] = response.text[:300] if stored is None else stored
    assert pruned == {}


def test_a_null_value_in_a_list_is_refused_as_on_the_api_server(sandbox_api: SandboxApi) -> None:
    affinity = _node_affinity_with_values([None])
    body = {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {"name": "export"},
        "spec": _spec(affinity=affinity),
    }
    response = sandbox_api.post("/apis/destinations.dev/v1/namespaces/default/destinationjobs", body)
    assert response.status_code == 422, response.text
    assert _problems(affinity) == [
        "spec.podTemplate.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
        "nodeSelectorTerms[0].matchExpressions[0].values[0]: must be text (a string) (got null)"
    ]


def _node_affinity_with_values(values: list[Any]) -> dict[str, Any]:
    expression = {"key": "disk", "operator": "In", "values": values}
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [expression]}]
            }
        }
    }
