"""The shared validation functions: one Problem per mistake, naming the field, the value and what works."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from destinations.providers.base import Provider
from destinations.validate import (
    Problem,
    validate_authorization_spec,
    validate_job_authorization,
    validate_job_spec,
    validate_manifest,
)

Catalog = dict[str, Provider]


def job(**spec_overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "provider": "acme",
        "type": "export",
        "authorizationRef": {"name": "acme"},
        "config": {"listId": "42"},
        "source": {
            "warehouse": {"connectionSecretRef": {"name": "warehouse", "key": "dsn"}, "table": "users"}
        },
    }
    spec.update(spec_overrides)
    return {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {"name": "acme-export", "namespace": "marketing"},
        "spec": spec,
    }


def authorization(**spec_overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"provider": "acme", "method": "apiKey", "secretRef": {"name": "acme-credentials"}}
    spec.update(spec_overrides)
    return {
        "apiVersion": "destinations.dev/v1",
        "kind": "Authorization",
        "metadata": {"name": "acme", "namespace": "marketing"},
        "spec": spec,
    }


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


def test_a_valid_job_has_no_problems(catalog: Catalog) -> None:
    assert validate_manifest(job(), catalog) == []


def test_a_valid_authorization_has_no_problems(catalog: Catalog) -> None:
    assert validate_manifest(authorization(), catalog) == []


def test_problems_render_as_path_message_and_value() -> None:
    problem = Problem("spec.retry.initialBackoff", "must be a duration", '"5x"')
    assert str(problem) == 'spec.retry.initialBackoff: must be a duration (got "5x")'


def test_a_wrong_api_version_names_the_right_one(catalog: Catalog) -> None:
    manifest = job()
    manifest["apiVersion"] = "destinations.dev/v1beta1"
    assert only(validate_manifest(manifest, catalog)) == Problem(
        "apiVersion", "must be destinations.dev/v1", '"destinations.dev/v1beta1"'
    )


def test_an_unknown_kind_lists_the_known_ones(catalog: Catalog) -> None:
    manifest = job()
    manifest["kind"] = "DestinationJobs"
    problem = only(validate_manifest(manifest, catalog))
    assert problem.path == "kind"
    assert "Authorization or DestinationJob" in problem.message


def test_an_invalid_name_says_what_names_look_like(catalog: Catalog) -> None:
    manifest = job()
    manifest["metadata"]["name"] = "Acme_Export"
    problem = only(validate_manifest(manifest, catalog))
    assert (problem.path, problem.value) == ("metadata.name", '"Acme_Export"')
    assert "lower-case letters" in problem.message


def test_job_names_longer_than_a_label_value_are_refused(catalog: Catalog) -> None:
    manifest = job()
    manifest["metadata"]["name"] = "a" * 64
    assert "at most 63" in only(validate_manifest(manifest, catalog)).message


def test_a_missing_required_field_is_named(catalog: Catalog) -> None:
    manifest = job()
    del manifest["spec"]["authorizationRef"]
    assert only(validate_manifest(manifest, catalog)) == Problem("spec.authorizationRef", "is required")


def test_a_bad_duration_is_named_with_its_path_and_the_accepted_forms(catalog: Catalog) -> None:
    problem = only(validate_manifest(job(retry={"initialBackoff": "5 minutes"}), catalog))
    assert problem.path == "spec.retry.initialBackoff"
    assert "'5 minutes' is not a duration such as 90s" in problem.message


def test_a_bad_cron_points_at_the_cron_field(catalog: Catalog) -> None:
    problem = only(validate_manifest(job(schedule={"cron": "0 25 * * *"}), catalog))
    assert problem.path == "spec.schedule.cron"
    assert "five-field cron expression" in problem.message


def test_a_bad_time_zone_points_at_the_timezone_field(catalog: Catalog) -> None:
    problem = only(validate_manifest(job(schedule={"cron": "0 6 * * *", "timezone": "Paris"}), catalog))
    assert problem.path == "spec.schedule.timezone"
    assert "IANA time zone" in problem.message


def test_an_unknown_provider_lists_the_catalog(catalog: Catalog) -> None:
    problem = only(validate_manifest(job(provider="mailchimpp"), catalog))
    assert problem == Problem(
        "spec.provider", "is not a known provider; known providers: acme", '"mailchimpp"'
    )


def test_an_unknown_job_type_lists_the_job_types(catalog: Catalog) -> None:
    problem = only(validate_manifest(job(type="sync"), catalog))
    assert (problem.path, problem.value) == ("spec.type", '"sync"')
    assert problem.message == "must be one of: import, export, enrichment"


def test_a_job_type_the_provider_lacks_lists_what_it_supports(catalog: Catalog) -> None:
    manifest = job(type="enrichment", sink={"file": {"path": "out.jsonl", "volume": {"hostPath": "/data"}}})
    problem = only(validate_manifest(manifest, catalog))
    assert problem == Problem(
        "spec.type", "is not supported by provider 'acme'; it supports: export", '"enrichment"'
    )


def test_config_is_checked_against_the_providers_model(catalog: Catalog) -> None:
    problem = only(validate_manifest(job(config={"listId": "42", "batchSize": 1000}), catalog))
    assert problem == Problem("spec.config.batchSize", "must be at most 500", "1000")


def test_an_unknown_config_field_lists_the_accepted_ones(catalog: Catalog) -> None:
    problem = only(validate_manifest(job(config={"listId": "42", "list": "x"}), catalog))
    assert problem.path == "spec.config.list"
    assert problem.message == "is not a known field; accepted fields: listId, batchSize"


def test_a_reference_to_another_namespace_is_refused(catalog: Catalog) -> None:
    problem = only(validate_manifest(job(authorizationRef={"name": "acme", "namespace": "other"}), catalog))
    assert (problem.path, problem.value) == ("spec.authorizationRef.namespace", '"other"')
    assert "references to other namespaces are refused" in problem.message


def test_a_reference_to_the_objects_own_namespace_is_accepted(catalog: Catalog) -> None:
    assert validate_manifest(job(authorizationRef={"name": "acme", "namespace": "marketing"}), catalog) == []


def test_an_authorization_secret_in_another_namespace_is_refused(catalog: Catalog) -> None:
    problems = validate_authorization_spec(
        {"provider": "acme", "method": "apiKey", "secretRef": {"name": "s", "namespace": "vault"}},
        "marketing",
        catalog,
    )
    assert only(problems).path == "spec.secretRef.namespace"


def test_an_auth_method_the_provider_does_not_accept_lists_the_accepted_ones(catalog: Catalog) -> None:
    problem = only(validate_manifest(authorization(method="basic"), catalog))
    assert problem == Problem(
        "spec.method", "is not accepted by provider 'acme'; it accepts: apiKey", '"basic"'
    )


def test_a_missing_secret_ref_points_at_secret_ref(catalog: Catalog) -> None:
    manifest = authorization()
    del manifest["spec"]["secretRef"]
    assert only(validate_manifest(manifest, catalog)).path == "spec.secretRef"


def test_every_mistake_is_reported_not_just_the_first(catalog: Catalog) -> None:
    manifest = job(retry={"initialBackoff": "soon"}, runTimeout="forever", paused="maybe")
    assert {p.path for p in validate_manifest(manifest, catalog)} == {
        "spec.retry.initialBackoff",
        "spec.runTimeout",
        "spec.paused",
    }


def test_long_values_are_shortened_in_messages(catalog: Catalog) -> None:
    problem = only(validate_manifest(job(displayName="x" * 300), catalog))
    assert problem.message == "must be at most 256 characters long"
    assert problem.value is not None and len(problem.value) == 60 and problem.value.endswith("…")


def test_list_items_are_addressed_by_index(catalog: Catalog) -> None:
    manifest = job(podTemplate={"tolerations": [{"operator": "Exists"}, {"key": "gpu", "effect": "Never"}]})
    problem = only(validate_manifest(manifest, catalog))
    assert problem.path == "spec.podTemplate.tolerations[1].effect"
    assert problem.message == "must be one of: NoSchedule, PreferNoSchedule, NoExecute"


def test_a_spec_that_is_not_a_mapping_is_one_problem(catalog: Catalog) -> None:
    assert only(validate_job_spec("export everything", "marketing", catalog)).path == "spec"


def test_validation_does_not_change_its_input(catalog: Catalog) -> None:
    manifest = job(schedule={"every": "1h"})
    before = copy.deepcopy(manifest)
    validate_manifest(manifest, catalog)
    assert manifest == before


def test_a_job_and_its_authorization_must_share_a_provider() -> None:
    problem = only(validate_job_authorization(job()["spec"], {"provider": "mailchimp", "method": "apiKey"}))
    assert problem.path == "spec.authorizationRef.name"
    assert "provider 'mailchimp'" in problem.message


@pytest.mark.parametrize("namespace", ["Marketing", "a.b", "x" * 64])
def test_an_invalid_namespace_is_refused(catalog: Catalog, namespace: str) -> None:
    manifest = job()
    manifest["metadata"]["namespace"] = namespace
    assert only(validate_manifest(manifest, catalog)).path == "metadata.namespace"


def test_a_credential_in_a_refused_value_is_masked() -> None:
    """Issue 13: the refusal echoes the value (kubectl apply, admission, the job's status); a URL's
    password and query values are masked in it."""
    manifest = job(source={"url": {"url": "ftp://reader:pw-9c1e@host/x?token=t-44a1"}})
    problem = next(p for p in validate_manifest(manifest, {}) if p.path == "spec.source.url.url")
    assert str(problem) == (
        "spec.source.url.url: must be an http:// or https:// URL without spaces "
        '(got "ftp://reader:***@host/x?token=***")'
    )
