"""Every event of DESIGN.md §3: when it is posted, its message, and its `status.history` entry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from destinations.api.models import Phase, RecordCounts, RunResult
from destinations.lifecycle import HISTORY_LIMIT, Decision, EventType, RunNowRequested
from tests.lifecycle.harness import JobHarness, event_reasons, job_spec


def _first_run(job: JobHarness) -> Decision:
    return job.create()


def _second_run(job: JobHarness) -> Decision:
    job.create()
    job.finish()
    return job.wake()


def _synced(job: JobHarness) -> Decision:
    job.create()
    return job.finish(records=RecordCounts(read=120, added=10, updated=5, omitted=2))


def _error(job: JobHarness) -> Decision:
    job.create()
    return job.fail("HTTP 500 from Mailchimp")


def _rate_limited(job: JobHarness) -> Decision:
    job.create()
    return job.finish(RunResult.RATE_LIMITED, message="quota spent", retry_after_seconds=3600)


def _failed(job: JobHarness) -> Decision:
    job.spec = job_spec(retry={"failAfter": "5m"})
    job.create()
    job.fail()
    job.wake()
    job.fail()
    job.wake()
    return job.fail()


def _completed(job: JobHarness) -> Decision:
    job.spec = job_spec(schedule={"once": True})
    job.create()
    return job.finish()


def _paused(job: JobHarness) -> Decision:
    job.create()
    job.finish()
    return job.change_spec(paused=True)


def _paused_after_run(job: JobHarness) -> Decision:
    job.create()
    job.change_spec(paused=True)
    return job.finish()


def _resumed_from_paused(job: JobHarness) -> Decision:
    job.create()
    job.finish()
    job.change_spec(paused=True)
    return job.change_spec(paused=False)


def _resumed_from_failed_by_run_now(job: JobHarness) -> Decision:
    _failed(job)
    return job.observe(RunNowRequested("again"))


def _resumed_from_failed_by_spec_change(job: JobHarness) -> Decision:
    _failed(job)
    return job.change_spec(retry={"failAfter": "5m"}, schedule={"cron": "0 6 * * *"})


EVENT_TABLE: list[tuple[str, Callable[[JobHarness], Decision], list[str]]] = [
    ("Started on the first run", _first_run, ["Started"]),
    ("no event on later run starts", _second_run, []),
    ("Synced after a success", _synced, ["Synced"]),
    ("Error after a failure", _error, ["Error"]),
    ("Sleeping after a rate limit", _rate_limited, ["Sleeping"]),
    ("Error then Failed when retries are exhausted", _failed, ["Error", "Failed"]),
    ("Synced then Completed for a once job", _completed, ["Synced", "Completed"]),
    ("Paused when paused", _paused, ["Paused"]),
    ("run result then Paused after a pause during a run", _paused_after_run, ["Synced", "Paused"]),
    ("Resumed when unpaused", _resumed_from_paused, ["Resumed"]),
    ("Resumed by run-now on Failed", _resumed_from_failed_by_run_now, ["Resumed"]),
    ("Resumed by a spec change on Failed", _resumed_from_failed_by_spec_change, ["Resumed"]),
]


@pytest.mark.parametrize(("case", "scenario", "expected"), EVENT_TABLE, ids=[row[0] for row in EVENT_TABLE])
def test_event_table(case: str, scenario: Callable[[JobHarness], Decision], expected: list[str]) -> None:
    job = JobHarness()
    decision = scenario(job)
    assert event_reasons(decision) == expected


@pytest.mark.parametrize(("case", "scenario", "expected"), EVENT_TABLE, ids=[row[0] for row in EVENT_TABLE])
def test_every_event_is_also_a_history_entry(
    case: str, scenario: Callable[[JobHarness], Decision], expected: list[str]
) -> None:
    job = JobHarness()
    decision = scenario(job)
    if expected:
        assert [entry.event for entry in job.status.history[-len(expected) :]] == expected
        assert [entry.message for entry in job.status.history[-len(expected) :]] == [
            event.message for event in decision.events
        ]


def test_errors_and_failures_are_warnings_everything_else_normal() -> None:
    job = JobHarness()
    decision = _failed(job)
    assert [event.type for event in decision.events] == [EventType.WARNING, EventType.WARNING]
    assert {event.type for event in _synced(JobHarness()).events} == {EventType.NORMAL}


def test_synced_message_and_history_carry_the_record_counts() -> None:
    job = JobHarness()
    decision = _synced(job)
    assert "120 read, 10 added, 5 updated, 0 removed, 2 omitted, 0 failed" in decision.events[0].message
    entry = job.status.history[-1]
    assert entry.records == RecordCounts(read=120, added=10, updated=5, omitted=2)
    assert entry.run == 1
    assert entry.time == job.status.last_run.finished_at  # type: ignore[union-attr]


def test_error_message_says_why_and_when_it_retries() -> None:
    job = JobHarness()
    decision = _error(job)
    message = decision.events[0].message
    assert "HTTP 500 from Mailchimp" in message
    assert "retrying at 2026-01-05T09:03:00Z" in message


def test_error_without_a_message_still_says_something() -> None:
    job = JobHarness()
    job.create()
    decision = job.fail("")
    assert "no reason given" in decision.events[0].message


def test_sleeping_message_says_until_when() -> None:
    job = JobHarness()
    decision = _rate_limited(job)
    assert "quota spent" in decision.events[0].message
    assert "until 2026-01-05T10:02:00Z" in decision.events[0].message


def test_failed_message_says_how_to_resume() -> None:
    job = JobHarness()
    decision = _failed(job)
    assert "destinations.dev/requested-at" in decision.events[-1].message
    assert job.status.message == decision.events[-1].message


def test_history_keeps_the_last_20_entries() -> None:
    job = JobHarness()
    job.create()
    for _ in range(30):
        job.finish()
        job.wake()
    assert len(job.status.history) == HISTORY_LIMIT
    assert job.status.history[-1].event == "Synced"
    assert job.status.history[0].run == 30 - HISTORY_LIMIT + 1


def test_a_whole_run_costs_at_most_six_status_writes() -> None:
    job = JobHarness()
    job.create()
    job.finish()
    writes_before = job.writes
    for minutes in range(0, 60, 5):
        job.advance_to(job.now + timedelta(minutes=5) if minutes else job.now)
        job.tick()
    job.wake()
    job.advance(timedelta(minutes=1))
    job.tick()
    job.finish()
    assert job.writes - writes_before <= 6


def test_a_sleeping_job_is_never_written() -> None:
    job = JobHarness()
    job.create()
    job.finish()
    writes_before = job.writes
    for _ in range(11):
        job.advance(timedelta(minutes=5))
        job.tick()
    assert job.phase == Phase.SLEEPING
    assert job.writes == writes_before
