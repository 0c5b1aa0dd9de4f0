"""Invariants of the lifecycle over random sequences of observations and clock jumps (hypothesis).

A small simulated world plays the operator: it keeps the status, creates and finishes pods as the core
asks, changes the spec, breaks and fixes it, toggles the Authorization and the global run limit, and
jumps the clock by seconds to days. After every decision it checks the invariants of issue 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from destinations.api.models import DestinationJobSpec, DestinationJobStatus, Phase, RecordCounts, RunResult
from destinations.api.runs import RunReport
from destinations.lifecycle import (
    HISTORY_LIMIT,
    AuthorizationNotReady,
    AuthorizationReady,
    CapacityFull,
    CreatePod,
    Decision,
    DeleteJob,
    DeletePod,
    FinishedPod,
    InvalidSpec,
    JobObserved,
    Observation,
    Reason,
    RunFinished,
    RunLost,
    RunNowRequested,
    RunTimedOut,
    SpecChanged,
    TimerFired,
    decide,
    parse_time,
)
from tests.lifecycle.harness import JOB_NAME, PROVIDER_DEFAULT_SCHEDULE, job_spec

START = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
RESULT_EVENTS = {RunResult.SUCCEEDED: "Synced", RunResult.FAILED: "Error", RunResult.RATE_LIMITED: "Sleeping"}
FINISHED_PHASES = {Phase.FAILED, Phase.PAUSED, Phase.COMPLETED}

# ------------------------------------------------------------------------------------------ strategies

schedules = st.one_of(
    st.sampled_from(["5m", "30m", "1h", "6h", "24h"]).map(lambda every: {"every": every}),
    st.tuples(
        st.sampled_from(["*/15 * * * *", "30 2 * * *", "0 6 * * 1-5", "0 */4 * * *"]),
        st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]),
    ).map(lambda cron: {"cron": cron[0], "timezone": cron[1]}),
    st.just({"once": True}),
)


# Runs finish with 3 records read: minRecords 5 crosses on every success, maxRecordDrop never.
alert_thresholds = st.sampled_from(
    [
        None,
        {"minRecords": 5, "maxRunDuration": "20m", "noSuccessFor": "6h"},
        {"maxRejectedPercent": 10, "maxRecordDrop": 50, "noSuccessFor": "30m"},
        {"maxRunDuration": "1m"},
    ]
)


@st.composite
def specs(draw: st.DrawFn, paused: bool = False) -> DestinationJobSpec:
    initial = draw(st.sampled_from([1, 2, 5]))
    return job_spec(
        schedule=draw(schedules),
        paused=paused,
        retry={
            "initialBackoff": f"{initial}m",
            "maxBackoff": f"{initial * draw(st.sampled_from([1, 4, 30]))}m",
            "failAfter": draw(st.sampled_from(["5m", "1h", "10h"])),
        },
        runTimeout=draw(st.sampled_from(["10m", "1h", "6h"])),
        history={"succeeded": draw(st.integers(0, 3)), "failed": draw(st.integers(0, 3))},
        purgeAfter=draw(st.sampled_from(["never", "1h", "2d"])),
        alerts=draw(alert_thresholds),
    )


jumps = st.one_of(
    st.just(0),
    st.integers(1, 120),
    st.integers(60, 3 * 3600),
    st.integers(3600, 4 * 86400),
).map(lambda seconds: timedelta(seconds=seconds))

STEP_KINDS = [
    *["timer", "wake", "wake", "wake", "finish", "finish", "finish", "finish", "finish"],
    *["lost", "timeout", "stale", "run_now", "pause", "unpause", "reschedule", "break", "fix"],
    *["auth_down", "auth_up", "capacity_full", "observe"],
]
RETRY_AFTERS: list[int | None] = [None, 1, 30, 600, 7200]

# One step: a clock jump, what happens, and a number the step's details (result, Retry-After, request
# value) are derived from; few draws per step keep 1,000 histories fast.
steps = st.tuples(jumps, st.sampled_from(STEP_KINDS), st.integers(0, 2**16))


# -------------------------------------------------------------------------------------- the world


@dataclass
class World:
    """The operator and the cluster, reduced to what the invariants need."""

    spec: DestinationJobSpec
    status: DestinationJobStatus = field(default_factory=DestinationJobStatus)
    valid: bool = True
    now: datetime = START
    generation: int = 1
    authorization_problem: str | None = None
    capacity_available: bool = True
    pods_in_flight: set[int] = field(default_factory=set)
    finished: dict[int, FinishedPod] = field(default_factory=dict)
    last_wake: datetime | None = None
    error_streak_start: datetime | None = None
    purged: bool = False

    def decide(self, observation: Observation) -> Decision:
        before = self.status
        decision = decide(
            self.spec if self.valid else None,
            before,
            observation,
            self.now,
            job_name=JOB_NAME,
            generation=self.generation,
            default_schedule=PROVIDER_DEFAULT_SCHEDULE,
            authorization_problem=self.authorization_problem,
            capacity_available=self.capacity_available,
            finished_pods=sorted(self.finished.values(), key=lambda pod: pod.run),
        )
        self.carry_out(before, decision)
        check_invariants(self, before, decision, observation)
        self.status = decision.status
        self.check_repeat_is_quiet(observation)
        return decision

    def carry_out(self, before: DestinationJobStatus, decision: Decision) -> None:
        ended = before.current_run
        if ended is not None and (
            decision.status.current_run is None or decision.status.current_run.number != ended.number
        ):
            self.pods_in_flight.discard(ended.number)
            last = decision.status.last_run
            assert last is not None and last.number == ended.number
            self.finished[ended.number] = FinishedPod(
                ended.number, ended.pod, last.result == RunResult.SUCCEEDED
            )
            if last.result == RunResult.SUCCEEDED:
                self.error_streak_start = None
            elif last.result == RunResult.FAILED and self.error_streak_start is None:
                self.error_streak_start = parse_time(last.finished_at)
        for action in decision.actions:
            if isinstance(action, CreatePod):
                assert not self.pods_in_flight, "a second run started while one was in flight"
                self.pods_in_flight.add(action.run)
            elif isinstance(action, DeletePod):
                assert action.run is not None
                if action.run in self.finished:
                    self.finished.pop(action.run)
            elif isinstance(action, DeleteJob):
                self.purged = True
        self.last_wake = decision.wake_at

    def check_repeat_is_quiet(self, observation: Observation) -> None:
        """Deciding again at the same moment with nothing new changes nothing: no extra writes."""
        if self.purged:
            return
        again = (
            observation
            if isinstance(observation, AuthorizationNotReady | AuthorizationReady | CapacityFull)
            else TimerFired()
        )
        repeat = decide(
            self.spec if self.valid else None,
            self.status,
            again,
            self.now,
            job_name=JOB_NAME,
            generation=self.generation,
            default_schedule=PROVIDER_DEFAULT_SCHEDULE,
            authorization_problem=self.authorization_problem,
            capacity_available=self.capacity_available,
            finished_pods=sorted(self.finished.values(), key=lambda pod: pod.run),
        )
        assert not repeat.status_changed, (self.status, repeat.status)
        assert not [action for action in repeat.actions if isinstance(action, CreatePod | DeleteJob)]

    def change_spec(self, **updates: Any) -> Decision:
        manifest = self.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
        manifest.update(updates)
        self.spec = DestinationJobSpec.model_validate(manifest)
        self.valid = True
        self.generation += 1
        return self.decide(SpecChanged())

    def play(self, step: tuple[timedelta, str, int], data: st.DataObject) -> None:
        jump, kind, detail = step
        result = list(RunResult)[detail % 3]
        retry_after = RETRY_AFTERS[detail // 3 % len(RETRY_AFTERS)]
        request = "abc"[detail // 15 % 3]
        self.now += jump
        current = self.status.current_run
        if kind == "wake" and self.last_wake is not None:
            self.now = max(self.now, self.last_wake)
            self.decide(TimerFired())
        elif kind == "finish" and current is not None:
            report = RunReport(
                result=result,
                records=RecordCounts(read=3, added=1),
                message=f"{result.value} by the test",
                retry_after_seconds=retry_after,
            )
            self.decide(RunFinished(current.number, report))
        elif kind == "lost" and current is not None:
            self.decide(RunLost(current.number, "evicted"))
        elif kind == "timeout" and current is not None:
            self.decide(RunTimedOut(current.number))
        elif kind == "stale":
            self.decide(RunFinished(max(self.status.runs.total - 1, 0), RunReport(result=result)))
        elif kind == "run_now":
            self.decide(RunNowRequested(request))
        elif kind in ("pause", "unpause"):
            self.change_spec(paused=kind == "pause")
        elif kind == "reschedule":
            self.change_spec(schedule=data.draw(schedules))
        elif kind == "break":
            self.valid = False
            self.generation += 1
            self.decide(InvalidSpec("schedule.every: '1x' is not a duration"))
        elif kind == "fix" and not self.valid:
            self.change_spec()
        elif kind == "auth_down":
            self.authorization_problem = "Secret receiver-credentials not found"
            self.decide(AuthorizationNotReady(self.authorization_problem))
        elif kind == "auth_up":
            self.authorization_problem = None
            self.decide(AuthorizationReady())
        elif kind == "capacity_full":
            self.capacity_available = not self.capacity_available
            self.decide(CapacityFull() if not self.capacity_available else TimerFired())
        elif kind == "observe":
            self.decide(JobObserved())
        else:
            self.decide(TimerFired())


# ------------------------------------------------------------------------------------------ invariants


def expected_events(before: DestinationJobStatus, after: DestinationJobStatus) -> list[str]:
    """The events DESIGN.md §3 names for this change of status."""
    events: list[str] = []
    old, new = before.phase, after.phase
    if old in (Phase.FAILED, Phase.PAUSED) and new not in (Phase.FAILED, Phase.PAUSED):
        events.append("Resumed")
    ended = before.current_run
    if ended is not None and (after.current_run is None or after.current_run.number != ended.number):
        assert after.last_run is not None
        events.append(RESULT_EVENTS[after.last_run.result])
    if before.runs.total == 0 and after.runs.total == 1:
        events.append("Started")
    for phase, event in ((Phase.FAILED, "Failed"), (Phase.PAUSED, "Paused"), (Phase.COMPLETED, "Completed")):
        if new == phase and old != phase:
            events.append(event)
    return sorted(events)


def check_invariants(
    world: World, before: DestinationJobStatus, decision: Decision, observation: Observation
) -> None:
    after = decision.status
    spec = world.spec
    posted = [event.reason for event in decision.events if event.reason != "ThresholdExceeded"]
    check_thresholds(world, before, decision)

    # At most one run in flight, and the status knows which.
    assert len(world.pods_in_flight) <= 1
    in_flight = after.current_run.number if after.current_run is not None else None
    assert world.pods_in_flight == ({in_flight} if in_flight is not None else set())
    assert (after.phase == Phase.RUNNING) == (after.current_run is not None)

    # Every phase change emits exactly the events the table names, each also a history entry.
    assert sorted(posted) == expected_events(before, after), (before.phase, after.phase, posted, observation)
    every_event = [event.reason for event in decision.events]
    if every_event:
        assert [entry.event for entry in after.history[-len(every_event) :]] == every_event
    assert len(after.history) <= HISTORY_LIMIT

    # Errors: Failed only after failAfter of consecutive errors; rate limits never count.
    if (
        after.phase == Phase.FAILED
        and before.phase != Phase.FAILED
        and after.reason == Reason.RETRIES_EXHAUSTED
    ):
        assert after.last_run is not None and world.error_streak_start is not None
        assert parse_time(after.last_run.finished_at) - world.error_streak_start >= spec.retry.fail_after
        assert after.last_run.result == RunResult.FAILED
    if after.last_run is not None and after.last_run != before.last_run:
        if after.last_run.result == RunResult.RATE_LIMITED:
            assert after.consecutive_errors == before.consecutive_errors
            assert after.errors_since == before.errors_since
        if after.last_run.result == RunResult.SUCCEEDED:
            assert after.consecutive_errors == 0
    assert (after.consecutive_errors == 0) == (after.errors_since is None)

    # Backoff: initialBackoff doubling, never beyond maxBackoff.
    if after.phase == Phase.SLEEPING and after.reason == Reason.BACKING_OFF:
        assert after.last_run is not None and after.next_run_at is not None
        wait = parse_time(after.next_run_at) - parse_time(after.last_run.finished_at)
        assert wait <= spec.retry.max_backoff
        # The oracle is the documented rule itself (DESIGN.md §3), not the core's `backoff`.
        expected = min(spec.retry.initial_backoff, spec.retry.max_backoff)
        for _ in range(after.consecutive_errors - 1):
            expected = min(expected * 2, spec.retry.max_backoff)
        assert wait == expected

    # Purge only from Failed, Paused or Completed, and only after purgeAfter.
    if any(isinstance(action, DeleteJob) for action in decision.actions):
        assert world.valid and spec.purge_after is not None
        assert after.phase in FINISHED_PHASES and after.phase_since is not None
        assert world.now - parse_time(after.phase_since) >= spec.purge_after
        assert after.current_run is None

    # `paused: true` always ends in Paused, once no run is in flight (a Completed job stays Completed).
    if world.valid and spec.paused and after.current_run is None and after.phase != Phase.COMPLETED:
        assert after.phase == Phase.PAUSED

    # Waiting phases have a due time; finished ones do not.
    if after.phase in (Phase.PENDING, Phase.SLEEPING):
        assert after.next_run_at is not None
    else:
        assert after.next_run_at is None

    # Conditions agree with the phase and the generation.
    conditions = {condition.type: condition.status for condition in after.conditions}
    assert conditions.get("Reconciling") == ("True" if after.current_run is not None else None)
    stalled = after.phase == Phase.FAILED or not world.valid
    assert conditions.get("Stalled") == ("True" if stalled else None)
    assert "Ready" in conditions
    assert after.observed_generation == world.generation
    assert all(condition.observed_generation == world.generation for condition in after.conditions)

    # No write without a change.
    assert decision.status_changed == (after != before)


def check_thresholds(world: World, before: DestinationJobStatus, decision: Decision) -> None:
    """spec.alerts: Degraded mirrors the crossings, and every ThresholdExceeded Event names one."""
    after = decision.status
    alerts = world.spec.alerts if world.valid else None
    announced = [event for event in decision.events if event.reason == "ThresholdExceeded"]
    crossed = {crossing.threshold for crossing in after.thresholds_exceeded}
    degraded = next((c for c in after.conditions if c.type == "Degraded"), None)
    if world.valid and alerts is None:
        assert not announced and not crossed and degraded is None
    if degraded is not None:
        assert (degraded.status == "True") == bool(crossed)
    else:
        assert not crossed
    assert len(announced) <= len(crossed)
    assert all(any(f"{name} exceeded" in event.message for name in crossed) for event in announced)
    if world.valid and after.phase in (Phase.PAUSED, Phase.COMPLETED):
        assert "noSuccessFor" not in crossed
    if (
        world.valid
        and alerts is not None
        and alerts.no_success_for is not None
        and after.last_successful_time
    ):
        waited = world.now - parse_time(after.last_successful_time)
        if after.phase not in (Phase.PAUSED, Phase.COMPLETED):
            assert ("noSuccessFor" in crossed) == (waited > alerts.no_success_for)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=specs(),
    paused=st.sampled_from([False, False, False, True]),
    sequence=st.lists(steps, min_size=1, max_size=40),
    data=st.data(),
)
def test_lifecycle_invariants_hold_over_random_histories(
    spec: DestinationJobSpec, paused: bool, sequence: list[Any], data: st.DataObject
) -> None:
    world = World(spec=spec.model_copy(update={"paused": paused}))
    world.decide(JobObserved(created_by="alice@example.com"))
    for step in sequence:
        if world.purged:
            break
        world.play(step, data)
