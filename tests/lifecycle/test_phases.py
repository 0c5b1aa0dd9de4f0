"""Every row of the lifecycle table (DESIGN.md §3): how a job enters and leaves each phase."""

from __future__ import annotations

from datetime import timedelta

import pytest

from destinations.api.models import DestinationJobStatus, Phase, RecordCounts, RunResult
from destinations.api.runs import RunReport
from destinations.lifecycle import (
    AuthorizationNotReady,
    AuthorizationReady,
    CapacityFull,
    DeletePod,
    Reason,
    RunFinished,
    RunLost,
    RunNowRequested,
    RunTimedOut,
    TimerFired,
    WakeAt,
    decide,
    parse_time,
)
from tests.lifecycle.harness import (
    JOB_NAME,
    PROVIDER_DEFAULT_SCHEDULE,
    START,
    JobHarness,
    created_pods,
    job_spec,
)

# ------------------------------------------------------------------------------------------ Pending


def test_new_job_is_initialised_with_who_created_it_and_when() -> None:
    job = JobHarness(job_spec(schedule={"cron": "0 6 * * *"}))
    job.create()
    assert job.phase == Phase.PENDING
    assert job.status.created_by == "alice@example.com"
    assert job.status.last_updated == "2026-01-05T09:00:00Z"
    assert job.status.observed_generation == 1


def test_new_every_job_starts_its_first_run_immediately(job: JobHarness) -> None:
    decision = job.create()
    assert job.phase == Phase.RUNNING
    assert created_pods(decision)[0].pod_name == f"{JOB_NAME}-run-1"


def test_new_cron_job_waits_in_pending_for_its_first_slot() -> None:
    job = JobHarness(job_spec(schedule={"cron": "0 6 * * *", "timezone": "Europe/Paris"}))
    decision = job.create()
    assert (job.phase, job.reason) == (Phase.PENDING, Reason.FIRST_RUN_SCHEDULED)
    assert job.status.next_run_at == "2026-01-06T05:00:00Z"
    assert decision.wake_at == job.next_run_at


def test_job_without_a_schedule_uses_the_providers_default() -> None:
    job = JobHarness(job_spec(schedule=None))
    job.create()
    job.finish()
    assert job.next_run_at == START + PROVIDER_DEFAULT_SCHEDULE.every  # type: ignore[operator]


def test_pending_job_waits_with_a_message_while_its_authorization_is_not_ready(job: JobHarness) -> None:
    decision = job.create(authorization_problem="Secret receiver-credentials not found")
    assert (job.phase, job.reason) == (Phase.PENDING, Reason.WAITING_FOR_AUTHORIZATION)
    assert "Secret receiver-credentials not found" in (job.status.message or "")
    assert "receiver" in (job.status.message or "")
    assert created_pods(decision) == []


def test_pending_job_not_yet_due_shows_its_unready_authorization() -> None:
    job = JobHarness(job_spec(schedule={"cron": "0 6 * * *"}))
    job.create()
    job.observe(AuthorizationNotReady("credentials rejected: 401"))
    assert (job.phase, job.reason) == (Phase.PENDING, Reason.WAITING_FOR_AUTHORIZATION)
    job.observe(AuthorizationReady())
    assert (job.phase, job.reason) == (Phase.PENDING, Reason.FIRST_RUN_SCHEDULED)


def test_pending_job_starts_when_its_authorization_becomes_ready(job: JobHarness) -> None:
    job.create(authorization_problem="unhealthy")
    job.advance(timedelta(minutes=5))
    decision = job.observe(AuthorizationReady())
    assert job.phase == Phase.RUNNING
    assert len(created_pods(decision)) == 1


def test_job_waiting_for_its_authorization_asks_to_be_checked_again_soon(job: JobHarness) -> None:
    decision = job.create(authorization_problem="unhealthy")
    assert decision.wake_at == START + timedelta(minutes=1)


def test_pending_job_pauses_when_paused() -> None:
    job = JobHarness(job_spec(schedule={"cron": "0 6 * * *"}))
    job.create()
    job.change_spec(schedule={"cron": "0 6 * * *"}, paused=True)
    assert (job.phase, job.reason) == (Phase.PAUSED, Reason.PAUSED)
    assert job.status.next_run_at is None


def test_job_created_paused_never_starts_a_run() -> None:
    job = JobHarness(job_spec(paused=True))
    decision = job.create()
    assert job.phase == Phase.PAUSED
    assert created_pods(decision) == []


# ------------------------------------------------------------------------------------------ Running


def test_running_job_records_its_run_in_flight(job: JobHarness) -> None:
    job.create()
    assert job.status.current_run is not None
    assert job.status.current_run.number == 1
    assert job.status.current_run.pod == "vip-export-run-1"
    assert job.status.current_run.started_at == "2026-01-05T09:00:00Z"
    assert job.status.runs.total == 1


def test_successful_run_sleeps_until_the_next_scheduled_time(job: JobHarness) -> None:
    job.create()
    job.finish(records=RecordCounts(read=10, added=7, updated=3))
    assert (job.phase, job.reason) == (Phase.SLEEPING, Reason.SCHEDULED)
    assert job.next_run_at == START + timedelta(hours=1)
    assert job.status.last_run is not None
    assert job.status.last_run.result == RunResult.SUCCEEDED
    assert job.status.last_run.records.added == 7
    assert job.status.current_run is None
    assert job.status.runs.succeeded == 1


def test_successful_once_run_completes_the_job() -> None:
    job = JobHarness(job_spec(schedule={"once": True}))
    job.create()
    job.finish()
    assert (job.phase, job.reason) == (Phase.COMPLETED, Reason.COMPLETED)
    assert job.status.next_run_at is None


def test_failed_once_run_backs_off_and_retries() -> None:
    job = JobHarness(job_spec(schedule={"once": True}))
    job.create()
    job.fail()
    decision = job.wake()
    assert job.phase == Phase.RUNNING
    assert created_pods(decision)[0].run == 2


def test_failed_run_backs_off_with_the_initial_backoff(job: JobHarness) -> None:
    job.create()
    job.fail("HTTP 503")
    assert (job.phase, job.reason) == (Phase.SLEEPING, Reason.BACKING_OFF)
    assert job.next_run_at == job.now + timedelta(minutes=1)
    assert job.status.consecutive_errors == 1
    assert job.status.errors_since == "2026-01-05T09:02:00Z"
    assert job.status.runs.failed == 1


def test_rate_limited_run_sleeps_without_counting_an_error(job: JobHarness) -> None:
    job.create()
    job.finish(RunResult.RATE_LIMITED, message="429 Too Many Requests", retry_after_seconds=900)
    assert (job.phase, job.reason) == (Phase.SLEEPING, Reason.RATE_LIMITED)
    assert job.next_run_at == job.now + timedelta(minutes=15)
    assert job.status.consecutive_errors == 0
    assert job.status.errors_since is None


def test_rate_limited_run_keeps_an_ongoing_error_streak_unchanged(job: JobHarness) -> None:
    job.create()
    job.fail()
    job.wake()
    job.finish(RunResult.RATE_LIMITED, retry_after_seconds=60)
    assert job.status.consecutive_errors == 1
    assert job.status.errors_since == "2026-01-05T09:02:00Z"


def test_rate_limited_run_without_a_provider_time_waits_the_initial_backoff(job: JobHarness) -> None:
    job.create()
    job.finish(RunResult.RATE_LIMITED)
    assert job.next_run_at == job.now + timedelta(minutes=1)


def test_lost_pod_counts_as_an_error(job: JobHarness) -> None:
    job.create()
    job.advance(timedelta(minutes=3))
    job.observe(RunLost(1, "the pod was evicted (node pressure)"))
    assert (job.phase, job.reason) == (Phase.SLEEPING, Reason.BACKING_OFF)
    assert job.status.consecutive_errors == 1
    assert job.status.last_run is not None
    assert "evicted" in job.status.last_run.message


def test_run_longer_than_run_timeout_is_stopped_and_counts_as_an_error() -> None:
    job = JobHarness(job_spec(runTimeout="30m"))
    decision = job.create()
    assert decision.wake_at == START + timedelta(minutes=30)
    decision = job.wake()
    assert DeletePod("vip-export-run-1", 1) in decision.actions
    assert (job.phase, job.reason) == (Phase.SLEEPING, Reason.BACKING_OFF)
    assert job.status.consecutive_errors == 1


def test_run_timed_out_observation_stops_the_run(job: JobHarness) -> None:
    job.create()
    decision = job.observe(RunTimedOut(1))
    assert DeletePod("vip-export-run-1", 1) in decision.actions
    assert job.status.current_run is None


@pytest.mark.parametrize(
    "observation",
    [
        TimerFired(),
        RunNowRequested("2026-01-05T09:01:00Z"),
        AuthorizationReady(),
        RunLost(7, "gone"),
        RunTimedOut(7),
    ],
)
def test_runs_never_overlap(job: JobHarness, observation: object) -> None:
    job.create()
    job.advance(timedelta(hours=2))
    decision = job.observe(observation)  # type: ignore[arg-type]
    assert created_pods(decision) == []
    assert job.current_run_number == 1


def test_repeated_run_finished_for_an_old_run_is_ignored(job: JobHarness) -> None:
    job.create()
    job.finish()
    before = job.status
    job.advance(timedelta(minutes=1))
    decision = job.observe(RunFinished(1, RunReport(result=RunResult.FAILED)))
    assert not decision.status_changed
    assert job.status == before


def test_run_report_finishing_before_it_started_is_clamped_to_the_start(job: JobHarness) -> None:
    job.create()
    job.advance(timedelta(minutes=5))
    job.observe(RunFinished(1, RunReport(result=RunResult.SUCCEEDED), finished_at=START - timedelta(hours=1)))
    assert job.status.last_run is not None
    assert job.status.last_run.finished_at == "2026-01-05T09:00:00Z"


# ----------------------------------------------------------------------------------------- Sleeping


def test_sleeping_job_does_not_write_when_woken_early(job: JobHarness) -> None:
    job.create()
    job.finish()
    job.advance(timedelta(minutes=10))
    decision = job.tick()
    assert not decision.status_changed
    assert decision.actions == (WakeAt(START + timedelta(hours=1)),)


def test_sleeping_job_runs_when_next_run_at_is_reached(job: JobHarness) -> None:
    job.create()
    job.finish()
    decision = job.wake()
    assert job.phase == Phase.RUNNING
    assert created_pods(decision)[0].run == 2
    assert job.started_at == START + timedelta(hours=1)


def test_runs_missed_while_the_operator_was_down_start_once(job: JobHarness) -> None:
    job.create()
    job.finish()
    job.advance(timedelta(days=2))
    decision = job.tick()
    assert len(created_pods(decision)) == 1
    restarted_at = job.started_at
    job.finish()
    assert job.next_run_at == restarted_at + timedelta(hours=1)
    assert len(created_pods(job.tick())) == 0


def test_run_now_request_starts_a_sleeping_job_immediately_and_is_echoed(job: JobHarness) -> None:
    job.create()
    job.finish()
    job.advance(timedelta(minutes=5))
    decision = job.observe(RunNowRequested("2026-01-05T09:07:00Z"))
    assert job.phase == Phase.RUNNING
    assert len(created_pods(decision)) == 1
    assert job.status.last_handled_request_at == "2026-01-05T09:07:00Z"


def test_run_now_request_already_handled_is_ignored(job: JobHarness) -> None:
    job.create()
    job.observe(RunNowRequested("first"))
    job.finish()
    decision = job.observe(RunNowRequested("first"))
    assert job.phase == Phase.SLEEPING
    assert not decision.status_changed


def test_run_now_request_during_a_run_is_acknowledged_without_a_second_run(job: JobHarness) -> None:
    job.create()
    decision = job.observe(RunNowRequested("again"))
    assert created_pods(decision) == []
    assert job.status.last_handled_request_at == "again"


def test_sleeping_job_pauses(job: JobHarness) -> None:
    job.create()
    job.finish()
    job.change_spec(paused=True)
    assert job.phase == Phase.PAUSED


def test_due_run_is_queued_while_the_global_run_limit_is_reached(job: JobHarness) -> None:
    job.create()
    job.finish()
    job.advance(timedelta(hours=1))
    decision = job.observe(CapacityFull())
    assert (job.phase, job.reason) == (Phase.SLEEPING, Reason.QUEUED_FOR_CAPACITY)
    assert "queued" in (job.status.message or "")
    assert decision.wake_at == job.now + timedelta(seconds=15)
    again = job.observe(CapacityFull())
    assert not again.status_changed
    job.advance(timedelta(seconds=15))
    assert len(created_pods(job.tick())) == 1


def test_job_not_due_is_unaffected_by_the_global_run_limit(job: JobHarness) -> None:
    job.create()
    job.finish()
    decision = job.tick(capacity_available=False)
    assert not decision.status_changed


def test_sleeping_job_due_waits_for_its_authorization_then_runs(job: JobHarness) -> None:
    job.create()
    job.finish()
    job.advance(timedelta(hours=1))
    job.observe(AuthorizationNotReady("Secret receiver-credentials has no key apiKey"))
    assert (job.phase, job.reason) == (Phase.SLEEPING, Reason.WAITING_FOR_AUTHORIZATION)
    job.observe(AuthorizationReady())
    assert job.phase == Phase.RUNNING


def test_schedule_change_reschedules_a_sleeping_job(job: JobHarness) -> None:
    job.create()
    job.finish()
    job.change_spec(schedule={"every": "15m"})
    assert job.next_run_at == START + timedelta(minutes=15)


def test_schedule_change_keeps_a_backoff_time(job: JobHarness) -> None:
    job.create()
    job.fail()
    retry_at = job.next_run_at
    job.change_spec(schedule={"every": "15m"})
    assert job.next_run_at == retry_at


# ------------------------------------------------------------------------------------------- Failed


def _fail_for_good(job: JobHarness) -> None:
    job.create()
    while job.phase != Phase.FAILED:
        job.fail()
        if job.phase == Phase.SLEEPING:
            job.wake()


def test_errors_for_longer_than_fail_after_fail_the_job() -> None:
    job = JobHarness(job_spec(retry={"initialBackoff": "1m", "maxBackoff": "1h", "failAfter": "10h"}))
    _fail_for_good(job)
    assert job.reason == Reason.RETRIES_EXHAUSTED
    assert job.status.errors_since is not None
    failed_after = job.now - parse_time(job.status.errors_since)
    assert failed_after >= timedelta(hours=10)
    assert job.status.next_run_at is None


def test_failed_job_starts_no_run_when_the_timer_fires(job: JobHarness) -> None:
    _fail_for_good(job)
    job.advance(timedelta(days=1))
    assert created_pods(job.tick()) == []


def test_run_now_resumes_a_failed_job(job: JobHarness) -> None:
    _fail_for_good(job)
    decision = job.observe(RunNowRequested("retry-please"))
    assert job.phase == Phase.RUNNING
    assert len(created_pods(decision)) == 1
    assert job.status.consecutive_errors == 0
    assert job.status.last_handled_request_at == "retry-please"


def test_spec_change_resumes_a_failed_job_with_counters_reset(job: JobHarness) -> None:
    _fail_for_good(job)
    job.advance(timedelta(minutes=1))
    job.change_spec(schedule={"every": "2h"})
    assert job.status.consecutive_errors == 0
    assert job.status.errors_since is None
    assert job.phase in (Phase.SLEEPING, Phase.RUNNING)


def test_spec_change_resumes_a_failed_job_into_sleeping_until_due(job: JobHarness) -> None:
    _fail_for_good(job)
    job.change_spec(schedule={"cron": "0 6 * * *"})
    assert (job.phase, job.reason) == (Phase.SLEEPING, Reason.SCHEDULED)


def test_pausing_a_failed_job_pauses_it(job: JobHarness) -> None:
    _fail_for_good(job)
    job.change_spec(paused=True)
    assert job.phase == Phase.PAUSED
    assert job.status.consecutive_errors == 0


# ------------------------------------------------------------------------------------------- Paused


def test_unpausing_runs_immediately_when_overdue(job: JobHarness) -> None:
    job.create()
    job.finish()
    job.change_spec(paused=True)
    job.advance(timedelta(hours=3))
    decision = job.change_spec(paused=False)
    assert job.phase == Phase.RUNNING
    assert len(created_pods(decision)) == 1


def test_unpausing_waits_for_the_next_due_time_when_not_overdue(job: JobHarness) -> None:
    job.create()
    job.finish()
    job.change_spec(paused=True)
    job.change_spec(paused=False)
    assert (job.phase, job.reason) == (Phase.SLEEPING, Reason.SCHEDULED)
    assert job.next_run_at == START + timedelta(hours=1)


def test_unpausing_a_job_that_never_ran_returns_it_to_pending() -> None:
    job = JobHarness(job_spec(schedule={"cron": "0 6 * * *"}, paused=True))
    job.create()
    job.change_spec(schedule={"cron": "0 6 * * *"}, paused=False)
    assert (job.phase, job.reason) == (Phase.PENDING, Reason.FIRST_RUN_SCHEDULED)


def test_pausing_a_running_job_lets_the_run_finish_then_pauses(job: JobHarness) -> None:
    job.create()
    decision = job.change_spec(paused=True)
    assert (job.phase, job.reason) == (Phase.RUNNING, Reason.PAUSE_REQUESTED)
    assert not [action for action in decision.actions if isinstance(action, DeletePod)]
    job.finish(records=RecordCounts(read=5, added=5))
    assert job.phase == Phase.PAUSED
    assert job.status.last_run is not None
    assert job.status.last_run.records.added == 5


def test_unpausing_before_the_run_finishes_keeps_the_job_going(job: JobHarness) -> None:
    job.create()
    job.change_spec(paused=True)
    job.change_spec(paused=False)
    assert (job.phase, job.reason) == (Phase.RUNNING, Reason.RUN_IN_PROGRESS)
    job.finish()
    assert job.phase == Phase.SLEEPING


def test_pause_requested_during_a_once_run_that_succeeds_completes_the_job() -> None:
    job = JobHarness(job_spec(schedule={"once": True}))
    job.create()
    job.change_spec(schedule={"once": True}, paused=True)
    job.finish()
    assert job.phase == Phase.COMPLETED


def test_pause_requested_during_a_run_that_exhausts_the_retries_pauses_instead_of_failing() -> None:
    job = JobHarness(job_spec(retry={"failAfter": "1m"}))
    job.create()
    job.fail()
    job.wake()
    job.change_spec(retry={"failAfter": "1m"}, paused=True)
    job.fail()
    assert job.phase == Phase.PAUSED
    assert job.status.consecutive_errors == 2


def test_run_now_on_a_paused_job_is_acknowledged_but_runs_nothing(job: JobHarness) -> None:
    job.create()
    job.finish()
    job.change_spec(paused=True)
    decision = job.observe(RunNowRequested("now"))
    assert job.phase == Phase.PAUSED
    assert created_pods(decision) == []
    assert job.status.last_handled_request_at == "now"


def test_resuming_from_paused_starts_a_fresh_error_budget(job: JobHarness) -> None:
    job.create()
    job.fail()
    job.change_spec(paused=True)
    job.change_spec(paused=False)
    assert job.status.consecutive_errors == 0
    assert job.status.errors_since is None


# ---------------------------------------------------------------------------------------- Completed


@pytest.mark.parametrize("observation", [TimerFired(), RunNowRequested("again"), AuthorizationReady()])
def test_completed_job_never_runs_again(observation: object) -> None:
    job = JobHarness(job_spec(schedule={"once": True}))
    job.create()
    job.finish()
    job.advance(timedelta(days=30))
    decision = job.observe(observation)  # type: ignore[arg-type]
    assert job.phase == Phase.COMPLETED
    assert created_pods(decision) == []


def test_spec_change_on_a_completed_job_only_records_the_generation() -> None:
    job = JobHarness(job_spec(schedule={"once": True}))
    job.create()
    job.finish()
    job.change_spec(schedule={"once": True}, description="edited")
    assert job.phase == Phase.COMPLETED
    assert job.status.observed_generation == 2


# ------------------------------------------------------------------------------------------- inputs


def test_now_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(
            job_spec(),
            DestinationJobStatus(),
            TimerFired(),
            START.replace(tzinfo=None),
            job_name=JOB_NAME,
            generation=1,
            default_schedule=PROVIDER_DEFAULT_SCHEDULE,
        )


def test_first_observation_other_than_job_observed_still_initialises_the_job(job: JobHarness) -> None:
    job.tick()
    assert job.phase == Phase.RUNNING
    assert job.status.created_by is None


def test_decide_never_edits_the_status_it_is_given(job: JobHarness) -> None:
    job.create()
    before = job.status
    snapshot = before.model_dump()
    job.finish(records=RecordCounts(read=1, added=1))
    assert before.model_dump() == snapshot
    assert job.status.runs.succeeded == 1
