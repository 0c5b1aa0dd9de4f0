"""The lifecycle core: a pure, clock-driven state machine for DestinationJobs (DESIGN.md §3).

No I/O, no kopf, no clock: the operator reads the world, calls `decide` with one observation and the
current time, persists `Decision.status` when `status_changed`, and carries out `Decision.actions`.
See docs/lifecycle.md for the state machine and the decisions behind it.
"""

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
from destinations.lifecycle.core import (
    HISTORY_LIMIT,
    Decision,
    FinishedPod,
    JobEvent,
    Reason,
    backoff,
    decide,
    format_time,
    parse_time,
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
    SpecChanged,
    TimerFired,
)
from destinations.lifecycle.schedule import next_cron_time, next_due

__all__ = [
    "HISTORY_LIMIT",
    "Action",
    "AuthorizationNotReady",
    "AuthorizationReady",
    "CapacityFull",
    "CreatePod",
    "Decision",
    "DeleteJob",
    "DeletePod",
    "EventType",
    "FinishedPod",
    "InvalidSpec",
    "JobEvent",
    "JobObserved",
    "Observation",
    "PostEvent",
    "Reason",
    "RunFinished",
    "RunLost",
    "RunNowRequested",
    "RunTimedOut",
    "SpecChanged",
    "TimerFired",
    "WakeAt",
    "backoff",
    "decide",
    "format_time",
    "next_cron_time",
    "next_due",
    "parse_time",
    "sync_pod_name",
]
