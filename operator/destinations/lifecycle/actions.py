"""What the operator must do: the outputs of `decide`, carried out in the order given.

Every action is idempotent on the Kubernetes side: pods are named deterministically from the job and
the run number (`sync_pod_name`), so creating one twice yields 409 Conflict, and deleting a missing one
yields 404; both are harmless.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True)
class CreatePod:
    """Create the sync pod of run `run`, named `pod_name`."""

    run: int
    pod_name: str


@dataclass(frozen=True)
class DeletePod:
    """Delete a sync pod: a timed-out run's, or a finished one beyond the `history` limits."""

    pod_name: str
    run: int | None = None


@dataclass(frozen=True)
class PostEvent:
    """Post a Kubernetes Event on the job (the same entry is already in `status.history`)."""

    reason: str
    message: str
    type: EventType = EventType.NORMAL


@dataclass(frozen=True)
class WakeAt:
    """Call `decide` again with `TimerFired` at `time` unless another observation comes first."""

    time: datetime


@dataclass(frozen=True)
class DeleteJob:
    """Purge the job (its pods follow through their ownerReferences); `message` says why."""

    message: str


Action = CreatePod | DeletePod | PostEvent | WakeAt | DeleteJob

_POD_NAME_LIMIT = 63


def sync_pod_name(job_name: str, run: int) -> str:
    """The pod name of run `run` of job `job_name`: `<job>-run-<n>`, a DNS-1123 label of at most 63 chars.

    Dots (allowed in job names) become dashes, since pod names double as host names; such names, and
    long ones (cut to fit), get a hash of the full name too, so two jobs never share a pod name
    (`a.b` and `a-b`, or two long names with one prefix).
    """
    base = job_name.lower().replace(".", "-")
    suffix = f"-run-{run}"
    if len(base) + len(suffix) <= _POD_NAME_LIMIT and base == job_name:
        return base + suffix
    digest = hashlib.sha256(job_name.encode()).hexdigest()[:8]
    room = _POD_NAME_LIMIT - len(suffix) - len(digest) - 1
    return f"{base[:room].rstrip('-')}-{digest}{suffix}"
