"""Names and values Kubernetes refuses are refused up front, never at pod creation (issue 13, item 5).

Two halves, each checked against the API server (`sandbox_api`, on the real kube-apiserver with
DESTINATIONS_CONTROL_PLANES=real): every pod the operator renders from awkward but valid input is
accepted (server-side dry run); and every podTemplate value `validate` refuses, the real API server
refuses too when it reaches a Pod, so the up-front checks are neither looser nor stricter than it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from destinations.api.models import DestinationJobSpec
from destinations.controller.pods import AuthorizationInfo, JobIdentity, render_sync_pod, secret_volume_name
from destinations.lifecycle import sync_pod_name
from destinations.validate import validate_job_spec
from tests.api.affinity_cases import ACCEPTED, POD_LABELS, STRICTER_THAN_THE_SERVER
from tests.api.affinity_cases import REFUSED as REFUSED_AFFINITIES
from tests.fixtures.sandbox import SandboxApi

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAMESPACE = "pods"


def _spec(**fields: Any) -> dict[str, Any]:
    return {
        "provider": "webhook",
        "type": "export",
        "authorizationRef": {"name": "hook"},
        "config": {"url": "https://example.com/hook"},
        "source": {"url": {"url": "https://example.com/records.jsonl"}},
        **fields,
    }


def _render(job_name: str, spec: dict[str, Any]) -> dict[str, Any]:
    parsed = DestinationJobSpec.model_validate(spec)
    return render_sync_pod(
        JobIdentity(NAMESPACE, job_name, "00000000-0000-0000-0000-000000000001"),
        parsed,
        1,
        sync_pod_name(job_name, 1),
        AuthorizationInfo("apiKey", "hook.credentials"),
        image="destinations:test",
    )


def _dry_run_create(api: SandboxApi, pod: dict[str, Any]) -> Any:
    body = copy.deepcopy(pod)
    body["metadata"].pop("ownerReferences", None)  # the owner does not exist in this namespace
    return api.post(f"/api/v1/namespaces/{NAMESPACE}/pods?dryRun=All", body)


@pytest.fixture
def api(sandbox_api: SandboxApi) -> SandboxApi:
    response = sandbox_api.post(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    )
    assert response.status_code == 201, response.text
    return sandbox_api


# ------------------------------------------------------------------------------ derived names


def test_a_dotted_secret_name_becomes_a_dns_label_volume() -> None:
    # The literal case: `secret-events-api.headers` is not a DNS label.
    name = secret_volume_name("events-api.headers")
    assert name == "secret-events-api-headers-49d51bd9"  # sha256("events-api.headers")[:8]
    assert DNS_LABEL.match(name)


def test_secret_volume_names_never_collide() -> None:
    names = {
        secret_volume_name(secret)
        for secret in ("events-api.headers", "events-api-headers", "a" * 253, "a" * 252 + "b", "x.y.z")
    }
    assert len(names) == 5
    assert all(DNS_LABEL.match(name) and len(name) <= 63 for name in names)


AWKWARD = [
    ("dotted secrets", "eu.audience", {
        "source": {"url": {"url": "https://e.example/r", "headersSecretRef": {"name": "events-api.headers"}}},
    }),
    ("long secret", "x" * 63, {
        "source": {"warehouse": {"connectionSecretRef": {"name": "d" * 253, "key": "dsn"}, "table": "users"}},
    }),
    ("podTemplate values at their limits", "edge", {
        "podTemplate": {
            "labels": {"example.com/team": "growth_team-1.a", "empty": ""},
            "annotations": {"Example.com/Owner": "growth team <growth@example.com>"},
            "nodeSelector": {"kubernetes.io/arch": "amd64"},
            "tolerations": [
                {"operator": "Exists"},
                {"key": "dedicated", "value": "sync", "effect": "NoExecute", "tolerationSeconds": 60},
            ],
            "resources": {"requests": {"cpu": "0.5", "memory": "1e9", "example.com/gpu": "1"},
                          "limits": {"cpu": "1", "memory": "1Gi", "example.com/gpu": "1"}},
        },
    }),
    # `cpu: 1` and `memory: 1e9` unquoted in YAML: numbers, int-or-string like a Pod's quantities.
    ("whole-number quantities", "numbers", {
        "podTemplate": {"resources": {"requests": {"cpu": 1, "memory": 1e9}, "limits": {"cpu": 2.0}}},
    }),
]  # fmt: skip


def test_the_api_server_accepts_every_pod_rendered_from_valid_input(api: SandboxApi) -> None:
    for case, job_name, fields in AWKWARD:  # one control plane for all cases
        spec = _spec(**fields)
        assert validate_job_spec(spec, NAMESPACE) == [], case
        pod = _render(job_name, spec)
        for volume in pod["spec"]["volumes"]:
            assert DNS_LABEL.match(volume["name"]) and len(volume["name"]) <= 63, volume["name"]
        response = _dry_run_create(api, pod)
        assert response.status_code == 201, f"{case}: {response.text}"


def test_the_api_server_accepts_every_pod_rendered_from_an_awkward_affinity(api: SandboxApi) -> None:
    refused = {}
    for case, affinity in ACCEPTED:  # one control plane for all cases
        spec = _spec(podTemplate={"labels": POD_LABELS, "affinity": affinity})
        assert validate_job_spec(spec, NAMESPACE) == [], case
        response = _dry_run_create(api, _render("affine", spec))
        if response.status_code != 201:
            refused[case] = response.text[:300]
    assert refused == {}


# ---------------------------------------------------------------------------- refused up front

T = "spec.podTemplate."
#: (podTemplate, the field `validate` names): each value a Pod may not carry.
REFUSED = [
    ({"labels": {"team": "growth team"}}, T + "labels.team"),
    ({"labels": {"a/b/c": "x"}}, T + "labels.a/b/c"),
    ({"labels": {"Example.com/team": "x"}}, T + "labels.Example.com/team"),
    ({"labels": {"team": "x" * 64}}, T + "labels.team"),
    ({"labels": {"team": "-growth"}}, T + "labels.team"),
    ({"annotations": {"bad key": "x"}}, T + "annotations.bad key"),
    ({"annotations": {"big": "x" * (256 * 1024)}}, T + "annotations"),
    ({"nodeSelector": {"disk": "ssd!"}}, T + "nodeSelector.disk"),
    ({"resources": {"requests": {"memory": "1 GB"}}}, T + "resources.requests.memory"),
    ({"resources": {"requests": {"memory": "-1Gi"}}}, T + "resources.requests.memory"),
    ({"resources": {"requests": {"gpu": "1"}}}, T + "resources.requests.gpu"),
    ({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}, T + "resources.requests.cpu"),
    ({"resources": {"requests": {"example.com/gpu": "1"}}}, T + "resources.limits.example.com/gpu"),
    ({"tolerations": [{"operator": "Exists", "value": "x"}]}, T + "tolerations[0].value"),
    ({"tolerations": [{"effect": "NoSchedule"}]}, T + "tolerations[0].operator"),
    ({"tolerations": [{"key": "k", "tolerationSeconds": 5}]}, T + "tolerations[0].tolerationSeconds"),
    ({"tolerations": [{"key": "k k", "operator": "Exists"}]}, T + "tolerations[0].key"),
    ({"tolerations": [{"key": "k", "value": "a b"}]}, T + "tolerations[0].value"),
    ({"serviceAccountName": "Sync_Runner"}, T + "serviceAccountName"),
    ({"priorityClassName": "High"}, T + "priorityClassName"),
]  # fmt: skip


@pytest.mark.parametrize(("template", "path"), REFUSED, ids=[path for _, path in REFUSED])
def test_validate_refuses_a_value_the_api_server_refuses_naming_the_field(
    template: dict[str, Any], path: str
) -> None:
    problems = validate_job_spec(_spec(podTemplate=template), NAMESPACE)
    assert [problem.path for problem in problems] == [path], [str(problem) for problem in problems]


def _pod_with(template: dict[str, Any]) -> dict[str, Any]:
    """A rendered pod carrying the refused value, as the API server would receive it without our checks."""
    pod = _render("export", _spec())
    metadata, pod_spec = pod["metadata"], pod["spec"]
    container = pod_spec["containers"][0]
    metadata["labels"].update(template.get("labels", {}))
    metadata["annotations"].update(template.get("annotations", {}))
    if "nodeSelector" in template:
        pod_spec["nodeSelector"] = template["nodeSelector"]
    if "tolerations" in template:
        pod_spec["tolerations"] = template["tolerations"]
    if "resources" in template:
        container["resources"] = template["resources"]
    for field in ("serviceAccountName", "priorityClassName", "imagePullSecrets"):
        if field in template:
            pod_spec[field] = template[field]
    return pod


@pytest.mark.real_only
def test_the_real_api_server_refuses_the_same_values(api: SandboxApi) -> None:
    accepted = []
    for template, path in REFUSED:  # one control plane for all cases
        response = _dry_run_create(api, _pod_with(template))
        # 422: invalid; 400: not even a Pod (a quantity that does not parse); 403: an admission plugin
        # refused first (a service account or priority class with such a name cannot exist).
        if response.status_code not in (400, 403, 422):
            accepted.append(f"{path}: {response.status_code} {response.text[:200]}")
    assert accepted == []


def _pod_with_affinity(affinity: dict[str, Any]) -> dict[str, Any]:
    """A rendered pod (labelled `POD_LABELS`) carrying `affinity` as written, without our checks."""
    pod = _render("export", _spec(podTemplate={"labels": POD_LABELS}))
    pod["spec"]["affinity"] = affinity
    return pod


def _term_path(problem: str) -> str:
    """Where the API server should refuse a problem of ours: its path down to the first term
    (`...nodeSelectorTerms[0]`, `...requiredDuringSchedulingIgnoredDuringExecution[0]`), in a Pod."""
    path = problem.split(": ", 1)[0].replace("spec.podTemplate.affinity.", "spec.affinity.")
    return path[: path.index("]") + 1] if "]" in path else path


@pytest.mark.real_only
def test_the_real_api_server_refuses_every_affinity_validate_refuses(api: SandboxApi) -> None:
    wrong = []
    for case, affinity, problems in REFUSED_AFFINITIES:  # one control plane for all cases
        response = _dry_run_create(api, _pod_with_affinity(affinity))
        fields = [cause.get("field", "") for cause in response.json().get("details", {}).get("causes", [])]
        where = _term_path(problems[0])
        if response.status_code != 422 or not any(field.startswith(where) for field in fields):
            wrong.append(f"{case}: {response.status_code} {fields} (expected a refusal at {where})")
    assert wrong == []


@pytest.mark.real_only
def test_the_real_api_server_accepts_what_we_refuse_on_purpose(api: SandboxApi) -> None:
    # Documented in docs/api-notes.md (deliberate differences). Should the server start refusing one,
    # it belongs with the values the server refuses.
    verdicts = {
        case: _dry_run_create(api, _pod_with_affinity(affinity)).status_code
        for case, affinity, _ in STRICTER_THAN_THE_SERVER
    }
    registry = _dry_run_create(api, _pod_with({"imagePullSecrets": [{"name": "Registry"}]}))
    verdicts["imagePullSecrets Registry"] = registry.status_code
    assert verdicts == {
        "Gt with a word": 201,
        "Lt with a fraction": 201,
        "Gt beyond int64": 201,
        "a matchLabelKeys key in the selector the pod does not carry": 201,
        "imagePullSecrets Registry": 201,
    }
    assert validate_job_spec(_spec(podTemplate={"imagePullSecrets": [{"name": "Registry"}]}), NAMESPACE) != []
