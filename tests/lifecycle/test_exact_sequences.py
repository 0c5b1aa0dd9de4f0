"""Literal sequences and texts of the lifecycle: backoff 1m, 2m, 4m … capped, and the exact words a user
reads in `status.message`, `lastRun.message` and the Events (DESIGN.md §3, docs/lifecycle.md).

Every expected value is written out here, never computed by the code under test: changing the doubling
to a tripling, the cap, or a message fails one of these tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from destinations.api.models import Phase, RecordCounts, RetryPolicy, RunResult
from destinations.api.runs import RunReport
from destinations.lifecycle import (
    InvalidSpec,
    Reason,
    RunFinished,
    RunLost,
    RunNowRequested,
    RunTimedOut,
    backoff,
)
from destinations.lifecycle.schedule import local_to_instant, next_cron_time
from tests.lifecycle.harness import START, JobHarness, job_spec

MINUTE = timedelta(minutes=1)

# ------------------------------------------------------------------------------------------ backoff


def test_backoff_doubles_from_one_minute_and_is_capped_at_one_hour_by_default() -> None:
    waits = [backoff(RetryPolicy(), errors) for errors in range(1, 10)]
    assert waits == [MINUTE * n for n in (1, 2, 4, 8, 16, 32, 60, 60, 60)]


def test_backoff_before_any_error_and_after_very_many_is_bounded() -> None:
    assert backoff(RetryPolicy(), 0) == MINUTE
    assert backoff(RetryPolicy(), 10_000) == timedelta(hours=1)


def test_backoff_follows_the_jobs_retry_policy() -> None:
    retry = RetryPolicy.model_validate({"initialBackoff": "2m", "maxBackoff": "30m"})
    assert [backoff(retry, errors) for errors in range(1, 7)] == [MINUTE * n for n in (2, 4, 8, 16, 30, 30)]


def test_a_failing_job_sleeps_1m_2m_4m_8m_then_the_cap_between_runs() -> None:
    job = JobHarness(job_spec(retry={"maxBackoff": "10m"}))
    job.create()
    waits = []
    for _ in range(6):
        decision = job.fail(after=timedelta(seconds=30))
        assert job.next_run_at is not None
        waits.append(job.next_run_at - job.now)
        assert decision.wake_at == job.next_run_at
        job.wake()
    assert waits == [MINUTE * n for n in (1, 2, 4, 8, 10, 10)]
    assert job.status.consecutive_errors == 6


def test_the_error_message_names_the_retry_time_and_the_backoff() -> None:
    job = JobHarness()
    job.create()
    decision = job.fail("HTTP 503 from the provider")
    text = "run 1 failed: HTTP 503 from the provider; retrying at 2026-01-05T09:03:00Z (backoff 1m)"
    assert job.status.message == text
    assert [(event.reason, event.message) for event in decision.events] == [("Error", text)]
    assert job.status.last_run is not None and job.status.last_run.message == "HTTP 503 from the provider"


def test_a_success_resets_the_backoff_to_the_initial_one() -> None:
    job = JobHarness()
    job.create()
    job.fail()
    job.wake()
    job.fail()
    job.wake()
    job.finish()
    job.wake()
    job.fail()
    assert job.next_run_at == job.now + MINUTE


def test_giving_up_names_the_errors_the_budget_and_how_to_resume() -> None:
    job = JobHarness(job_spec(retry={"failAfter": "2m"}))
    job.create()
    job.fail("HTTP 500")
    job.wake()
    decision = job.fail("HTTP 502")
    failed = (
        "runs kept failing since 2026-01-05T09:02:00Z, longer than failAfter 2m; last error: HTTP 502. "
        "Set the annotation destinations.dev/requested-at or change the spec to resume"
    )
    assert (job.phase, job.reason, job.status.message) == (Phase.FAILED, Reason.RETRIES_EXHAUSTED, failed)
    assert [(event.reason, event.message) for event in decision.events] == [
        (
            "Error",
            "run 2 failed: HTTP 502; giving up after 2 consecutive errors since 2026-01-05T09:02:00Z",
        ),
        ("Failed", failed),
    ]


# ------------------------------------------------------------------------------------------ timeouts


def test_a_timed_out_run_is_recorded_with_the_timeout_and_backs_off() -> None:
    job = JobHarness(job_spec(runTimeout="30m"))
    job.create()
    job.advance(timedelta(minutes=30))
    job.tick()
    assert job.status.last_run is not None
    assert job.status.last_run.message == "the run took longer than runTimeout 30m and was stopped"
    assert job.status.last_run.finished_at == "2026-01-05T09:30:00Z"
    assert (job.phase, job.reason) == (Phase.SLEEPING, Reason.BACKING_OFF)
    assert job.next_run_at == datetime(2026, 1, 5, 9, 31, tzinfo=UTC)


def test_a_timed_out_observation_of_the_current_run_uses_the_same_words() -> None:
    job = JobHarness(job_spec(runTimeout="2h"))
    job.create()
    job.advance(timedelta(minutes=5))
    job.observe(RunTimedOut(1))
    assert job.status.last_run is not None
    assert job.status.last_run.message == "the run took longer than runTimeout 2h and was stopped"
    assert job.next_run_at == START + timedelta(minutes=6)


# ------------------------------------------------------------------------------------------ resuming


def test_run_now_resumes_a_failed_job_with_a_fresh_error_budget_and_runs_at_once() -> None:
    job = JobHarness(job_spec(retry={"failAfter": "1m"}))
    job.create()
    job.fail()
    job.wake()
    job.fail()
    assert job.phase == Phase.FAILED
    decision = job.observe(RunNowRequested("2026-01-05T10:00:00Z"))
    assert [(event.reason, event.message) for event in decision.events] == [
        ("Resumed", "resumed from Failed by a run-now request (2026-01-05T10:00:00Z)")
    ]
    assert job.status.consecutive_errors == 0 and job.status.errors_since is None
    assert (job.phase, job.current_run_number) == (Phase.RUNNING, 3)


def test_a_spec_change_resumes_a_failed_job_into_sleeping_until_its_regular_time() -> None:
    job = JobHarness(job_spec(retry={"failAfter": "1m"}))
    job.create()
    job.fail()
    job.wake()
    job.fail()
    assert job.phase == Phase.FAILED
    decision = job.change_spec(retry={"failAfter": "1m"}, displayName="Fixed export")
    assert [(event.reason, event.message) for event in decision.events] == [
        ("Resumed", "resumed from Failed by a spec change")
    ]
    assert (job.phase, job.reason) == (Phase.SLEEPING, Reason.SCHEDULED)
    assert job.status.message == "last run 2 failed; next run due at 2026-01-05T10:03:00Z"


def test_unpausing_a_job_that_never_ran_is_pending_with_its_first_run_message() -> None:
    job = JobHarness(job_spec(paused=True))
    job.create()
    job.advance(timedelta(minutes=5))
    job.change_spec(paused=False)
    assert job.status.history[-2].message == "resumed: spec.paused is false"
    # Overdue (every 1h from creation, never ran): due at once, so the run starts in the same decision.
    assert job.phase == Phase.RUNNING


def test_unpausing_a_job_that_ran_sleeps_until_its_next_run_with_the_last_result() -> None:
    job = JobHarness()
    job.create()
    job.finish()
    job.change_spec(paused=True)
    job.change_spec(paused=False)
    assert (job.phase, job.reason) == (Phase.SLEEPING, Reason.SCHEDULED)
    assert job.status.message == "last run 1 succeeded; next run due at 2026-01-05T10:00:00Z"


def test_unpausing_a_job_that_never_ran_before_its_first_run_is_pending() -> None:
    job = JobHarness(job_spec(schedule={"cron": "0 12 * * *"}, paused=True))
    job.create()
    job.change_spec(schedule={"cron": "0 12 * * *"}, paused=False)
    assert (job.phase, job.reason) == (Phase.PENDING, Reason.FIRST_RUN_SCHEDULED)
    assert job.status.message == "first run due at 2026-01-05T12:00:00Z"


# ------------------------------------------------------------------------------------ invalid specs

PROBLEMS = "schedule.cron: '61 * * * *' is not a valid five-field cron expression"


def _running_then_invalid() -> JobHarness:
    job = JobHarness()
    job.create()
    job.advance(timedelta(minutes=3))
    job.spec = None
    job.generation += 1
    job.observe(InvalidSpec(PROBLEMS))
    return job


def test_a_spec_turning_invalid_is_observed_with_its_generation_and_time() -> None:
    job = _running_then_invalid()
    assert job.status.observed_generation == 2
    assert job.status.last_updated == "2026-01-05T09:03:00Z"
    assert job.status.current_run is not None  # the run in flight finishes first


def test_a_run_finishing_under_an_invalid_spec_keeps_its_message_and_fails_the_job() -> None:
    job = _running_then_invalid()
    report = RunReport(result=RunResult.SUCCEEDED, records=RecordCounts(read=2, added=2), message="2 sent")
    decision = job.observe(RunFinished(1, report))
    assert job.status.last_run is not None and job.status.last_run.message == "2 sent"
    assert (job.phase, job.reason) == (Phase.FAILED, Reason.INVALID_SPEC)
    assert job.status.message == f"the spec is invalid: {PROBLEMS}"
    assert [(event.reason, event.message) for event in decision.events] == [
        ("Synced", "run 1 synced: 2 read, 2 added, 0 updated, 0 removed, 0 omitted, 0 failed (2 sent)"),
        ("Failed", f"the spec is invalid: {PROBLEMS}"),
    ]


def test_a_run_lost_under_an_invalid_spec_is_an_error_without_retry() -> None:
    job = _running_then_invalid()
    decision = job.observe(RunLost(1, "the pod was evicted"))
    assert job.status.last_run is not None
    assert job.status.last_run.message == "the sync pod was lost: the pod was evicted"
    assert [(event.reason, event.message) for event in decision.events] == [
        ("Error", "run 1 failed: the sync pod was lost: the pod was evicted; no retry: the spec is invalid"),
        ("Failed", f"the spec is invalid: {PROBLEMS}"),
    ]


def test_an_invalid_new_job_records_who_created_it() -> None:
    job = JobHarness()
    job.spec = None
    job.create()
    assert job.status.created_by == "alice@example.com"
    assert (job.phase, job.reason) == (Phase.FAILED, Reason.INVALID_SPEC)


def test_an_invalid_spec_without_a_new_generation_keeps_the_observed_one() -> None:
    job = _running_then_invalid()
    job.advance(MINUTE)
    job.tick()
    assert job.status.observed_generation == 2
    assert job.status.last_updated == "2026-01-05T09:03:00Z"


# ------------------------------------------------------------------------------------------ schedule


def test_a_cron_time_equal_to_the_reference_is_not_the_next_one() -> None:
    after = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
    assert next_cron_time("0 6 * * *", None, after=after) == datetime(2026, 1, 6, 6, 0, tzinfo=UTC)


def test_a_cron_that_cannot_be_read_is_refused_naming_the_expression_and_time() -> None:
    with pytest.raises(ValueError, match=r"cron 'not a cron' has no time after 2026-01-05T06:00:00\+00:00: "):
        next_cron_time("not a cron", None, after=datetime(2026, 1, 5, 6, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("wall", "expected_utc"),
    [
        # Paris springs forward on 2026-03-29 at 02:00 CET to 03:00 CEST (01:00 UTC): the gap ends then.
        (datetime(2026, 3, 29, 2, 31), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        (datetime(2026, 3, 29, 2, 0), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        # It falls back on 2026-10-25 at 03:00 CEST to 02:00 CET: 02:30 happens twice, first at 00:30 UTC.
        (datetime(2026, 10, 25, 2, 30), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        # An ordinary winter and summer time.
        (datetime(2026, 1, 5, 7, 15), datetime(2026, 1, 5, 6, 15, tzinfo=UTC)),
        (datetime(2026, 7, 5, 7, 15), datetime(2026, 7, 5, 5, 15, tzinfo=UTC)),
    ],
)
def test_wall_clock_times_map_to_instants_in_paris(wall: datetime, expected_utc: datetime) -> None:
    from zoneinfo import ZoneInfo

    instant = local_to_instant(wall, ZoneInfo("Europe/Paris"))
    assert instant == expected_utc
    assert instant.utcoffset() == timedelta(0)


# ------------------------------------------------------------------------------------- spec changes


def test_pausing_a_failed_job_pauses_it_with_a_fresh_error_budget() -> None:
    job = JobHarness(job_spec(retry={"failAfter": "1m"}))
    job.create()
    job.fail()
    job.wake()
    job.fail()
    assert job.phase == Phase.FAILED
    job.advance(MINUTE)
    decision = job.change_spec(retry={"failAfter": "1m"}, paused=True)
    assert (job.phase, job.reason, job.status.message) == (
        Phase.PAUSED,
        Reason.PAUSED,
        "paused by spec.paused; set it to false to resume",
    )
    assert [(event.reason, event.message) for event in decision.events] == [
        ("Paused", "paused by spec.paused (the job was Failed)")
    ]
    assert (job.status.consecutive_errors, job.status.errors_since) == (0, None)
    assert (job.status.observed_generation, job.status.last_updated) == (2, "2026-01-05T09:06:00Z")
    assert job.status.phase_since == "2026-01-05T09:06:00Z"


def test_a_schedule_change_reschedules_a_pending_job_from_its_creation() -> None:
    job = JobHarness(job_spec(schedule={"cron": "0 12 * * *"}))
    job.create()
    job.advance(timedelta(minutes=10))
    decision = job.change_spec(schedule={"cron": "30 10 * * *"})
    assert (job.phase, job.reason) == (Phase.PENDING, Reason.FIRST_RUN_SCHEDULED)
    assert job.status.message == "first run due at 2026-01-05T10:30:00Z"
    assert job.next_run_at == datetime(2026, 1, 5, 10, 30, tzinfo=UTC)
    assert decision.wake_at == datetime(2026, 1, 5, 10, 30, tzinfo=UTC)
    assert (job.status.observed_generation, job.status.last_updated) == (2, "2026-01-05T09:10:00Z")
    assert job.status.phase_since == "2026-01-05T09:00:00Z"  # still the same phase
    assert decision.events == ()


def test_a_schedule_change_reschedules_a_sleeping_job_from_its_last_start() -> None:
    job = JobHarness()
    job.create()
    job.finish()
    decision = job.change_spec(schedule={"every": "3h"})
    assert (job.phase, job.reason) == (Phase.SLEEPING, Reason.SCHEDULED)
    assert job.status.message == "last run 1 succeeded; next run due at 2026-01-05T12:00:00Z"
    assert decision.wake_at == datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert job.status.last_updated == "2026-01-05T09:02:00Z"


def test_a_spec_change_keeps_a_backoff_and_its_message() -> None:
    job = JobHarness()
    job.create()
    job.fail("HTTP 503")
    before = job.status.message
    job.change_spec(schedule={"every": "3h"})
    assert (job.phase, job.reason, job.status.message) == (Phase.SLEEPING, Reason.BACKING_OFF, before)
    assert job.next_run_at == datetime(2026, 1, 5, 9, 3, tzinfo=UTC)
    assert job.status.observed_generation == 2
