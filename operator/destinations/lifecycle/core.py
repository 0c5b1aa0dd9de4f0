"""The lifecycle of a DestinationJob as one pure function: `decide`.

Given the job's spec, its current status, one observation and the current time, `decide` returns the
new status and the actions the operator must carry out. It does no I/O and never reads the clock, so
tests can cross ten hours of backoff or ninety days of retention in a microsecond. The rules are
DESIGN.md §3; the decisions the contract leaves open are written down in docs/lifecycle.md.

A decision writes the status only when something a user can see changed: a sleeping job that is woken
early gets the same status back (`Decision.status_changed` is False), so the operator does no write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from destinations.api.durations import format_duration
from destinations.api.models import (
    Condition,
    CurrentRun,
    DestinationJobSpec,
    DestinationJobStatus,
    HistoryEntry,
    HistoryLimits,
    LastRun,
    Phase,
    RecordCounts,
    Rejection,
    RetryPolicy,
    RunResult,
    Schedule,
    ThresholdCrossing,
)
from destinations.lifecycle import thresholds
from destinations.lifecycle.actions import (
    Action,
    CreatePod,
    DeleteJob,
    DeletePod,
    EventType,
    PostEvent,
    WakeAt,
    sync_pod_name,
)
from destinations.lifecycle.observations import (
    AuthorizationNotReady,
    AuthorizationReady,
    CapacityFull,
    InvalidSpec,
    JobObserved,
    Observation,
    RunFinished,
    RunLost,
    RunNowRequested,
    RunTimedOut,
)
from destinations.lifecycle.schedule import next_due

HISTORY_LIMIT = 20
"""`status.history` keeps this many entries, newest last."""
AUTHORIZATION_RECHECK = timedelta(minutes=1)
"""How soon a due run blocked by its Authorization is looked at again (the operator also reacts to
Authorization changes; this is the backstop)."""
CAPACITY_RECHECK = timedelta(seconds=15)
"""How soon a run queued behind the global concurrency limit is retried."""
DEFAULT_RUN_TIMEOUT = timedelta(hours=6)
"""The timeout applied to a run in flight while the spec is invalid (its own value cannot be read)."""


class Reason(StrEnum):
    """Every value of `status.reason`: why the job is in its phase."""

    FIRST_RUN_SCHEDULED = "FirstRunScheduled"
    """Pending: the first run is due at `nextRunAt`."""
    WAITING_FOR_AUTHORIZATION = "WaitingForAuthorization"
    """Pending or Sleeping: the Authorization is missing or not Healthy; a due run waits for it."""
    QUEUED_FOR_CAPACITY = "QueuedForCapacity"
    """Pending or Sleeping: the run is due but the operator's limit of concurrent runs is reached."""
    RUN_IN_PROGRESS = "RunInProgress"
    """Running: a sync pod is in flight."""
    PAUSE_REQUESTED = "PauseRequested"
    """Running: `paused` was set; the run in flight finishes, then the job pauses."""
    SCHEDULED = "Scheduled"
    """Sleeping: the last run succeeded; the next is due at `nextRunAt`."""
    BACKING_OFF = "BackingOff"
    """Sleeping: the last run failed; it is retried at `nextRunAt`."""
    RATE_LIMITED = "RateLimited"
    """Sleeping: the provider rate-limited the last run; the job sleeps until the provider's time."""
    RETRIES_EXHAUSTED = "RetriesExhausted"
    """Failed: runs kept failing for longer than `retry.failAfter`."""
    INVALID_SPEC = "InvalidSpec"
    """Failed: the spec does not validate; the message names the problems."""
    PAUSED = "PausedBySpec"
    """Paused: `spec.paused` is true."""
    COMPLETED = "RanOnce"
    """Completed: the `once` job succeeded."""


class JobEvent(StrEnum):
    """The Kubernetes Events (and `status.history` entries) of DESIGN.md §3."""

    STARTED = "Started"
    SYNCED = "Synced"
    ERROR = "Error"
    SLEEPING = "Sleeping"
    FAILED = "Failed"
    COMPLETED = "Completed"
    PAUSED = "Paused"
    RESUMED = "Resumed"
    THRESHOLD_EXCEEDED = "ThresholdExceeded"
    """A `spec.alerts` threshold was crossed (lifecycle/thresholds.py)."""


_WARNING_EVENTS = {JobEvent.ERROR, JobEvent.FAILED, JobEvent.THRESHOLD_EXCEEDED}
_WAITING_PHASES = {Phase.PENDING, Phase.SLEEPING}
_PURGEABLE_PHASES = {Phase.FAILED, Phase.PAUSED, Phase.COMPLETED}


@dataclass(frozen=True)
class FinishedPod:
    """A terminated sync pod of the job, as listed by the operator (label `destinations.dev/job`)."""

    run: int
    name: str
    succeeded: bool
    """The pod's phase is Succeeded; failed and rate-limited runs' pods count against `history.failed`."""


@dataclass(frozen=True)
class Decision:
    """The new status and what the operator must do, in order."""

    status: DestinationJobStatus
    actions: tuple[Action, ...]
    status_changed: bool
    """False when the status is exactly the one passed in: the operator must not write it."""

    @property
    def events(self) -> tuple[PostEvent, ...]:
        return tuple(action for action in self.actions if isinstance(action, PostEvent))

    @property
    def wake_at(self) -> datetime | None:
        return next((action.time for action in self.actions if isinstance(action, WakeAt)), None)


def decide(
    spec: DestinationJobSpec | None,
    status: DestinationJobStatus,
    observation: Observation,
    now: datetime,
    *,
    job_name: str,
    generation: int,
    default_schedule: Schedule,
    authorization_problem: str | None = None,
    capacity_available: bool = True,
    finished_pods: Sequence[FinishedPod] = (),
    pause_reason: str | None = None,
) -> Decision:
    """Apply one observation to a job and say what changes.

    - `spec`: the parsed spec, or None when it does not validate (then pass `InvalidSpec(problems)`,
      or any run observation: runs in flight are still recorded).
    - `status`: the job's current status (`DestinationJobStatus()` for a new job).
    - `now`: the current time, timezone-aware; truncated to whole seconds like Kubernetes timestamps.
    - `generation`: `metadata.generation`; a value other than `status.observedGeneration` is a spec change.
    - `default_schedule`: the provider's schedule, used when the spec has none.
    - `authorization_problem`: None when the job's Authorization is Healthy, else why not
      (`AuthorizationReady` / `AuthorizationNotReady` observations override it).
    - `capacity_available`: False when the global limit of concurrent runs is reached (`CapacityFull`
      overrides it); a due run then stays queued.
    - `finished_pods`: the job's terminated sync pods, for the `history` limits.
    - `pause_reason`: the `destinations.dev/pause-reason` annotation, shown in the Paused status
      message, Event and history entry.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if isinstance(observation, AuthorizationNotReady):
        authorization_problem = observation.message
    elif isinstance(observation, AuthorizationReady):
        authorization_problem = None
    if isinstance(observation, CapacityFull):
        capacity_available = False
    draft = _Draft(_editable_copy(status), _whole_seconds(now), job_name)
    draft.pause_reason = " ".join((pause_reason or "").split())[:200] or None
    if spec is None:
        problems = _decide_invalid(draft, observation, generation)
        history_limits = HistoryLimits()
    else:
        _decide_valid(
            draft,
            spec,
            spec.schedule or default_schedule,
            observation,
            generation,
            authorization_problem=authorization_problem,
            capacity_available=capacity_available,
        )
        problems = None
        history_limits = spec.history
    _judge_thresholds(draft, status, spec)
    _prune_pods(draft, history_limits, finished_pods)
    _set_conditions(draft, problems, spec)
    wake = min(
        (time for time in (_wake_time(draft, spec), _threshold_wake_time(draft, spec)) if time is not None),
        default=None,
    )
    if wake is not None:
        draft.actions.append(WakeAt(wake))
    return Decision(draft.status, tuple(draft.actions), draft.status != status)


# ------------------------------------------------------------------------------------------ the draft


def _editable_copy(status: DestinationJobStatus) -> DestinationJobStatus:
    """A copy the core may edit without touching the caller's status.

    Cheaper than a deep copy: the core only ever edits `runs` in place; every other nested value
    (current_run, last_run, history, conditions) is replaced whole, never mutated.
    """
    return status.model_copy(update={"runs": status.runs.model_copy()})


@dataclass
class _Draft:
    """The status being edited and the actions collected so far."""

    status: DestinationJobStatus
    now: datetime
    job_name: str
    actions: list[Action] = field(default_factory=list)
    recheck_at: datetime | None = None
    """Set when a due run is held back (Authorization, capacity): when to look again."""
    pause_reason: str | None = None
    """The `destinations.dev/pause-reason` annotation, one line."""

    def paused_message(self) -> str:
        if self.pause_reason:
            return f"paused by spec.paused ({self.pause_reason}); set it to false to resume"
        return _PAUSED_MESSAGE

    def paused_event(self, text: str) -> str:
        return f"{text}: {self.pause_reason}" if self.pause_reason else text

    def enter(self, phase: Phase, reason: Reason, message: str, next_run_at: datetime | None = None) -> None:
        if self.status.phase != phase:
            self.status.phase_since = format_time(self.now)
        self.status.phase = phase
        self.status.reason = reason.value
        self.status.message = message
        self.status.next_run_at = format_time(next_run_at) if next_run_at is not None else None

    def record(
        self, event: JobEvent, message: str, *, run: int | None = None, records: RecordCounts | None = None
    ) -> None:
        entry = HistoryEntry(
            time=format_time(self.now), event=event.value, run=run, message=message, records=records
        )
        self.status.history = [*self.status.history, entry][-HISTORY_LIMIT:]
        event_type = EventType.WARNING if event in _WARNING_EVENTS else EventType.NORMAL
        self.actions.append(PostEvent(event.value, message, event_type))


# -------------------------------------------------------------------------------------- valid specs


def _decide_valid(
    draft: _Draft,
    spec: DestinationJobSpec,
    schedule: Schedule,
    observation: Observation,
    generation: int,
    *,
    authorization_problem: str | None,
    capacity_available: bool,
) -> None:
    status = draft.status
    if status.phase is None:
        _initialise(draft, schedule, observation, generation)
    elif status.observed_generation != generation:
        _apply_spec_change(draft, spec, schedule, generation)
    _apply_observation(draft, spec, schedule, observation)
    _enforce_run_timeout(draft, spec, schedule, spec.run_timeout)
    _apply_pause(draft, spec, schedule)
    _start_due_run(draft, spec, authorization_problem, capacity_available)
    _purge_if_expired(draft, spec)


def _initialise(draft: _Draft, schedule: Schedule | None, observation: Observation, generation: int) -> None:
    status = draft.status
    status.observed_generation = generation
    status.last_updated = format_time(draft.now)
    if isinstance(observation, JobObserved) and status.created_by is None:
        status.created_by = observation.created_by
    first_run = next_due(schedule, last_started=None, reference=draft.now) if schedule else draft.now
    draft.enter(Phase.PENDING, Reason.FIRST_RUN_SCHEDULED, _first_run_message(first_run), first_run)


def _apply_spec_change(draft: _Draft, spec: DestinationJobSpec, schedule: Schedule, generation: int) -> None:
    status = draft.status
    status.observed_generation = generation
    status.last_updated = format_time(draft.now)
    if status.phase == Phase.FAILED:
        if spec.paused:
            _reset_errors(status)
            draft.enter(Phase.PAUSED, Reason.PAUSED, draft.paused_message())
            draft.record(JobEvent.PAUSED, draft.paused_event("paused by spec.paused (the job was Failed)"))
        else:
            _resume(draft, schedule, "resumed from Failed by a spec change")
    elif status.phase in _WAITING_PHASES and status.reason in (Reason.FIRST_RUN_SCHEDULED, Reason.SCHEDULED):
        # The schedule may have changed: count the next run from the previous one again.
        due = _regular_due(draft, schedule)
        reason = Reason(status.reason)
        message = (
            _first_run_message(due)
            if reason == Reason.FIRST_RUN_SCHEDULED
            else _scheduled_message(draft, due)
        )
        draft.enter(Phase(status.phase), reason, message, due)


def _apply_observation(
    draft: _Draft, spec: DestinationJobSpec, schedule: Schedule, observation: Observation
) -> None:
    status = draft.status
    if isinstance(observation, RunNowRequested):
        if not observation.value or observation.value == status.last_handled_request_at:
            return
        status.last_handled_request_at = observation.value
        if status.phase == Phase.FAILED:
            _resume(draft, schedule, f"resumed from Failed by a run-now request ({observation.value})")
        if status.phase in _WAITING_PHASES:
            # Run-now on a Paused, Completed or Running job is acknowledged but starts nothing.
            status.next_run_at = format_time(draft.now)
    elif isinstance(observation, RunFinished):
        if _is_current(status, observation.run):
            report = observation.report
            finished_at = observation.finished_at or draft.now
            _finish_run(
                draft, spec, schedule, report.result, report.records, report.message,
                finished_at=finished_at, retry_after=report.retry_after_seconds,
                rejections=report.rejections,
            )  # fmt: skip
    elif isinstance(observation, RunLost):
        if _is_current(status, observation.run):
            message = f"the sync pod was lost: {observation.reason}"
            _finish_run(
                draft, spec, schedule, RunResult.FAILED, RecordCounts(), message, finished_at=draft.now
            )
    elif isinstance(observation, RunTimedOut) and _is_current(status, observation.run):
        _time_out(draft, spec, schedule, spec.run_timeout)


def _enforce_run_timeout(
    draft: _Draft, spec: DestinationJobSpec | None, schedule: Schedule | None, run_timeout: timedelta
) -> None:
    current = draft.status.current_run
    if current is not None and draft.now >= parse_time(current.started_at) + run_timeout:
        _time_out(draft, spec, schedule, run_timeout)


def _time_out(
    draft: _Draft, spec: DestinationJobSpec | None, schedule: Schedule | None, run_timeout: timedelta
) -> None:
    current = draft.status.current_run
    assert current is not None
    draft.actions.append(DeletePod(current.pod, current.number))
    message = f"the run took longer than runTimeout {format_duration(run_timeout)} and was stopped"
    _finish_run(draft, spec, schedule, RunResult.FAILED, RecordCounts(), message, finished_at=draft.now)


def _apply_pause(draft: _Draft, spec: DestinationJobSpec, schedule: Schedule) -> None:
    status = draft.status
    current = status.current_run
    if spec.paused:
        if status.phase in _WAITING_PHASES:
            draft.enter(Phase.PAUSED, Reason.PAUSED, draft.paused_message())
            draft.record(JobEvent.PAUSED, draft.paused_event("paused by spec.paused"))
        elif current is not None and status.reason != Reason.PAUSE_REQUESTED:
            message = f"run {current.number} in pod {current.pod} finishes, then the job pauses"
            draft.enter(Phase.RUNNING, Reason.PAUSE_REQUESTED, message)
    elif status.phase == Phase.PAUSED:
        _resume(draft, schedule, "resumed: spec.paused is false")
    elif current is not None and status.reason == Reason.PAUSE_REQUESTED:
        draft.enter(Phase.RUNNING, Reason.RUN_IN_PROGRESS, _running_message(current))


def _start_due_run(
    draft: _Draft, spec: DestinationJobSpec, authorization_problem: str | None, capacity_available: bool
) -> None:
    status = draft.status
    if status.phase not in _WAITING_PHASES or status.current_run is not None:
        return
    phase = Phase(status.phase)
    due = parse_time(status.next_run_at) if status.next_run_at else draft.now
    authorization = spec.authorization_ref.name
    if due > draft.now:
        # Not due yet. A job that never ran shows why it may not start when due (DESIGN: Pending waits
        # for its Authorization); a sleeping job keeps its reason (backoff, rate limit) until due.
        if phase == Phase.PENDING and status.reason in (
            Reason.FIRST_RUN_SCHEDULED,
            Reason.WAITING_FOR_AUTHORIZATION,
        ):
            if authorization_problem is None:
                draft.enter(phase, Reason.FIRST_RUN_SCHEDULED, _first_run_message(due), due)
            else:
                message = f"Authorization {authorization} is not ready: {authorization_problem}"
                draft.enter(phase, Reason.WAITING_FOR_AUTHORIZATION, message, due)
        return
    if authorization_problem is not None:
        message = (
            f"the run due at {format_time(due)} waits for Authorization {authorization}, "
            f"which is not ready: {authorization_problem}"
        )
        draft.enter(phase, Reason.WAITING_FOR_AUTHORIZATION, message, due)
        draft.recheck_at = draft.now + AUTHORIZATION_RECHECK
        return
    if not capacity_available:
        message = (
            f"the run due at {format_time(due)} is queued: the operator's limit of concurrent runs is "
            "reached; it starts as soon as a run slot frees up"
        )
        draft.enter(phase, Reason.QUEUED_FOR_CAPACITY, message, due)
        draft.recheck_at = draft.now + CAPACITY_RECHECK
        return
    number = status.runs.total + 1
    pod = sync_pod_name(draft.job_name, number)
    status.runs.total = number
    status.current_run = CurrentRun(number=number, pod=pod, started_at=format_time(draft.now))
    draft.enter(Phase.RUNNING, Reason.RUN_IN_PROGRESS, _running_message(status.current_run))
    draft.actions.append(CreatePod(number, pod))
    if number == 1:
        draft.record(JobEvent.STARTED, f"first run started in pod {pod}", run=number)


def _purge_if_expired(draft: _Draft, spec: DestinationJobSpec) -> None:
    expires = _purge_time(draft.status, spec)
    if expires is not None and draft.now >= expires:
        phase = draft.status.phase
        draft.actions.append(
            DeleteJob(
                f"the job was {phase} for longer than purgeAfter "
                f"{format_duration(spec.purge_after or timedelta())}"
            )
        )


def _purge_time(status: DestinationJobStatus, spec: DestinationJobSpec | None) -> datetime | None:
    # Purgeable phases never have a run in flight (Running is the only phase that does).
    if (
        spec is None
        or spec.purge_after is None
        or status.phase not in _PURGEABLE_PHASES
        or not status.phase_since
    ):
        return None
    return parse_time(status.phase_since) + spec.purge_after


# ------------------------------------------------------------------------------------- finishing runs


def _finish_run(
    draft: _Draft,
    spec: DestinationJobSpec | None,
    schedule: Schedule | None,
    result: RunResult,
    records: RecordCounts,
    message: str,
    *,
    finished_at: datetime,
    retry_after: float | None = None,
    rejections: list[Rejection] | None = None,
) -> None:
    """Record the run in flight as finished and move the job on (spec None: the spec is invalid)."""
    status = draft.status
    current = status.current_run
    assert current is not None
    started = parse_time(current.started_at)
    ended = min(max(_whole_seconds(finished_at), started), draft.now)
    status.current_run = None
    status.last_run = LastRun(
        number=current.number,
        result=result,
        started_at=current.started_at,
        finished_at=format_time(ended),
        records=records.model_copy(),
        message=message,
        rejections=[rejection.model_copy() for rejection in rejections] if rejections else None,
    )
    retry = spec.retry if spec is not None else RetryPolicy()
    if result == RunResult.SUCCEEDED:
        status.runs.succeeded += 1
        _reset_errors(status)
        draft.record(
            JobEvent.SYNCED,
            _synced_message(current.number, records, message),
            run=current.number,
            records=records,
        )
        if spec is None or schedule is None:
            return
        if schedule.once:
            done = f"the once job succeeded in run {current.number} at {format_time(ended)}"
            draft.enter(Phase.COMPLETED, Reason.COMPLETED, done)
            draft.record(JobEvent.COMPLETED, done, run=current.number)
        else:
            due = next_due(schedule, last_started=started, reference=draft.now)
            draft.enter(Phase.SLEEPING, Reason.SCHEDULED, _scheduled_message(draft, due), due)
    elif result == RunResult.RATE_LIMITED:
        wait = timedelta(seconds=retry_after) if retry_after is not None else retry.initial_backoff
        # Rounded up: a provider's time is a bound, and a wake a second early meets the limit again.
        until = _whole_seconds_up(ended + wait)
        why = f": {message}" if message else ""
        text = (
            f"run {current.number} was rate limited by the provider{why}; sleeping until {format_time(until)}"
        )
        draft.record(JobEvent.SLEEPING, text, run=current.number, records=records)
        if spec is not None:
            draft.enter(Phase.SLEEPING, Reason.RATE_LIMITED, text, until)
    else:
        status.runs.failed += 1
        status.consecutive_errors += 1
        if status.errors_since is None:
            status.errors_since = format_time(ended)
        why = message or "no reason given"
        if spec is None:
            draft.record(
                JobEvent.ERROR,
                f"run {current.number} failed: {why}; no retry: the spec is invalid",
                run=current.number,
                records=records,
            )
            return
        failing_for = ended - parse_time(status.errors_since)
        # A pause requested during the run wins over giving up: the job pauses instead (and a resume
        # starts a fresh error budget), so `paused: true` always ends in Paused.
        if failing_for >= retry.fail_after and not spec.paused:
            text = (
                f"run {current.number} failed: {why}; giving up after {status.consecutive_errors} "
                f"consecutive errors since {status.errors_since}"
            )
            draft.record(JobEvent.ERROR, text, run=current.number, records=records)
            failed = (
                f"runs kept failing since {status.errors_since}, longer than failAfter "
                f"{format_duration(retry.fail_after)}; last error: {why}. Set the annotation "
                "destinations.dev/requested-at or change the spec to resume"
            )
            draft.enter(Phase.FAILED, Reason.RETRIES_EXHAUSTED, failed)
            draft.record(JobEvent.FAILED, failed, run=current.number)
        else:
            delay = backoff(retry, status.consecutive_errors)
            due = ended + delay
            text = (
                f"run {current.number} failed: {why}; "
                f"retrying at {format_time(due)} (backoff {format_duration(delay)})"
            )
            draft.record(JobEvent.ERROR, text, run=current.number, records=records)
            draft.enter(Phase.SLEEPING, Reason.BACKING_OFF, text, due)


def backoff(retry: RetryPolicy, consecutive_errors: int) -> timedelta:
    """The wait after the n-th error in a row: initialBackoff, doubling each time, capped at maxBackoff."""
    doublings = min(max(consecutive_errors - 1, 0), 40)
    delay: timedelta = min(retry.initial_backoff * (2**doublings), retry.max_backoff)
    return delay


def _resume(draft: _Draft, schedule: Schedule, why: str) -> None:
    """Leave Failed or Paused with a fresh error budget, due at the next regular time (at once if overdue)."""
    status = draft.status
    _reset_errors(status)
    due = _regular_due(draft, schedule)
    if status.runs.total == 0:
        draft.enter(Phase.PENDING, Reason.FIRST_RUN_SCHEDULED, _first_run_message(due), due)
    else:
        draft.enter(Phase.SLEEPING, Reason.SCHEDULED, _scheduled_message(draft, due), due)
    draft.record(JobEvent.RESUMED, why)


def _regular_due(draft: _Draft, schedule: Schedule) -> datetime:
    last = draft.status.last_run
    last_started = parse_time(last.started_at) if last is not None and last.started_at else None
    return next_due(schedule, last_started=last_started, reference=draft.now)


def _reset_errors(status: DestinationJobStatus) -> None:
    status.consecutive_errors = 0
    status.errors_since = None


def _is_current(status: DestinationJobStatus, run: int) -> bool:
    """Run observations about any other run are stale repeats: ignored."""
    return status.current_run is not None and status.current_run.number == run


# -------------------------------------------------------------------------------------- invalid specs


def _decide_invalid(draft: _Draft, observation: Observation, generation: int) -> str:
    """The spec does not validate: finish any run in flight, then stay Failed until the spec is fixed.

    A Completed job stays Completed (it never runs again anyway). Invalid jobs are never purged:
    their `purgeAfter` cannot be read.
    """
    status = draft.status
    problems = _stored_problems(status)
    if isinstance(observation, InvalidSpec):
        problems = observation.problems
    if status.phase is None:
        _initialise(draft, None, observation, generation)
    elif status.observed_generation != generation:
        status.observed_generation = generation
        status.last_updated = format_time(draft.now)
    if isinstance(observation, RunNowRequested) and observation.value:
        status.last_handled_request_at = observation.value
    if status.current_run is not None:
        if isinstance(observation, RunFinished) and _is_current(status, observation.run):
            report = observation.report
            finished_at = observation.finished_at or draft.now
            _finish_run(
                draft, None, None, report.result, report.records, report.message, finished_at=finished_at
            )
        elif isinstance(observation, RunLost) and _is_current(status, observation.run):
            message = f"the sync pod was lost: {observation.reason}"
            _finish_run(draft, None, None, RunResult.FAILED, RecordCounts(), message, finished_at=draft.now)
        elif isinstance(observation, RunTimedOut) and _is_current(status, observation.run):
            _time_out(draft, None, None, DEFAULT_RUN_TIMEOUT)
        else:
            _enforce_run_timeout(draft, None, None, DEFAULT_RUN_TIMEOUT)
    if status.current_run is not None or status.phase == Phase.COMPLETED:
        return problems
    message = f"the spec is invalid: {problems}"
    entering = status.phase != Phase.FAILED
    draft.enter(Phase.FAILED, Reason.INVALID_SPEC, message)
    if entering:
        draft.record(JobEvent.FAILED, message)
    return problems


def _stored_problems(status: DestinationJobStatus) -> str:
    for condition in status.conditions:
        if condition.type == "Stalled" and condition.reason == Reason.INVALID_SPEC and condition.message:
            return condition.message
    return "the spec does not validate"


# ------------------------------------------------------------------------------------------- pods


def _prune_pods(draft: _Draft, limits: HistoryLimits, finished_pods: Sequence[FinishedPod]) -> None:
    """Delete finished pods beyond the history limits, never one whose result is not recorded yet."""
    status = draft.status
    recorded_up_to = status.last_run.number if status.last_run is not None else 0
    in_flight = status.current_run.number if status.current_run is not None else None
    candidates = sorted(
        (pod for pod in finished_pods if pod.run <= recorded_up_to and pod.run != in_flight),
        key=lambda pod: pod.run,
        reverse=True,
    )
    succeeded = [pod for pod in candidates if pod.succeeded]
    failed = [pod for pod in candidates if not pod.succeeded]
    for pod in [*succeeded[limits.succeeded :], *failed[limits.failed :]]:
        draft.actions.append(DeletePod(pod.name, pod.run))


# ------------------------------------------------------------------------------------- conditions


def _set_conditions(draft: _Draft, invalid_problems: str | None, spec: DestinationJobSpec | None) -> None:
    """Ready always; Reconciling while a run is in flight; Stalled when Failed or the spec is invalid;
    Degraded when `spec.alerts` is set (True while a threshold is crossed).

    Reconciling and Stalled are "abnormal-true" conditions (kstatus): present only while True.
    kstatus reads only Ready, Reconciling and Stalled, so a Degraded job still reads as Current.
    """
    status = draft.status
    previous = {condition.type: condition for condition in status.conditions}
    reason = status.reason or ""
    message = status.message or ""
    wanted: list[tuple[str, str, str, str]] = []
    if status.current_run is not None:
        wanted.append(("Ready", "Unknown", reason, message))
        wanted.append(("Reconciling", "True", reason, _running_message(status.current_run)))
    elif status.phase == Phase.FAILED or reason in (Reason.WAITING_FOR_AUTHORIZATION, Reason.BACKING_OFF):
        wanted.append(("Ready", "False", reason, message))
    else:
        wanted.append(("Ready", "True", reason, message))
    if invalid_problems is not None:
        wanted.append(("Stalled", "True", Reason.INVALID_SPEC.value, invalid_problems))
    elif status.phase == Phase.FAILED:
        wanted.append(("Stalled", "True", reason, message))
    # An invalid spec hides spec.alerts: Degraded stays as it was, with the crossings stored.
    alerts_set = spec.alerts is not None if spec is not None else "Degraded" in previous
    if alerts_set or status.thresholds_exceeded:
        wanted.append(("Degraded", *thresholds.degraded(status.thresholds_exceeded)))
    conditions: list[Condition] = []
    for kind, value, why, text in wanted:
        before = previous.get(kind)
        changed = before is None or before.status != value
        conditions.append(
            Condition(
                type=kind,
                status=value,
                reason=why,
                message=text,
                last_transition_time=format_time(draft.now)
                if changed
                else before.last_transition_time
                if before
                else None,
                observed_generation=status.observed_generation,
            )
        )
    status.conditions = conditions


# ------------------------------------------------------------------------------------- thresholds


def _judge_thresholds(draft: _Draft, before: DestinationJobStatus, spec: DestinationJobSpec | None) -> None:
    """Record the run that finished in this decision, then judge `spec.alerts` (lifecycle/thresholds.py).

    Each threshold newly crossed becomes a Warning Event `ThresholdExceeded` and a history entry.
    With an invalid spec the thresholds cannot be read: the crossings stay as they were.
    """
    status = draft.status
    last = status.last_run
    finished = last is not None and (before.last_run is None or before.last_run.number != last.number)
    if finished and last is not None:
        if last.result == RunResult.SUCCEEDED:
            status.last_successful_time = last.finished_at
            status.last_successful_read = last.records.read
        elif last.result == RunResult.FAILED:
            status.last_failure_time = last.finished_at
    if spec is None:
        return
    alerts = spec.alerts
    crossings = thresholds.keep_configured(status.thresholds_exceeded, alerts)
    announce: list[ThresholdCrossing] = []
    now = format_time(draft.now)
    if alerts is not None:
        if finished and last is not None:
            started = parse_time(last.started_at) if last.started_at else parse_time(last.finished_at)
            took = parse_time(last.finished_at) - started
            measured = thresholds.measure_run(alerts, last, took, before.last_successful_read)
            crossings, new = thresholds.apply(crossings, measured, run=last.number, now=now, new_fact=True)
            announce += new
        current = status.current_run
        if current is not None:
            slow = thresholds.measure_run_in_flight(alerts, parse_time(current.started_at), draft.now)
            # Only a finished run brings maxRunDuration back within bounds.
            if slow is not None and slow.crossed:
                crossings, new = thresholds.apply(
                    crossings, [slow], run=current.number, now=now, new_fact=True
                )
                announce += new
        waiting = thresholds.measure_no_success(alerts, status, draft.now, _no_success_reference(status))
        if waiting is None:
            crossings = [crossing for crossing in crossings if crossing.threshold != "noSuccessFor"]
        else:
            latest = last.number if last is not None else None
            crossings, new = thresholds.apply(crossings, [waiting], run=latest, now=now, new_fact=False)
            announce += new
    status.thresholds_exceeded = crossings
    for crossing in announce:
        draft.record(JobEvent.THRESHOLD_EXCEEDED, thresholds.message(crossing), run=crossing.run)


def _no_success_reference(status: DestinationJobStatus) -> datetime | None:
    """What `noSuccessFor` counts from: the last success, else the first error of the current streak."""
    if status.last_successful_time:
        return parse_time(status.last_successful_time)
    return parse_time(status.errors_since) if status.errors_since else None


def _threshold_wake_time(draft: _Draft, spec: DestinationJobSpec | None) -> datetime | None:
    """When a threshold judged by the clock falls due (a second past the limit: crossing means longer)."""
    alerts = spec.alerts if spec is not None else None
    if alerts is None:
        return None
    status = draft.status
    crossed = {crossing.threshold: crossing for crossing in status.thresholds_exceeded}
    times: list[datetime] = []
    current = status.current_run
    slow = crossed.get("maxRunDuration")
    if (
        alerts.max_run_duration is not None
        and current is not None
        and (slow is None or slow.run != current.number)
    ):
        times.append(parse_time(current.started_at) + alerts.max_run_duration + _ONE_SECOND)
    reference = _no_success_reference(status)
    if (
        alerts.no_success_for is not None
        and reference is not None
        and "noSuccessFor" not in crossed
        and status.phase not in (Phase.PAUSED, Phase.COMPLETED)
    ):
        times.append(reference + alerts.no_success_for + _ONE_SECOND)
    return min(times, default=None)


_ONE_SECOND = timedelta(seconds=1)


# ------------------------------------------------------------------------------------------ waking


def _wake_time(draft: _Draft, spec: DestinationJobSpec | None) -> datetime | None:
    status = draft.status
    if status.current_run is not None:
        timeout = spec.run_timeout if spec is not None else DEFAULT_RUN_TIMEOUT
        return parse_time(status.current_run.started_at) + timeout
    if status.phase in _WAITING_PHASES:
        if draft.recheck_at is not None:
            return draft.recheck_at
        return parse_time(status.next_run_at) if status.next_run_at else None
    return _purge_time(status, spec)


# ------------------------------------------------------------------------------------------ texts

_PAUSED_MESSAGE = "paused by spec.paused; set it to false to resume"


def _first_run_message(due: datetime) -> str:
    return f"first run due at {format_time(due)}"


def _scheduled_message(draft: _Draft, due: datetime) -> str:
    last = draft.status.last_run
    previous = f"last run {last.number} {last.result.value}; " if last is not None else ""
    return f"{previous}next run due at {format_time(due)}"


def _running_message(current: CurrentRun) -> str:
    return f"run {current.number} in pod {current.pod} since {current.started_at}"


def _synced_message(run: int, records: RecordCounts, message: str) -> str:
    counts = (
        f"{records.read} read, {records.added} added, {records.updated} updated, {records.removed} removed, "
        f"{records.omitted} omitted, {records.failed} failed"
    )
    return f"run {run} synced: {counts}" + (f" ({message})" if message else "")


# -------------------------------------------------------------------------------------------- time


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with whole seconds, the way Kubernetes writes timestamps."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Read an RFC 3339 timestamp written by `format_time` (or any ISO 8601 with an offset)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _whole_seconds(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def _whole_seconds_up(moment: datetime) -> datetime:
    """The first whole second at or after `moment` (status times have whole seconds)."""
    down = _whole_seconds(moment)
    return down if down == moment else down + timedelta(seconds=1)
