"""A run rate-limited until an HTTP date wakes at or after that date, never a second early
(issue 13, item 8). The worker turns `Retry-After: <HTTP date>` into seconds from its own clock; the
pod's `finishedAt` has whole seconds (cut, not rounded); the job must still wake no earlier than
the date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from destinations.api.models import DestinationJobStatus, Phase, RunResult, Schedule
from destinations.api.runs import RunReport
from destinations.lifecycle import Reason, RunFinished, TimerFired, decide, parse_time
from destinations.lifecycle.core import format_time
from destinations.providers._http import parse_retry_after
from tests.lifecycle.harness import job_spec

STARTED = datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)
ALLOWED_AT = datetime(2026, 11, 29, 10, 1, 0, tzinfo=UTC)
"""The provider's `Retry-After: Sun, 29 Nov 2026 10:01:00 GMT`."""


def _running() -> DestinationJobStatus:
    decision = decide(
        job_spec(),
        DestinationJobStatus(),
        TimerFired(),
        STARTED,
        job_name="export",
        generation=1,
        default_schedule=Schedule(every=timedelta(hours=1)),
    )
    assert decision.status.current_run is not None
    return decision.status


@pytest.mark.parametrize("worker_fraction", [0.0, 0.1, 0.5, 0.6, 0.999])
def test_the_job_wakes_at_or_after_the_providers_http_date(worker_fraction: float) -> None:
    header = format_datetime(ALLOWED_AT, usegmt=True)
    assert header == "Sun, 29 Nov 2026 10:01:00 GMT"
    worker_now = STARTED + timedelta(seconds=30 + worker_fraction)  # when the worker read the 429
    retry_after = parse_retry_after(header, now=worker_now.timestamp())
    assert retry_after is not None
    # The container ends a moment later; Kubernetes cuts finishedAt to the second.
    finished_at = (worker_now + timedelta(milliseconds=100)).replace(microsecond=0)
    report = RunReport(result=RunResult.RATE_LIMITED, message="429", retry_after_seconds=retry_after)
    now = finished_at + timedelta(seconds=1)
    decision = decide(
        job_spec(),
        _running(),
        RunFinished(1, report, finished_at),
        now,
        job_name="export",
        generation=1,
        default_schedule=Schedule(every=timedelta(hours=1)),
    )
    status = decision.status
    assert (status.phase, status.reason) == (Phase.SLEEPING, Reason.RATE_LIMITED)
    assert status.next_run_at is not None
    assert parse_time(status.next_run_at) >= ALLOWED_AT, status.next_run_at
    assert parse_time(status.next_run_at) <= ALLOWED_AT + timedelta(seconds=1)
    assert decision.wake_at is not None and decision.wake_at >= ALLOWED_AT


def test_a_fractional_retry_after_rounds_the_wake_up_not_down() -> None:
    report = RunReport(result=RunResult.RATE_LIMITED, retry_after_seconds=59.4)
    decision = decide(
        job_spec(),
        _running(),
        RunFinished(1, report, STARTED),
        STARTED + timedelta(seconds=1),
        job_name="export",
        generation=1,
        default_schedule=Schedule(every=timedelta(hours=1)),
    )
    assert decision.status.next_run_at == format_time(ALLOWED_AT)  # 10:00:59.4 -> 10:01:00


def test_an_http_date_gives_whole_seconds_to_wait() -> None:
    moment = datetime(2026, 11, 29, 10, 0, 0, 600000, tzinfo=UTC).timestamp()
    assert parse_retry_after("Sun, 29 Nov 2026 10:01:00 GMT", now=moment) == 60.0
    assert parse_retry_after("Sun, 29 Nov 2026 09:59:00 GMT", now=moment) == 0.0
    assert parse_retry_after("120", now=moment) == 120.0
