"""What the operator saw: the inputs of `decide`, one per call.

Each observation is a fact about the world, never a command. Stale or repeated facts (a second
`RunFinished` for the same run, a run-now request already handled) are ignored by the core, so the
operator can deliver them at-least-once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from destinations.api.runs import RunReport


@dataclass(frozen=True)
class JobObserved:
    """The operator saw the job (created, operator restarted, periodic re-list).

    An empty status is initialised; otherwise this behaves like `TimerFired`.
    """

    created_by: str | None = None
    """The `destinations.dev/created-by` annotation, copied to `status.createdBy` once."""


@dataclass(frozen=True)
class SpecChanged:
    """The spec changed (a new `metadata.generation`, passed to `decide` as `generation`).

    Pause and unpause are spec changes; a spec change resumes a Failed job.
    """


@dataclass(frozen=True)
class RunNowRequested:
    """The `destinations.dev/requested-at` annotation has this value; a new value means "run now"."""

    value: str


@dataclass(frozen=True)
class AuthorizationReady:
    """The job's Authorization is Healthy: a due run may start (otherwise like `TimerFired`)."""


@dataclass(frozen=True)
class AuthorizationNotReady:
    """The job's Authorization is missing or not Healthy; `message` says why. No run starts."""

    message: str


@dataclass(frozen=True)
class CapacityFull:
    """The operator's global limit of concurrent runs is reached: a due run stays queued."""


@dataclass(frozen=True)
class TimerFired:
    """A `WakeAt` time arrived (or any periodic check): start a due run, enforce timeouts, purge."""


@dataclass(frozen=True)
class RunFinished:
    """The sync pod of run `run` terminated and its termination message was read."""

    run: int
    report: RunReport
    finished_at: datetime | None = None
    """When the container terminated; defaults to the decision's `now`."""


@dataclass(frozen=True)
class RunLost:
    """The sync pod of run `run` vanished, was evicted or ended without a readable report: an error."""

    run: int
    reason: str


@dataclass(frozen=True)
class RunTimedOut:
    """Run `run` exceeded `runTimeout` (the core also detects this itself from `currentRun.startedAt`)."""

    run: int


@dataclass(frozen=True)
class InvalidSpec:
    """The spec failed validation (pass `spec=None` to `decide`); `problems` is the user-facing message."""

    problems: str


Observation = (
    JobObserved
    | SpecChanged
    | RunNowRequested
    | AuthorizationReady
    | AuthorizationNotReady
    | CapacityFull
    | TimerFired
    | RunFinished
    | RunLost
    | RunTimedOut
    | InvalidSpec
)
"""Everything `decide` accepts."""
