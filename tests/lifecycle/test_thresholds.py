"""`spec.alerts`: each threshold crossed is a Warning Event, a history entry and the condition Degraded.

The rules are in operator/destinations/lifecycle/thresholds.py and docs/troubleshooting.md#thresholdexceeded.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from destinations.api.models import DestinationJobSpec, RecordCounts
from destinations.lifecycle import EventType, Reason
from tests.lifecycle.harness import JobHarness, event_reasons, job_spec


def _job(**alerts: Any) -> JobHarness:
    job = JobHarness(job_spec(alerts=alerts))
    job.create()
    return job


def _records(read: int, omitted: int = 0, failed: int = 0) -> RecordCounts:
    return RecordCounts(read=read, added=read - omitted, omitted=omitted, failed=failed)


def _next_run(job: JobHarness) -> None:
    job.wake()
    assert job.status.current_run is not None


def _crossed(job: JobHarness) -> dict[str, tuple[str, str, int | None]]:
    return {c.threshold: (c.value, c.limit, c.run) for c in job.status.thresholds_exceeded}


def _threshold_events(job: JobHarness) -> list[tuple[str, str]]:
    return [
        (event.type.value, event.message)
        for decision in job.decisions
        for event in decision.events
        if event.reason == "ThresholdExceeded"
    ]


def test_rejected_percentage_over_the_limit_posts_a_warning_naming_threshold_value_and_run() -> None:
    job = _job(maxRejectedPercent=10)

    decision = job.finish(records=_records(read=200, omitted=20, failed=5))

    assert event_reasons(decision) == ["Synced", "ThresholdExceeded"]
    assert _threshold_events(job) == [
        (
            "Warning",
            "run 1: maxRejectedPercent exceeded: 12.2% (25 of 205 records), threshold 10%",
        )
    ]
    assert job.status.history[-1].event == "ThresholdExceeded"
    assert job.status.history[-1].run == 1
    assert job.condition("Degraded") == ("True", "MaxRejectedPercentExceeded")


def test_rejected_percentage_at_the_limit_is_within_bounds() -> None:
    job = _job(maxRejectedPercent=10)

    decision = job.finish(records=_records(read=100, omitted=10))

    assert event_reasons(decision) == ["Synced"]
    assert job.condition("Degraded") == ("False", "WithinThresholds")


def test_too_few_records_cross_min_records() -> None:
    job = _job(minRecords=1000)

    job.finish(records=_records(read=3))

    assert _crossed(job) == {"minRecords": ("3 records read", "1000 records", 1)}
    assert job.condition("Degraded") == ("True", "MinRecordsExceeded")


def test_a_drop_against_the_previous_successful_run_crosses_max_record_drop() -> None:
    job = _job(maxRecordDrop=50)
    job.finish(records=_records(read=1000))
    _next_run(job)
    job.fail()  # a failed run in between neither counts nor moves the baseline
    _next_run(job)

    job.finish(records=_records(read=400))

    assert _crossed(job) == {
        "maxRecordDrop": ("60% fewer records (400 read, 1000 in the previous successful run)", "50%", 3)
    }


def test_the_first_successful_run_has_no_baseline_for_max_record_drop() -> None:
    job = _job(maxRecordDrop=50)

    job.finish(records=_records(read=1))

    assert job.status.thresholds_exceeded == []
    assert job.status.last_successful_read == 1


def test_a_slow_run_crosses_max_run_duration_while_in_flight_and_once_only() -> None:
    job = _job(maxRunDuration="10m")
    started = job.started_at
    assert job.decisions[-1].wake_at == started + timedelta(minutes=10, seconds=1)

    in_flight = job.wake()

    assert event_reasons(in_flight) == ["ThresholdExceeded"]
    assert _threshold_events(job)[-1][1] == (
        "run 1: maxRunDuration exceeded: running for 10m1s, threshold 10m"
    )
    assert job.condition("Degraded") == ("True", "MaxRunDurationExceeded")
    finished = job.finish(after=timedelta(minutes=25))
    assert event_reasons(finished) == ["Synced"]  # the same run: no second Event
    assert _crossed(job) == {"maxRunDuration": ("took 25m", "10m", 1)}


def test_a_run_within_bounds_clears_the_crossing_and_degraded_turns_false() -> None:
    job = _job(maxRunDuration="10m")
    job.finish(after=timedelta(minutes=25))
    assert job.condition("Degraded") == ("True", "MaxRunDurationExceeded")
    _next_run(job)

    job.finish(after=timedelta(minutes=2))

    assert job.status.thresholds_exceeded == []
    assert job.condition("Degraded") == ("False", "WithinThresholds")
    assert job.status.conditions[-1].last_transition_time == job.status.last_run.finished_at  # type: ignore[union-attr]


def test_each_run_crossing_again_posts_a_new_event() -> None:
    job = _job(minRecords=10)
    job.finish(records=_records(read=1))
    _next_run(job)

    job.finish(records=_records(read=2))

    assert [message for _, message in _threshold_events(job)] == [
        "run 1: minRecords exceeded: 1 records read, threshold 10 records",
        "run 2: minRecords exceeded: 2 records read, threshold 10 records",
    ]
    assert job.status.thresholds_exceeded[0].since == job.status.history[-4].time


def test_no_success_for_crosses_when_the_clock_passes_it_and_a_success_clears_it() -> None:
    job = JobHarness(
        job_spec(alerts={"noSuccessFor": "3h"}, retry={"maxBackoff": "8h", "initialBackoff": "8h"})
    )
    job.create()
    job.finish()
    _next_run(job)
    job.fail()
    last_success = job.status.last_successful_time
    assert last_success == "2026-01-05T09:02:00Z"
    # Backing off for 8h: the core asks to be woken when noSuccessFor falls due, well before the retry.
    assert job.decisions[-1].wake_at.isoformat() == "2026-01-05T12:02:01+00:00"  # type: ignore[union-attr]

    crossing = job.wake()

    assert event_reasons(crossing) == ["ThresholdExceeded"]
    assert _crossed(job) == {"noSuccessFor": ("3h1s since the last successful run", "3h", 2)}
    assert job.reason == Reason.BACKING_OFF
    job.wake()
    job.finish()
    assert job.status.thresholds_exceeded == []
    assert job.condition("Degraded") == ("False", "WithinThresholds")


def test_no_success_for_counts_from_the_first_error_when_the_job_never_succeeded() -> None:
    job = _job(noSuccessFor="30m")
    job.fail()
    first_error = job.now

    job.advance_to(first_error + timedelta(minutes=31))
    job.tick()

    assert _crossed(job) == {"noSuccessFor": ("31m since the first error (never succeeded)", "30m", 1)}


def test_no_success_for_is_not_judged_while_paused() -> None:
    job = _job(noSuccessFor="30m")
    job.fail()
    job.change_spec(alerts={"noSuccessFor": "30m"}, paused=True)

    job.advance(timedelta(hours=5))
    job.tick()

    assert job.status.thresholds_exceeded == []
    assert job.condition("Degraded") == ("False", "WithinThresholds")


def test_removing_a_threshold_from_the_spec_clears_its_crossing() -> None:
    job = _job(minRecords=10)
    job.finish(records=_records(read=1))

    job.change_spec(alerts={"maxRejectedPercent": 5})

    assert job.status.thresholds_exceeded == []
    assert job.condition("Degraded") == ("False", "WithinThresholds")


def test_several_thresholds_crossed_at_once_each_post_an_event() -> None:
    job = _job(minRecords=10, maxRejectedPercent=1)

    decision = job.finish(records=_records(read=4, omitted=2))

    assert event_reasons(decision) == ["Synced", "ThresholdExceeded", "ThresholdExceeded"]
    assert job.condition("Degraded") == ("True", "ThresholdsExceeded")
    degraded = next(c for c in job.status.conditions if c.type == "Degraded")
    assert "maxRejectedPercent exceeded" in degraded.message
    assert "minRecords exceeded" in degraded.message


def test_failed_runs_are_not_judged_on_their_records() -> None:
    job = _job(minRecords=10)

    decision = job.fail(records=_records(read=1))

    assert event_reasons(decision) == ["Error"]
    assert job.status.thresholds_exceeded == []
    assert job.status.last_failure_time == "2026-01-05T09:02:00Z"


def test_a_degraded_job_is_still_ready_and_never_stalled_for_kstatus() -> None:
    job = _job(minRecords=10)

    job.finish(records=_records(read=1))

    conditions = {condition.type: condition.status for condition in job.status.conditions}
    assert conditions == {"Ready": "True", "Degraded": "True"}


def test_jobs_without_alerts_have_no_degraded_condition() -> None:
    job = JobHarness()
    job.create()
    job.finish(records=_records(read=1))
    assert job.condition("Degraded") is None


def test_threshold_exceeded_is_a_warning_event() -> None:
    job = _job(minRecords=10)
    decision = job.finish(records=_records(read=1))
    assert [event.type for event in decision.events] == [EventType.NORMAL, EventType.WARNING]


@pytest.mark.parametrize(
    ("alerts", "field"),
    [
        ({"maxRejectedPercent": 101}, "maxRejectedPercent"),
        ({"maxRejectedPercent": -1}, "maxRejectedPercent"),
        ({"minRecords": 0}, "minRecords"),
        ({"maxRecordDrop": 0}, "maxRecordDrop"),
        ({"maxRunDuration": "ten minutes"}, "maxRunDuration"),
        ({"noSuccessFor": "1y"}, "noSuccessFor"),
        ({"maxRejectedPercnt": 5}, "maxRejectedPercnt"),
    ],
)
def test_bad_thresholds_are_refused_naming_the_field(alerts: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        job_spec(alerts=alerts)
    assert field in str(raised.value)


def test_alerts_round_trip_through_the_manifest() -> None:
    spec = job_spec(alerts={"maxRunDuration": "90m", "noSuccessFor": "1d", "maxRejectedPercent": 2.5})
    assert spec.to_manifest()["alerts"] == {
        "maxRejectedPercent": 2.5,
        "maxRunDuration": "1h30m",
        "noSuccessFor": "1d",
    }
    assert DestinationJobSpec.model_validate(spec.to_manifest()) == spec
