"""Issue 13, items 4 and 7: `null` means absent, every problem is reported at once, every provider
capability is checked before a run, and `validate` reads what `kubectl apply -f` reads."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from destinations.api.models import DestinationJobSpec
from destinations.controller.admission import VALIDATE_JOB, ClusterFacts, review
from destinations.controller.observing import JobView, parse_spec
from destinations.validate import validate_authorization_spec, validate_job_spec, validate_sources
from tests.fixtures.sandbox import SandboxApi


def _spec(**fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "provider": "webhook",
        "type": "export",
        "authorizationRef": {"name": "hook"},
        "config": {"url": "https://example.com/hook"},
        "source": {"url": {"url": "https://example.com/records.jsonl"}},
        "schedule": {"every": "1h"},
    }
    spec.update(fields)
    return {key: value for key, value in spec.items() if value is not ...}


def _strings(problems: list[Any]) -> list[str]:
    return [str(problem) for problem in problems]


# ------------------------------------------------------------------------------------ null is absent


NULLS = {
    "paused": None,
    "retry": None,
    "history": None,
    "purgeAfter": None,
    "podTemplate": None,
    "description": None,
    "displayName": None,
    "runTimeout": None,
    "mode": None,
}


def test_null_top_level_fields_are_absent_and_defaulted() -> None:
    spec = _spec(**NULLS)
    assert validate_job_spec(spec, "team") == []
    parsed = DestinationJobSpec.model_validate(spec)
    assert parsed.paused is False
    assert parsed.retry.initial_backoff == timedelta(minutes=1)
    assert parsed.purge_after == timedelta(days=90)  # null is not `never`
    assert parsed.run_timeout == timedelta(hours=6)


def test_null_nested_fields_are_absent_and_defaulted() -> None:
    spec = _spec(
        retry={"initialBackoff": None, "maxBackoff": "2h"},
        schedule={"every": "1h", "cron": None, "timezone": None, "once": None},
        authorizationRef={"name": "hook", "namespace": None},
        history={"failed": None},
    )
    assert validate_job_spec(spec, "team") == []
    parsed = DestinationJobSpec.model_validate(spec)
    assert parsed.retry.initial_backoff == timedelta(minutes=1)
    assert parsed.history.failed == 3


def test_null_for_a_required_field_is_a_missing_field() -> None:
    assert _strings(validate_job_spec(_spec(type=None), "team")) == ["spec.type: is required"]


def test_null_inside_a_typed_map_is_dropped_but_a_null_list_item_is_refused() -> None:
    # As kube-apiserver does: `labels: {team: null}` is stored as `labels: {}`; `tolerations: [null]`
    # is refused ("must be of type object"); `config` keeps its nulls for the provider to judge.
    spec = _spec(podTemplate={"labels": {"team": None, "tier": "gold"}, "nodeSelector": {"disk": None}})
    assert validate_job_spec(spec, "team") == []
    parsed = DestinationJobSpec.model_validate(spec)
    assert parsed.pod_template is not None
    assert parsed.pod_template.labels == {"tier": "gold"}
    assert parsed.pod_template.node_selector == {}
    problems = _strings(validate_job_spec(_spec(podTemplate={"tolerations": [None]}), "team"))
    assert problems == ["spec.podTemplate.tolerations[0]: must be a mapping of fields (an object) (got null)"]


def test_a_null_secret_ref_is_a_missing_one() -> None:
    spec = {"provider": "webhook", "method": "apiKey", "secretRef": None, "displayName": None}
    assert _strings(validate_authorization_spec(spec, "team")) == [
        "spec.secretRef: secretRef is required for method 'apiKey'; only 'none' works without one"
    ]


def test_the_operator_reads_a_null_purge_after_as_its_own_default() -> None:
    view = JobView("team", "export", "uid-1", 1, _spec(purgeAfter=None, paused=None), None, None, False)
    parsed = parse_spec(view, None, default_purge_after=timedelta(days=7))
    assert parsed.problems is None and parsed.spec is not None
    assert parsed.spec.purge_after == timedelta(days=7)


def test_admission_allows_nulls() -> None:
    job = {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {"name": "export", "namespace": "team"},
        "spec": _spec(paused=None, retry=None),
    }
    authorization = {
        "metadata": {"name": "hook", "namespace": "team"},
        "spec": {"provider": "webhook", "method": "apiKey", "secretRef": {"name": "credentials"}},
    }
    request = {"operation": "CREATE", "object": job, "userInfo": {"username": "alice"}, "namespace": "team"}
    verdict = review(VALIDATE_JOB, request, ClusterFacts(authorizations=[authorization]))
    assert verdict.allowed, verdict


def test_the_api_server_drops_the_same_nulls_and_applies_the_same_defaults(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    )
    spec = _spec(
        paused=None,
        retry=None,
        history={"failed": None},
        purgeAfter=None,
        podTemplate={"labels": {"a": None}},
    )
    response = sandbox_api.post(
        "/apis/destinations.dev/v1/namespaces/team/destinationjobs",
        {
            "apiVersion": "destinations.dev/v1",
            "kind": "DestinationJob",
            "metadata": {"name": "j"},
            "spec": spec,
        },
    )
    assert response.status_code == 201, response.text
    stored = response.json()["spec"]
    assert stored["paused"] is False
    assert stored["retry"] == {"initialBackoff": "1m", "maxBackoff": "1h", "failAfter": "10h"}
    assert stored["history"] == {"succeeded": 3, "failed": 3}
    assert stored["purgeAfter"] == "90d"
    ours = DestinationJobSpec.model_validate(spec).to_manifest()
    assert stored["podTemplate"] == {"labels": {}}
    assert ours["podTemplate"]["labels"] == stored["podTemplate"]["labels"]
    for field in ("paused", "retry", "history", "purgeAfter"):
        assert ours[field] == stored[field], field


# ------------------------------------------------------------------------------ every problem at once


def test_a_cross_namespace_reference_and_a_missing_source_are_both_reported() -> None:
    spec = _spec(authorizationRef={"name": "hook", "namespace": "other"}, source=...)
    assert _strings(validate_job_spec(spec, "team")) == [
        "spec.source: source is required for export jobs",
        "spec.authorizationRef.namespace: must be the object's own namespace 'team' or left out: "
        'references to other namespaces are refused (got "other")',
    ]


def test_field_errors_and_rules_of_every_object_are_reported_together() -> None:
    spec = _spec(
        schedule={"every": "1h", "cron": "0 6 * * *"},
        retry={"initialBackoff": "2h", "maxBackoff": "1h", "failAfter": "soon"},
        runTimeout="forever",
        sink={"file": {"path": "out.jsonl", "volume": {"hostPath": "/data", "configMap": "x"}}},
    )
    assert _strings(validate_job_spec(spec, "team")) == [
        "spec.retry.failAfter: 'soon' is not a duration such as 90s, 15m, 1h30m, 10h or 90d "
        "(units ms, s, m, h, d)",
        "spec.runTimeout: 'forever' is not a duration such as 90s, 15m, 1h30m, 10h or 90d "
        "(units ms, s, m, h, d)",
        "spec.sink: sink is not used by export jobs; remove it",
        "spec.sink.file.volume: set exactly one of persistentVolumeClaim, configMap or hostPath",
        "spec.schedule: set exactly one of every, cron or once (got every, cron)",
        "spec.retry.maxBackoff: maxBackoff must not be shorter than initialBackoff",
    ]


def test_a_rule_about_a_refused_value_is_not_repeated() -> None:
    problems = _strings(validate_job_spec(_spec(source={"url": {"url": 5}}), "team"))
    assert problems == [
        "spec.source.url.url: must be text (a string), not the number 5: unquoted in YAML, kubectl sends "
        "it as a number; put it in quotes (got 5)"
    ]


def test_rules_of_nested_objects_are_reported_when_required_fields_are_missing() -> None:
    spec = _spec(type=None, schedule={"every": "1h", "once": False})
    assert _strings(validate_job_spec(spec, "team")) == [
        "spec.type: is required",
        "spec.schedule: set exactly one of every, cron or once (got every, once)",
        "spec.schedule.once: once must be true when set; use every or cron for repeating jobs",
    ]


def test_an_authorization_reports_its_method_and_its_secret_together() -> None:
    spec = {"provider": "webhook", "method": "serviceAccount", "secretRef": {"name": "s", "namespace": "x"}}
    problems = _strings(validate_authorization_spec(spec, "team"))
    assert problems[0].startswith("spec.method: is not accepted by provider 'webhook'")
    assert problems[1].startswith("spec.secretRef.namespace: must be the object's own namespace 'team'")


# ------------------------------------------------------------------------- provider capabilities


MIRROR_ON_WEBHOOK = "spec.mode: is not supported by provider 'webhook'; it supports: upsert (got \"mirror\")"


def test_mirror_mode_on_a_provider_without_it_is_refused_by_validate() -> None:
    warehouse = {"warehouse": {"connectionSecretRef": {"name": "dsn", "key": "url"}, "table": "users"}}
    assert _strings(validate_job_spec(_spec(mode="mirror", source=warehouse), "team")) == [MIRROR_ON_WEBHOOK]


@pytest.mark.parametrize(
    ("provider", "mode", "supported"),
    [
        ("webhook", "insert", "upsert"),
        ("webhook", "update", "upsert"),
        ("facebook", "insert", "upsert, mirror"),
        ("facebook", "update", "upsert, mirror"),
        ("google", "insert", "upsert, mirror"),
        ("google", "update", "upsert, mirror"),
    ],
)
def test_a_mode_the_provider_lacks_is_refused_naming_the_modes_it_has(
    provider: str, mode: str, supported: str
) -> None:
    problems = validate_job_spec(_spec(provider=provider, mode=mode), "team")
    assert [str(p) for p in problems if p.path == "spec.mode"] == [
        f'spec.mode: is not supported by provider {provider!r}; it supports: {supported} (got "{mode}")'
    ]


@pytest.mark.parametrize("provider", ["mailchimp", "salesforce"])
@pytest.mark.parametrize("mode", ["insert", "update"])
def test_insert_and_update_on_mailchimp_and_salesforce_are_not_refused_for_their_mode(
    provider: str, mode: str
) -> None:
    problems = validate_job_spec(_spec(provider=provider, mode=mode), "team")
    assert [p for p in problems if p.path == "spec.mode"] == []


def test_insert_mode_applies_to_export_jobs_only() -> None:
    spec = _spec(provider="mailchimp", mode="insert", type="import")
    assert "spec.mode: mode insert applies to export jobs only" in _strings(validate_job_spec(spec, "team"))


def test_mirror_mode_on_a_provider_without_it_is_refused_by_admission() -> None:
    job = {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {"name": "export", "namespace": "team"},
        "spec": _spec(mode="mirror"),
    }
    request = {"operation": "CREATE", "object": job, "userInfo": {"username": "alice"}, "namespace": "team"}
    verdict = review(VALIDATE_JOB, request, ClusterFacts(authorizations=[]))
    assert not verdict.allowed
    assert verdict.message is not None
    assert MIRROR_ON_WEBHOOK in verdict.message
    # ...and the missing Authorization is reported in the same answer.
    assert "spec.authorizationRef.name: names no Authorization in namespace 'team'" in verdict.message


def test_mirror_mode_on_a_provider_without_it_is_refused_by_the_operator() -> None:
    view = JobView("team", "export", "uid-1", 1, _spec(mode="mirror"), None, None, False)
    parsed = parse_spec(view, None, default_purge_after=None)
    assert parsed.spec is None
    assert parsed.problems is not None and MIRROR_ON_WEBHOOK in parsed.problems


@pytest.mark.parametrize("provider", ["mailchimp", "facebook"])
def test_mirror_mode_on_a_provider_with_it_is_not_refused_for_its_mode(provider: str) -> None:
    warehouse = {"warehouse": {"connectionSecretRef": {"name": "dsn", "key": "url"}, "table": "users"}}
    problems = validate_job_spec(_spec(provider=provider, mode="mirror", source=warehouse), "team")
    assert [p for p in problems if p.path == "spec.mode"] == []
    assert problems  # the config is still checked against this provider's schema


# ---------------------------------------------------------------------- what kubectl apply -f reads


JOB_ITEM = """  - apiVersion: destinations.dev/v1
    kind: DestinationJob
    metadata: {{name: {name}, namespace: team}}
    spec:
      provider: webhook
      type: export
      authorizationRef: {{name: hook}}
      config: {{url: "https://example.com/hook"}}
      source: {{url: {{url: "https://example.com/records.jsonl"}}}}
      schedule: {{every: {every}}}
"""


def test_a_list_file_is_read_item_by_item(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        + JOB_ITEM.format(name="good", every="1h")
        + JOB_ITEM.format(name="bad", every="soon"),
        encoding="utf-8",
    )
    checked, problems = validate_sources([str(path)])
    assert checked == 1
    assert problems == [
        f"{path}: DestinationJob/bad: spec.schedule.every: 'soon' is not a duration such as 90s, 15m, "
        "1h30m, 10h or 90d (units ms, s, m, h, d)"
    ]


def test_nested_lists_typed_lists_and_documents_are_all_read(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: destinations.dev/v1\n  kind: DestinationJobList\n"
        "  items:\n"
        + JOB_ITEM.format(name="one", every="1h").replace("\n  ", "\n    ").replace("  - ", "    - ", 1)
        + "---\napiVersion: v1\nkind: List\nitems: []\n---\n"
        + "apiVersion: v1\nkind: List\nitems:\n"
        + JOB_ITEM.format(name="two", every="2h"),
        encoding="utf-8",
    )
    assert validate_sources([str(path)]) == (2, [])


def test_a_list_whose_items_are_not_a_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: v1\nkind: List\nitems: {a: 1}\n", encoding="utf-8")
    assert validate_sources([str(path)]) == (
        0,
        [f"{path}: List (document 1): items: must be a list of objects"],
    )


def test_a_directory_is_read_as_kubectl_apply_reads_it(tmp_path: Path) -> None:
    (tmp_path / "a-job.yaml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n" + JOB_ITEM.format(name="one", every="soon"), encoding="utf-8"
    )
    (tmp_path / "b-job.yml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n" + JOB_ITEM.format(name="two", every="1h"), encoding="utf-8"
    )
    (tmp_path / "notes.txt").write_text("not a manifest: kubectl skips it", encoding="utf-8")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "c.yaml").write_text("kind: Unknown\n", encoding="utf-8")  # not recursive
    checked, problems = validate_sources([str(tmp_path)])
    assert checked == 1
    assert problems == [
        f"{tmp_path / 'a-job.yaml'}: DestinationJob/one: spec.schedule.every: 'soon' is not a duration "
        "such as 90s, 15m, 1h30m, 10h or 90d (units ms, s, m, h, d)"
    ]


def test_the_literal_label_case_is_refused_by_admission_naming_the_field() -> None:
    job = {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {"name": "export", "namespace": "team"},
        "spec": _spec(podTemplate={"labels": {"team": "growth team"}}),
    }
    request = {"operation": "CREATE", "object": job, "userInfo": {"username": "alice"}, "namespace": "team"}
    verdict = review(VALIDATE_JOB, request, ClusterFacts(authorizations=[]))
    assert not verdict.allowed and verdict.message is not None
    assert verdict.message.startswith(
        "spec.podTemplate.labels.team: 'growth team' must be empty or letters, digits, '-', '_' and '.', "
        "starting and ending with a letter or digit"
    )
