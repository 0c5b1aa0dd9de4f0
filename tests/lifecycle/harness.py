"""A job driven through `decide` the way the operator drives it: status kept, clock moved by hand."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from destinations.api.models import (
    DestinationJobSpec,
    DestinationJobStatus,
    Phase,
    RecordCounts,
    RunResult,
    Schedule,
)
from destinations.api.runs import RunReport
from destinations.lifecycle import (
    CreatePod,
    Decision,
    FinishedPod,
    JobObserved,
    Observation,
    RunFinished,
    SpecChanged,
    TimerFired,
    decide,
    parse_time,
)

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
JOB_NAME = "vip-export"
PROVIDER_DEFAULT_SCHEDULE = Schedule(every=timedelta(hours=24))


def job_spec(**overrides: Any) -> DestinationJobSpec:
    """A valid export job; `overrides` are camelCase manifest fields (`schedule={"cron": ...}`)."""
    manifest: dict[str, Any] = {
        "provider": "webhook",
        "type": "export",
        "authorizationRef": {"name": "receiver"},
        "config": {"url": "http://receiver.example/records"},
        "source": {"url": {"url": "http://source.example/users.jsonl"}},
        "schedule": {"every": "1h"},
    }
    manifest.update(overrides)
    return DestinationJobSpec.model_validate(manifest)


class JobHarness:
    """Keeps one job's status across decisions, like the operator persisting `Decision.status`."""

    def __init__(self, spec: DestinationJobSpec | None = None, *, now: datetime = START) -> None:
        self.spec: DestinationJobSpec | None = spec if spec is not None else job_spec()
        self.status = DestinationJobStatus()
        self.now = now
        self.generation = 1
        self.writes = 0
        self.decisions: list[Decision] = []

    # ------------------------------------------------------------------ driving

    def observe(self, observation: Observation, **context: Any) -> Decision:
        decision = decide(
            self.spec,
            self.status,
            observation,
            self.now,
            job_name=JOB_NAME,
            generation=self.generation,
            default_schedule=PROVIDER_DEFAULT_SCHEDULE,
            **context,
        )
        if decision.status_changed:
            self.writes += 1
        self.status = decision.status
        self.decisions.append(decision)
        return decision

    def create(self, **context: Any) -> Decision:
        return self.observe(JobObserved(created_by="alice@example.com"), **context)

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def advance_to(self, moment: datetime) -> None:
        self.now = moment

    def tick(self, **context: Any) -> Decision:
        return self.observe(TimerFired(), **context)

    def wake(self, **context: Any) -> Decision:
        """Jump to the time the last decision asked to be woken at, and fire the timer."""
        wake_at = self.decisions[-1].wake_at
        assert wake_at is not None, "the last decision asked for no wake-up"
        self.now = max(self.now, wake_at)
        return self.tick(**context)

    def change_spec(self, spec: DestinationJobSpec | None = None, **overrides: Any) -> Decision:
        self.spec = spec if spec is not None else job_spec(**overrides)
        self.generation += 1
        return self.observe(SpecChanged())

    def finish(
        self,
        result: RunResult = RunResult.SUCCEEDED,
        *,
        message: str = "",
        records: RecordCounts | None = None,
        retry_after_seconds: float | None = None,
        after: timedelta = timedelta(minutes=2),
    ) -> Decision:
        """The run in flight ends `after` its start (or now, if that is later)."""
        run = self.current_run_number
        self.now = max(self.now, self.started_at + after)
        report = RunReport(
            result=result,
            records=records or RecordCounts(),
            message=message,
            retry_after_seconds=retry_after_seconds,
        )
        return self.observe(RunFinished(run, report))

    def fail(self, message: str = "HTTP 500 from the provider", **kwargs: Any) -> Decision:
        return self.finish(RunResult.FAILED, message=message, **kwargs)

    # ------------------------------------------------------------------ reading

    @property
    def phase(self) -> Phase | None:
        return self.status.phase

    @property
    def reason(self) -> str | None:
        return self.status.reason

    @property
    def current_run_number(self) -> int:
        assert self.status.current_run is not None, f"no run in flight (phase {self.phase})"
        return self.status.current_run.number

    @property
    def started_at(self) -> datetime:
        assert self.status.current_run is not None
        return parse_time(self.status.current_run.started_at)

    @property
    def next_run_at(self) -> datetime | None:
        return parse_time(self.status.next_run_at) if self.status.next_run_at else None

    def condition(self, kind: str) -> tuple[str, str] | None:
        for condition in self.status.conditions:
            if condition.type == kind:
                return condition.status, condition.reason
        return None


def event_reasons(decision: Decision) -> list[str]:
    return [event.reason for event in decision.events]


def created_pods(decision: Decision) -> list[CreatePod]:
    return [action for action in decision.actions if isinstance(action, CreatePod)]


def finished_pods(*runs: tuple[int, bool]) -> Sequence[FinishedPod]:
    return [
        FinishedPod(run=run, name=f"{JOB_NAME}-run-{run}", succeeded=succeeded) for run, succeeded in runs
    ]
