"""Conditions for kstatus tools: Ready always; Reconciling while a run is in flight; Stalled when Failed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from destinations.lifecycle import AuthorizationNotReady, CapacityFull, InvalidSpec, Reason
from tests.lifecycle.harness import JobHarness, job_spec


def _pending(job: JobHarness) -> None:
    job.spec = job_spec(schedule={"cron": "0 6 * * *"})
    job.create()


def _waiting_for_authorization(job: JobHarness) -> None:
    job.create(authorization_problem="Secret missing")


def _running(job: JobHarness) -> None:
    job.create()


def _sleeping(job: JobHarness) -> None:
    job.create()
    job.finish()


def _queued(job: JobHarness) -> None:
    _sleeping(job)
    job.advance(timedelta(hours=1))
    job.observe(CapacityFull())


def _backing_off(job: JobHarness) -> None:
    job.create()
    job.fail()


def _failed(job: JobHarness) -> None:
    job.spec = job_spec(retry={"failAfter": "1m"})
    job.create()
    job.fail()
    job.wake()
    job.fail()


def _paused(job: JobHarness) -> None:
    _sleeping(job)
    job.change_spec(paused=True)


def _completed(job: JobHarness) -> None:
    job.spec = job_spec(schedule={"once": True})
    job.create()
    job.finish()


CONDITION_TABLE: list[tuple[str, Callable[[JobHarness], None], dict[str, str]]] = [
    ("pending for its schedule", _pending, {"Ready": "True"}),
    ("pending for its authorization", _waiting_for_authorization, {"Ready": "False"}),
    ("running", _running, {"Ready": "Unknown", "Reconciling": "True"}),
    ("sleeping", _sleeping, {"Ready": "True"}),
    ("queued for capacity", _queued, {"Ready": "True"}),
    ("backing off", _backing_off, {"Ready": "False"}),
    ("failed", _failed, {"Ready": "False", "Stalled": "True"}),
    ("paused", _paused, {"Ready": "True"}),
    ("completed", _completed, {"Ready": "True"}),
]


@pytest.mark.parametrize(
    ("case", "scenario", "expected"), CONDITION_TABLE, ids=[row[0] for row in CONDITION_TABLE]
)
def test_conditions_follow_the_phase(
    case: str, scenario: Callable[[JobHarness], None], expected: dict[str, str]
) -> None:
    job = JobHarness()
    scenario(job)
    assert {condition.type: condition.status for condition in job.status.conditions} == expected


def test_ready_condition_carries_the_phase_reason_and_message() -> None:
    job = JobHarness()
    _backing_off(job)
    ready = job.status.conditions[0]
    assert (ready.type, ready.reason, ready.message) == ("Ready", Reason.BACKING_OFF, job.status.message)


def test_conditions_carry_the_observed_generation() -> None:
    job = JobHarness()
    _sleeping(job)
    job.change_spec(description="edited")
    assert {condition.observed_generation for condition in job.status.conditions} == {2}


def test_last_transition_time_changes_only_when_the_status_flips() -> None:
    job = JobHarness()
    _sleeping(job)
    flipped_at = job.status.conditions[0].last_transition_time
    job.advance(timedelta(minutes=10))
    job.change_spec(schedule={"every": "2h"})
    assert job.status.conditions[0].status == "True"
    assert job.status.conditions[0].last_transition_time == flipped_at
    job.advance(timedelta(hours=2))
    job.tick()
    assert job.status.conditions[0].status == "Unknown"
    assert job.status.conditions[0].last_transition_time == "2026-01-05T11:12:00Z"


def test_stalled_names_the_spec_problems_while_a_run_is_in_flight() -> None:
    job = JobHarness()
    job.create()
    job.spec = None
    job.generation += 1
    job.observe(InvalidSpec("schedule.every: '1x' is not a duration"))
    conditions = {
        condition.type: (condition.status, condition.message) for condition in job.status.conditions
    }
    assert conditions["Stalled"] == ("True", "schedule.every: '1x' is not a duration")
    assert conditions["Reconciling"][0] == "True"


def test_authorization_problem_shows_in_the_ready_condition() -> None:
    job = JobHarness()
    job.create()
    job.finish()
    job.advance(timedelta(hours=1))
    job.observe(AuthorizationNotReady("401 from the provider"))
    ready = job.status.conditions[0]
    assert (ready.status, ready.reason) == ("False", Reason.WAITING_FOR_AUTHORIZATION)
    assert "401 from the provider" in ready.message
