"""Reading the world into the lifecycle core's terms: pure functions over Kubernetes objects.

The watch delivers whole objects; the operator keeps only the small summaries made here (a job's spec
and a few metadata fields, a pod's run number and outcome), so 1,000 jobs and their pods cost little
memory, and the decisions they feed are testable without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from destinations.api.models import DestinationJobSpec, DestinationJobStatus
from destinations.api.runs import CONFIRM_REMOVAL_ANNOTATION, RunReport
from destinations.controller.pods import (
    CONTAINER_NAME,
    DRY_RUN_ANNOTATION,
    JOB_LABEL,
    RUN_LABEL,
    read_pod_outcome,
)
from destinations.lifecycle import (
    FinishedPod,
    Observation,
    RunFinished,
    RunLost,
    RunNowRequested,
    SpecChanged,
    parse_time,
)
from destinations.validate import parse_job_spec, validate_job_authorization

CREATED_BY_ANNOTATION = "destinations.dev/created-by"
REQUESTED_AT_ANNOTATION = "destinations.dev/requested-at"
PAUSE_REASON_ANNOTATION = "destinations.dev/pause-reason"


# ------------------------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class JobView:
    """What the operator keeps of a DestinationJob between watch events."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: Mapping[str, Any]
    created_by: str | None
    requested_at: str | None
    deleting: bool
    confirmed_removal_run: int | None = None
    """The `destinations.dev/confirm-removal` annotation as a run number (None when absent or not one)."""
    pause_reason: str | None = None
    """The `destinations.dev/pause-reason` annotation: why the job is paused, shown in its status."""
    dry_run_requested_at: str | None = None
    """The `destinations.dev/dry-run-requested-at` annotation: a new value asks for a dry run."""

    @property
    def authorization_name(self) -> str | None:
        reference = self.spec.get("authorizationRef")
        name = reference.get("name") if isinstance(reference, Mapping) else None
        return name if isinstance(name, str) else None

    def involved_object(self) -> dict[str, str]:
        """The job as an Event's involvedObject."""
        from destinations import API_VERSION

        return {
            "apiVersion": API_VERSION,
            "kind": "DestinationJob",
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
        }


def job_view(body: Mapping[str, Any]) -> JobView:
    metadata = body.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    spec = body.get("spec")
    return JobView(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        generation=int(metadata.get("generation") or 1),
        spec=spec if isinstance(spec, Mapping) else {},
        created_by=annotations.get(CREATED_BY_ANNOTATION),
        requested_at=annotations.get(REQUESTED_AT_ANNOTATION),
        deleting=bool(metadata.get("deletionTimestamp")),
        confirmed_removal_run=_run_number(annotations.get(CONFIRM_REMOVAL_ANNOTATION)),
        pause_reason=annotations.get(PAUSE_REASON_ANNOTATION),
        dry_run_requested_at=annotations.get(DRY_RUN_ANNOTATION),
    )


def _run_number(value: Any) -> int | None:
    """A run number written in an annotation (`"7"`); None for anything else, which confirms nothing."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() and int(text) >= 1 else None


def job_status(body: Mapping[str, Any]) -> DestinationJobStatus:
    """The persisted status; an unreadable one (edited by hand) starts afresh rather than crash."""
    try:
        return DestinationJobStatus.model_validate(body.get("status") or {})
    except ValueError:
        return DestinationJobStatus()


def observations_for_change(view: JobView, status: DestinationJobStatus) -> list[Observation]:
    """What a new version of the job means: a spec change, a run-now request, or nothing."""
    observations: list[Observation] = []
    if status.phase is not None and view.generation != status.observed_generation:
        observations.append(SpecChanged())
    if view.requested_at and view.requested_at != status.last_handled_request_at:
        observations.append(RunNowRequested(view.requested_at))
    return observations


@dataclass(frozen=True)
class ParsedSpec:
    spec: DestinationJobSpec | None
    problems: str | None
    """None when the spec is valid; else the user-facing list of problems (field, value, accepted)."""


def parse_spec(
    view: JobView, authorization_spec: Mapping[str, Any] | None, *, default_purge_after: timedelta | None
) -> ParsedSpec:
    """Validate the spec as the admission webhook would (DESIGN.md §6), and parse it (one pass)."""
    spec, problems = parse_job_spec(view.spec, view.namespace)
    if not problems and authorization_spec is not None:
        problems = validate_job_authorization(view.spec, authorization_spec)
    if problems or spec is None:
        return ParsedSpec(None, "; ".join(str(problem) for problem in problems) or "the spec does not parse")
    if view.spec.get("purgeAfter") is None:  # the operator's --purge-after is the default (null: absent)
        spec = spec.model_copy(update={"purge_after": default_purge_after})
    return ParsedSpec(spec, None)


# ------------------------------------------------------------------------------------------- pods


@dataclass(frozen=True)
class PodSummary:
    """A sync pod as the operator remembers it: which run, and how it ended (if it has)."""

    name: str
    job: str
    run: int
    finished: bool
    report: RunReport | None
    finished_at: datetime | None
    deleting: bool
    resource_version: str = ""
    """The pod's `metadata.resourceVersion` when summarized: the same version needs no new summary."""


def summarize_pod(body: Mapping[str, Any]) -> PodSummary | None:
    """The summary of a sync pod, or None for a pod that is not one (no job or run label)."""
    metadata = body.get("metadata") or {}
    labels = metadata.get("labels") or {}
    job, run = labels.get(JOB_LABEL), labels.get(RUN_LABEL)
    if not job or not run or not str(run).isdigit():
        return None
    outcome = read_pod_outcome(dict(body))
    return PodSummary(
        name=str(metadata.get("name", "")),
        job=str(job),
        run=int(run),
        finished=outcome.finished,
        report=outcome.report,
        finished_at=_finished_at(body) if outcome.finished else None,
        deleting=bool(metadata.get("deletionTimestamp")),
        resource_version=str(metadata.get("resourceVersion") or ""),
    )


def _finished_at(body: Mapping[str, Any]) -> datetime | None:
    for container in (body.get("status") or {}).get("containerStatuses") or []:
        if container.get("name") == CONTAINER_NAME:
            finished = ((container.get("state") or {}).get("terminated") or {}).get("finishedAt")
            if isinstance(finished, str):
                try:
                    return parse_time(finished)
                except ValueError:
                    return None
    return None


def run_observation(
    status: DestinationJobStatus, pod: PodSummary | None, *, pod_name: str, gone: bool
) -> Observation | None:
    """What a sync pod says about the run in flight: finished, lost, or nothing yet.

    `gone` means the pod no longer exists (deleted, or never found when adopting the run after a
    restart); the last summary seen, if any, may still carry its result, which is then not lost.
    """
    current = status.current_run
    if current is None or current.pod != pod_name:
        return None
    if pod is not None and pod.finished and pod.report is not None:
        return RunFinished(current.number, pod.report, pod.finished_at)
    if gone:
        return RunLost(current.number, f"pod {pod_name} was deleted before the run finished")
    return None


def finished_pods(pods: Iterable[PodSummary]) -> list[FinishedPod]:
    """The terminated pods, for the history limits; rate-limited runs count with the failed ones."""
    return [
        FinishedPod(
            run=pod.run,
            name=pod.name,
            succeeded=pod.report is not None and pod.report.result.value == "succeeded",
        )
        for pod in pods
        if pod.finished and not pod.deleting
    ]
