"""The admission decisions as pure functions: AdmissionReview request → allowed, refusal or patch."""

from __future__ import annotations

from typing import Any

from destinations.controller.admission import (
    MUTATE_JOB,
    VALIDATE_AUTHORIZATION,
    VALIDATE_AUTHORIZATION_DELETE,
    VALIDATE_JOB,
    ClusterFacts,
    apply_json_patch,
    ca_bundle_patch,
    review,
    shortest_cron_gap,
)

CREATED_BY = "destinations.dev/created-by"


def _job(name: str = "export", authorization: str = "hook", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {
            "provider": "webhook",
            "type": "export",
            "authorizationRef": {"name": authorization},
            "config": {"url": "https://example.com/hook"},
            "source": {"url": {"url": "https://example.com/records.jsonl"}},
            "schedule": {"every": "1h"},
            **spec,
        },
    }


def _authorization(name: str = "hook", provider: str = "webhook", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "destinations.dev/v1",
        "kind": "Authorization",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {"provider": provider, "method": "apiKey", "secretRef": {"name": "credentials"}},
        "status": status,
    }


def _request(operation: str, new: Any = None, old: Any = None, user: str = "alice") -> dict[str, Any]:
    return {
        "operation": operation,
        "object": new,
        "oldObject": old,
        "userInfo": {"username": user},
        "namespace": "team",
    }


def test_a_valid_job_with_its_authorization_is_allowed() -> None:
    facts = ClusterFacts(authorizations=[_authorization()])

    verdict = review(VALIDATE_JOB, _request("CREATE", _job()), facts)

    assert verdict.allowed and verdict.message is None and verdict.warnings == ()


def test_a_job_naming_a_missing_authorization_is_refused_with_the_candidates() -> None:
    facts = ClusterFacts(authorizations=[_authorization("other-hook")])

    verdict = review(VALIDATE_JOB, _request("CREATE", _job(authorization="ghost")), facts)

    assert not verdict.allowed
    assert verdict.message == (
        "spec.authorizationRef.name: names no Authorization in namespace 'team'; "
        "Authorizations of provider 'webhook' there: other-hook (got \"ghost\")"
    )


def test_when_the_authorizations_cannot_be_read_the_job_is_allowed_with_a_warning() -> None:
    verdict = review(VALIDATE_JOB, _request("CREATE", _job()), ClusterFacts(unreadable="HTTP 500"))

    assert verdict.allowed
    assert verdict.warnings == ("spec.authorizationRef.name: not checked against the cluster (HTTP 500)",)


def test_an_unchanged_spec_is_never_refused_even_if_invalid() -> None:
    invalid = _job(provider="nope")
    annotated = {**invalid, "metadata": {**invalid["metadata"], "annotations": {"x": "y"}}}

    verdict = review(VALIDATE_JOB, _request("UPDATE", annotated, invalid), ClusterFacts())

    assert verdict.allowed


def test_changing_created_by_is_refused() -> None:
    old = _job()
    old["metadata"]["annotations"] = {CREATED_BY: "alice"}
    new = _job()
    new["metadata"]["annotations"] = {CREATED_BY: "mallory"}

    verdict = review(VALIDATE_JOB, _request("UPDATE", new, old), ClusterFacts())

    assert not verdict.allowed
    assert verdict.message is not None and 'cannot be changed to "mallory"' in verdict.message


def test_an_unhealthy_authorization_is_a_warning() -> None:
    facts = ClusterFacts(authorizations=[_authorization(health="Unhealthy", message="key rejected")])

    verdict = review(VALIDATE_JOB, _request("CREATE", _job()), facts)

    assert verdict.allowed
    assert verdict.warnings[0].startswith(
        "spec.authorizationRef.name: Authorization 'hook' is Unhealthy: key rejected"
    )


def test_a_cron_schedule_more_frequent_than_the_provider_allows_is_a_warning() -> None:
    job = _job(provider="facebook", config={"audienceId": "1"}, schedule={"cron": "*/10 * * * *"})
    facts = ClusterFacts(authorizations=[{**_authorization(provider="facebook"), "spec": {
        "provider": "facebook", "method": "oauth2", "secretRef": {"name": "c"}}}])  # fmt: skip

    verdict = review(VALIDATE_JOB, _request("CREATE", job), facts)

    assert verdict.allowed
    assert "runs 10m apart" in verdict.warnings[0] and "(every 1h)" in verdict.warnings[0]


def test_the_shortest_cron_gap_is_found_across_irregular_schedules() -> None:
    assert shortest_cron_gap("0 6,7 * * *").total_seconds() == 3600


def test_create_stamps_created_by_with_the_requesting_user() -> None:
    verdict = review(MUTATE_JOB, _request("CREATE", _job(), user="alice"), ClusterFacts())

    body = _job()
    apply_json_patch(body, verdict.patch)
    assert body["metadata"]["annotations"] == {CREATED_BY: "alice"}


def test_the_stamp_replaces_a_value_written_in_the_manifest_and_keeps_other_annotations() -> None:
    job = _job()
    job["metadata"]["annotations"] = {CREATED_BY: "alice", "team": "growth"}

    verdict = review(MUTATE_JOB, _request("CREATE", job, user="bob"), ClusterFacts())

    apply_json_patch(job, verdict.patch)
    assert job["metadata"]["annotations"] == {CREATED_BY: "bob", "team": "growth"}


def test_deleting_an_authorization_used_by_active_jobs_is_refused_naming_them() -> None:
    jobs = [
        {**_job("a"), "status": {"phase": "Running"}},
        {**_job("b"), "status": {"phase": "Completed"}},
        _job("c"),  # no status yet: Pending
        _job("d", authorization="another"),
    ]

    verdict = review(
        VALIDATE_AUTHORIZATION_DELETE, _request("DELETE", None, _authorization()), ClusterFacts(jobs=jobs)
    )

    assert not verdict.allowed
    assert verdict.message is not None
    assert (
        "used by 2 Pending, Running, Sleeping or Paused job(s): a (Running), c (Pending)" in verdict.message
    )


def test_deleting_an_authorization_whose_jobs_are_finished_is_allowed() -> None:
    jobs = [{**_job("b"), "status": {"phase": "Failed"}}]

    verdict = review(
        VALIDATE_AUTHORIZATION_DELETE, _request("DELETE", None, _authorization()), ClusterFacts(jobs=jobs)
    )

    assert verdict.allowed


def test_an_authorization_with_a_missing_secret_is_allowed_with_a_warning() -> None:
    facts = ClusterFacts(secret=None, secret_read=True)

    verdict = review(VALIDATE_AUTHORIZATION, _request("CREATE", _authorization()), facts)

    assert verdict.allowed
    assert verdict.warnings[0].startswith("spec.secretRef.name: Secret 'credentials' not found in namespace")


def test_ca_bundle_patch_touches_only_webhooks_without_the_bundle_and_guards_each_by_name() -> None:
    configuration = {
        "webhooks": [
            {"name": "a.destinations.dev", "clientConfig": {"caBundle": "Q0E="}},
            {"name": "b.destinations.dev", "clientConfig": {}},
        ]
    }

    assert ca_bundle_patch(configuration, "Q0E=") == [
        {"op": "test", "path": "/webhooks/1/name", "value": "b.destinations.dev"},
        {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": "Q0E="},
    ]
