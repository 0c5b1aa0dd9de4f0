"""The API models carry DESIGN.md §2's defaults and refuse what Kubernetes users would get wrong."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from destinations.api.durations import format_duration, parse_duration
from destinations.api.models import (
    AuthorizationSpec,
    AuthorizationStatus,
    DestinationJobSpec,
    Health,
    LocalObjectReference,
    Schedule,
    SyncMode,
)


def job_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "provider": "webhook",
        "type": "export",
        "authorizationRef": {"name": "webhook-auth"},
        "source": {
            "warehouse": {"connectionSecretRef": {"name": "warehouse", "key": "dsn"}, "table": "users"}
        },
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def defaults() -> DestinationJobSpec:
    return DestinationJobSpec.model_validate(job_spec())


def test_retry_defaults_to_one_minute_doubling_up_to_one_hour_failing_after_ten(
    defaults: DestinationJobSpec,
) -> None:
    assert defaults.retry.initial_backoff == timedelta(minutes=1)
    assert defaults.retry.max_backoff == timedelta(hours=1)
    assert defaults.retry.fail_after == timedelta(hours=10)


def test_run_timeout_defaults_to_six_hours(defaults: DestinationJobSpec) -> None:
    assert defaults.run_timeout == timedelta(hours=6)


def test_history_keeps_three_succeeded_and_three_failed_pods_by_default(defaults: DestinationJobSpec) -> None:
    assert (defaults.history.succeeded, defaults.history.failed) == (3, 3)


def test_purge_after_defaults_to_ninety_days(defaults: DestinationJobSpec) -> None:
    assert defaults.purge_after == timedelta(days=90)


def test_purge_after_never_disables_purging() -> None:
    assert DestinationJobSpec.model_validate(job_spec(purgeAfter="never")).purge_after is None


def test_jobs_are_not_paused_and_upsert_by_default(defaults: DestinationJobSpec) -> None:
    assert defaults.paused is False
    assert defaults.mode == SyncMode.UPSERT


def test_schedule_defaults_to_none_meaning_the_providers_default(defaults: DestinationJobSpec) -> None:
    assert defaults.schedule is None


def test_authorization_check_interval_defaults_to_24_hours() -> None:
    spec = AuthorizationSpec.model_validate({"provider": "webhook", "method": "none"})
    assert spec.check_interval == timedelta(hours=24)


def test_authorization_health_is_unknown_until_checked() -> None:
    assert AuthorizationStatus().health == Health.UNKNOWN


def test_defaults_are_written_out_as_users_write_durations(defaults: DestinationJobSpec) -> None:
    manifest = defaults.to_manifest()
    assert manifest["retry"] == {"initialBackoff": "1m", "maxBackoff": "1h", "failAfter": "10h"}
    assert manifest["purgeAfter"] == "90d"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("10h", timedelta(hours=10)),
        ("90d", timedelta(days=90)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_go_style_durations_and_days_are_accepted(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "1 h", "1w", "-1h", "0s", "h1", "P1D"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="duration such as"):
        parse_duration(text)


def test_durations_round_trip_through_their_shortest_form() -> None:
    assert format_duration(parse_duration("1h30m")) == "1h30m"


def test_cron_with_a_time_zone_is_accepted() -> None:
    schedule = Schedule.model_validate({"cron": "0 6 * * *", "timezone": "Europe/Paris"})
    assert (schedule.cron, schedule.timezone) == ("0 6 * * *", "Europe/Paris")


@pytest.mark.parametrize("cron", ["0 6 * *", "61 6 * * *", "0 6 * * * *", "every day"])
def test_a_cron_that_does_not_parse_is_refused(cron: str) -> None:
    with pytest.raises(ValidationError, match="cron"):
        Schedule.model_validate({"cron": cron})


@pytest.mark.parametrize("zone", ["Mars/Olympus", "CEST+2", "../etc/passwd"])
def test_a_time_zone_outside_the_iana_database_is_refused(zone: str) -> None:
    with pytest.raises(ValidationError, match="IANA time zone"):
        Schedule.model_validate({"cron": "0 6 * * *", "timezone": zone})


def test_a_time_zone_without_cron_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone applies to cron"):
        Schedule.model_validate({"every": "1h", "timezone": "UTC"})


@pytest.mark.parametrize(
    "schedule",
    [
        {},
        {"every": "1h", "cron": "0 6 * * *"},
        {"every": "1h", "once": True},
        {"cron": "0 6 * * *", "once": True},
    ],
)
def test_a_schedule_takes_exactly_one_form(schedule: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of every, cron or once"):
        Schedule.model_validate(schedule)


def test_once_false_is_refused_in_favour_of_a_repeating_form() -> None:
    with pytest.raises(ValidationError, match="once must be true"):
        Schedule.model_validate({"once": False})


@pytest.mark.parametrize("name", ["Upper", "under_score", "-leading", "trailing-", "", "a" * 254])
def test_references_must_name_valid_kubernetes_objects(name: str) -> None:
    with pytest.raises(ValidationError):
        LocalObjectReference.model_validate({"name": name})


def test_dotted_lower_case_names_are_valid() -> None:
    assert LocalObjectReference.model_validate({"name": "mailchimp.prod-1"}).name == "mailchimp.prod-1"


def test_unknown_spec_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        DestinationJobSpec.model_validate(job_spec(schedul={"every": "1h"}))


def test_an_export_needs_a_source() -> None:
    spec = job_spec()
    del spec["source"]
    with pytest.raises(ValidationError, match="source is required for export jobs"):
        DestinationJobSpec.model_validate(spec)


def test_mirror_mode_needs_a_warehouse_source() -> None:
    spec = job_spec(mode="mirror", source={"url": {"url": "https://example.com/users.jsonl"}})
    with pytest.raises(ValidationError, match="mode mirror needs a warehouse source"):
        DestinationJobSpec.model_validate(spec)


def test_authorizations_need_a_secret_unless_the_method_is_none() -> None:
    with pytest.raises(ValidationError, match="secretRef is required"):
        AuthorizationSpec.model_validate({"provider": "mailchimp", "method": "apiKey"})
