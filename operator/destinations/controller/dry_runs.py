"""Dry runs: `destinations.dev/dry-run-requested-at` on a job → a read-only sync pod → `status.lastDryRun`.

Like run-now (`destinations.dev/requested-at`), any new value asks once. The operator starts a pod of
the job's image with `RunRequest.dry_run` (named from the job and a digest of the value, so asking
twice, or an operator restart, never starts two), labelled `destinations.dev/dry-run` instead of a run
number: the lifecycle core never sees it, so the phase, backoff, counters, run numbers and history are
untouched. When the pod ends, its report becomes `status.lastDryRun` (one status write, only that
field) and the pod is deleted. The worker writes nothing to the provider or the bookkeeping
(destinations.worker.dry_run). A dry run may overlap a real run: it only reads.

A provider's read-only lookup (Salesforce in insert and update mode) refreshes its OAuth2 token, and
with refresh token rotation the refresh invalidates the Secret's refresh token. So, as for runs, the
report's sealed `rotatedCredentials` are stored in the Authorization's Secret before the result is
written (`AuthorizationLookup.store_rotated`); the seal is bound to the request value (`sealing_id`),
since a dry-run pod carries the number of the job's next run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from destinations.api.models import DestinationJobStatus, DryRunRecords, DryRunSamples, LastDryRun, RunResult
from destinations.api.runs import RunReport, dry_run_sealing_id
from destinations.controller.pods import DRY_RUN_ANNOTATION, DRY_RUN_LABEL, JOB_LABEL, read_pod_outcome
from destinations.lifecycle import format_time

_POD_NAME_LIMIT = 63


@dataclass(frozen=True)
class DryRunRequested:
    """The job's dry-run annotation holds a value `status.lastDryRun` does not answer yet."""

    value: str


@dataclass(frozen=True)
class DryRunFinished:
    """A dry run's pod ended (or could not be made): its report, or why there is none."""

    value: str
    pod_name: str | None
    report: RunReport


DryRunEvent = DryRunRequested | DryRunFinished


def dry_run_pod_name(job: str, value: str) -> str:
    """`<job>-dry-run-<8 hex>`: one pod per request value, a DNS label of at most 63 characters."""
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    suffix = f"-dry-run-{digest}"
    return job[: _POD_NAME_LIMIT - len(suffix)].rstrip("-.") + suffix


def sealing_id(namespace: str, name: str, value: str) -> str:
    """What the sealed credentials of the dry run answering `value` open with (RunRequest.sealing_id)."""
    return dry_run_sealing_id(namespace, name, value)


def requested(value: str | None, status: DestinationJobStatus) -> DryRunRequested | None:
    """A new dry-run request, or None when there is none or it was answered."""
    if not value or (status.last_dry_run is not None and status.last_dry_run.requested_at == value):
        return None
    return DryRunRequested(value)


def job_of_dry_run_pod(body: Mapping[str, Any]) -> str | None:
    """The job a dry run's pod belongs to, or None for any other pod."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    job = labels.get(JOB_LABEL)
    return str(job) if labels.get(DRY_RUN_LABEL) and job else None


def finished(body: Mapping[str, Any]) -> DryRunFinished | None:
    """The dry run's outcome once its pod ended; None while it runs."""
    metadata = body.get("metadata") or {}
    value = (metadata.get("annotations") or {}).get(DRY_RUN_ANNOTATION)
    outcome = read_pod_outcome(dict(body))
    if not value or not outcome.finished or outcome.report is None:
        return None
    return DryRunFinished(str(value), str(metadata.get("name", "")), outcome.report)


def failed(value: str, message: str) -> DryRunFinished:
    """A dry run that could not start (invalid spec, unreadable Authorization, pod refused)."""
    return DryRunFinished(value, None, RunReport(result=RunResult.FAILED, message=message))


def last_dry_run(event: DryRunFinished, now: datetime) -> LastDryRun:
    """What `status.lastDryRun` shows for a finished dry run."""
    report = event.report
    result = RunResult.SUCCEEDED if report.result == RunResult.SUCCEEDED else RunResult.FAILED
    preview = report.preview
    return LastDryRun(
        requested_at=event.value,
        result=result,
        finished_at=format_time(now),
        records=preview.records if preview is not None else DryRunRecords(),
        samples=preview.samples if preview is not None else DryRunSamples(),
        message=report.message,
    )
