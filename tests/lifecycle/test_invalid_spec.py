"""A spec that fails validation (webhooks off): Failed with InvalidSpec, Stalled, no run."""

from __future__ import annotations

from datetime import timedelta

from destinations.api.models import Phase, RunResult
from destinations.api.runs import RunReport
from destinations.lifecycle import (
    DeletePod,
    InvalidSpec,
    JobObserved,
    Reason,
    RunFinished,
    RunLost,
    RunNowRequested,
    RunTimedOut,
    TimerFired,
)
from tests.lifecycle.harness import JobHarness, created_pods, event_reasons, job_spec

PROBLEMS = "schedule.cron: '61 * * * *' is not a valid five-field cron expression"


def _break_spec(job: JobHarness) -> None:
    job.spec = None
    job.generation += 1
    job.observe(InvalidSpec(PROBLEMS))


def test_invalid_new_job_fails_at_once_without_a_run() -> None:
    job = JobHarness()
    job.spec = None
    decision = job.observe(InvalidSpec(PROBLEMS))
    assert (job.phase, job.reason) == (Phase.FAILED, Reason.INVALID_SPEC)
    assert PROBLEMS in (job.status.message or "")
    assert created_pods(decision) == []
    assert event_reasons(decision) == ["Failed"]


def test_invalid_spec_stalls_a_sleeping_job() -> None:
    job = JobHarness()
    job.create()
    job.finish()
    _break_spec(job)
    assert job.phase == Phase.FAILED
    assert ("Stalled", "True") in {(condition.type, condition.status) for condition in job.status.conditions}


def test_invalid_spec_on_a_job_failed_for_errors_changes_only_the_reason() -> None:
    job = JobHarness(job_spec(retry={"failAfter": "1m"}))
    job.create()
    job.fail()
    job.wake()
    job.fail()
    job.spec = None
    job.generation += 1
    decision = job.observe(InvalidSpec(PROBLEMS))
    assert job.reason == Reason.INVALID_SPEC
    assert event_reasons(decision) == []


def test_invalid_spec_lets_the_run_in_flight_finish_then_fails() -> None:
    job = JobHarness()
    job.create()
    _break_spec(job)
    assert job.phase == Phase.RUNNING
    job.now += timedelta(minutes=2)
    decision = job.observe(RunFinished(1, RunReport(result=RunResult.SUCCEEDED)))
    assert event_reasons(decision) == ["Synced", "Failed"]
    assert (job.phase, job.reason) == (Phase.FAILED, Reason.INVALID_SPEC)
    assert PROBLEMS in (job.status.message or "")


def test_run_failing_while_the_spec_is_invalid_is_not_retried() -> None:
    job = JobHarness()
    job.create()
    _break_spec(job)
    decision = job.observe(RunLost(1, "evicted"))
    assert "no retry" in decision.events[0].message
    assert job.phase == Phase.FAILED


def test_rate_limited_run_while_the_spec_is_invalid_is_recorded() -> None:
    job = JobHarness()
    job.create()
    _break_spec(job)
    decision = job.observe(RunFinished(1, RunReport(result=RunResult.RATE_LIMITED)))
    assert event_reasons(decision) == ["Sleeping", "Failed"]


def test_run_in_flight_still_times_out_while_the_spec_is_invalid() -> None:
    job = JobHarness()
    job.create()
    _break_spec(job)
    job.now += timedelta(hours=6)
    decision = job.observe(TimerFired())
    assert any(isinstance(action, DeletePod) for action in decision.actions)
    assert job.phase == Phase.FAILED


def test_run_timed_out_observation_while_the_spec_is_invalid_stops_the_run() -> None:
    job = JobHarness()
    job.create()
    _break_spec(job)
    job.observe(RunTimedOut(1))
    assert job.status.current_run is None


def test_run_now_on_an_invalid_job_is_acknowledged_but_runs_nothing() -> None:
    job = JobHarness()
    job.create()
    job.finish()
    _break_spec(job)
    decision = job.observe(RunNowRequested("please"))
    assert created_pods(decision) == []
    assert job.status.last_handled_request_at == "please"


def test_invalid_job_keeps_its_problems_across_other_observations() -> None:
    job = JobHarness()
    _break_spec(job)
    decision = job.observe(JobObserved())
    assert not decision.status_changed
    assert PROBLEMS in (job.status.message or "")


def test_invalid_job_is_never_purged() -> None:
    job = JobHarness()
    _break_spec(job)
    job.now += timedelta(days=3650)
    decision = job.observe(TimerFired())
    assert decision.actions == ()


def test_completed_job_stays_completed_when_its_spec_turns_invalid() -> None:
    job = JobHarness(job_spec(schedule={"once": True}))
    job.create()
    job.finish()
    _break_spec(job)
    assert job.phase == Phase.COMPLETED


def test_fixing_an_invalid_spec_resumes_the_job() -> None:
    job = JobHarness()
    job.create()
    job.finish()
    _break_spec(job)
    decision = job.change_spec(schedule={"every": "1h"})
    assert event_reasons(decision) == ["Resumed"]
    assert (job.phase, job.reason) == (Phase.SLEEPING, Reason.SCHEDULED)
    assert "Stalled" not in {condition.type for condition in job.status.conditions}


def test_invalid_spec_without_a_message_gets_a_generic_one() -> None:
    job = JobHarness()
    job.spec = None
    job.observe(TimerFired())
    assert job.status.message == "the spec is invalid: the spec does not validate"
