"""Reading jobs and pods, exactly: whole summaries and observations, with literal expected values.

Complements test_observing.py (which names the behaviours): here every field of what the operator keeps
is compared, so a dropped field, a wrong container or a misread time fails.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from destinations.api.models import CurrentRun, DestinationJobStatus, Phase, RecordCounts, RunResult
from destinations.api.runs import RunReport
from destinations.controller.observing import (
    JobView,
    PodSummary,
    finished_pods,
    job_status,
    job_view,
    run_observation,
    summarize_pod,
)
from destinations.lifecycle import FinishedPod, RunFinished, RunLost

FINISHED = datetime(2030, 1, 1, 0, 0, 5, tzinfo=UTC)


def _pod(
    run: int | str = 3,
    *,
    phase: str = "Succeeded",
    report: dict[str, Any] | None = None,
    containers: list[dict[str, Any]] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    terminated: dict[str, Any] = {
        "exitCode": 0 if phase == "Succeeded" else 1,
        "finishedAt": "2030-01-01T00:00:05Z",
    }
    if report is not None:
        terminated["message"] = json.dumps(report)
    metadata: dict[str, Any] = {
        "name": f"export-run-{run}",
        "labels": {"destinations.dev/job": "export", "destinations.dev/run": str(run)},
    }
    if deleting:
        metadata["deletionTimestamp"] = "2030-01-01T00:01:00Z"
    default = [{"name": "sync", "state": {"terminated": terminated}}]
    return {"metadata": metadata, "status": {"phase": phase, "containerStatuses": containers or default}}


def _running(run: int = 3) -> DestinationJobStatus:
    return DestinationJobStatus(
        phase=Phase.RUNNING,
        observed_generation=1,
        current_run=CurrentRun(number=run, pod=f"export-run-{run}", started_at="2030-01-01T00:00:00Z"),
    )


# -------------------------------------------------------------------------------------------- jobs


def test_a_job_is_kept_as_a_small_view_with_every_annotation_read() -> None:
    body = {
        "metadata": {
            "name": "export",
            "namespace": "team",
            "uid": "u1",
            "generation": 4,
            "deletionTimestamp": "2030-01-01T00:00:00Z",
            "annotations": {
                "destinations.dev/created-by": "alice@example.com",
                "destinations.dev/requested-at": "2030-01-01T00:00:00Z",
                "destinations.dev/confirm-removal": "7",
                "destinations.dev/pause-reason": "holiday freeze",
                "destinations.dev/dry-run-requested-at": "now",
            },
        },
        "spec": {"authorizationRef": {"name": "hook"}},
    }
    view = job_view(body)
    assert view == JobView(
        namespace="team",
        name="export",
        uid="u1",
        generation=4,
        spec={"authorizationRef": {"name": "hook"}},
        created_by="alice@example.com",
        requested_at="2030-01-01T00:00:00Z",
        deleting=True,
        confirmed_removal_run=7,
        pause_reason="holiday freeze",
        dry_run_requested_at="now",
    )
    assert view.authorization_name == "hook"
    assert view.involved_object() == {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "name": "export",
        "namespace": "team",
        "uid": "u1",
    }


def test_a_bare_job_reads_as_generation_one_with_nothing_requested() -> None:
    view = job_view({"metadata": {}, "spec": "not a mapping"})
    assert view == JobView(
        namespace="",
        name="",
        uid="",
        generation=1,
        spec={},
        created_by=None,
        requested_at=None,
        deleting=False,
    )
    assert view.authorization_name is None
    assert job_view({"metadata": {}, "spec": {"authorizationRef": {"name": 5}}}).authorization_name is None


def test_a_status_edited_into_nonsense_starts_afresh() -> None:
    assert job_status({"status": {"phase": "Dancing"}}) == DestinationJobStatus()
    assert job_status({}) == DestinationJobStatus()
    assert job_status({"status": {"phase": "Sleeping", "consecutiveErrors": 2}}) == DestinationJobStatus(
        phase=Phase.SLEEPING, consecutive_errors=2
    )


# -------------------------------------------------------------------------------------------- pods


def test_a_finished_sync_pod_is_summarised_with_its_report_and_end_time() -> None:
    pod = summarize_pod(_pod(report={"result": "succeeded", "records": {"read": 2, "added": 2}}))
    assert pod == PodSummary(
        name="export-run-3",
        job="export",
        run=3,
        finished=True,
        report=RunReport(result=RunResult.SUCCEEDED, records=RecordCounts(read=2, added=2)),
        finished_at=FINISHED,
        deleting=False,
    )


def test_the_end_time_is_read_from_the_sync_container_only() -> None:
    containers = [
        {"name": "sidecar", "state": {"terminated": {"exitCode": 0, "finishedAt": "2030-01-01T09:00:00Z"}}},
        {
            "name": "sync",
            "state": {
                "terminated": {
                    "exitCode": 0,
                    "finishedAt": "2030-01-01T00:00:05Z",
                    "message": json.dumps({"result": "succeeded"}),
                }
            },
        },
    ]
    pod = summarize_pod(_pod(containers=containers))
    assert pod is not None and pod.finished_at == FINISHED


@pytest.mark.parametrize("finished_at", ["yesterday", 1234, None])
def test_an_unreadable_end_time_is_none(finished_at: Any) -> None:
    terminated = {"exitCode": 0, "finishedAt": finished_at, "message": json.dumps({"result": "succeeded"})}
    pod = summarize_pod(_pod(containers=[{"name": "sync", "state": {"terminated": terminated}}]))
    assert pod is not None and pod.finished and pod.finished_at is None


def test_a_running_pod_has_no_end_time_and_a_deleted_one_says_so() -> None:
    running = summarize_pod(_pod(phase="Running", containers=[{"name": "sync", "state": {"running": {}}}]))
    assert running is not None and (running.finished, running.finished_at, running.report) == (
        False,
        None,
        None,
    )
    deleting = summarize_pod(_pod(report={"result": "succeeded"}, deleting=True))
    assert deleting is not None and deleting.deleting is True


@pytest.mark.parametrize(
    "labels",
    [
        {"destinations.dev/job": "export"},
        {"destinations.dev/run": "3"},
        {"destinations.dev/job": "export", "destinations.dev/run": "three"},
    ],
)
def test_a_pod_without_both_labels_or_with_a_run_that_is_not_a_number_is_not_a_sync_pod(
    labels: dict[str, str],
) -> None:
    assert summarize_pod({"metadata": {"name": "p", "labels": labels}}) is None


# ---------------------------------------------------------------------------------- observations


def test_the_current_runs_finished_pod_finishes_it_at_the_containers_end_time() -> None:
    pod = summarize_pod(_pod(report={"result": "failed", "message": "HTTP 500"}))
    observation = run_observation(_running(), pod, pod_name="export-run-3", gone=False)
    assert observation == RunFinished(3, RunReport(result=RunResult.FAILED, message="HTTP 500"), FINISHED)


def test_a_pod_gone_before_finishing_is_lost_naming_the_pod() -> None:
    assert run_observation(_running(), None, pod_name="export-run-3", gone=True) == RunLost(
        3, "pod export-run-3 was deleted before the run finished"
    )


def test_pods_of_no_run_in_flight_or_of_another_run_say_nothing() -> None:
    pod = summarize_pod(_pod(report={"result": "succeeded"}))
    assert run_observation(DestinationJobStatus(), pod, pod_name="export-run-3", gone=True) is None
    assert run_observation(_running(4), pod, pod_name="export-run-3", gone=True) is None


def test_finished_pods_skip_running_and_deleting_pods_and_count_rate_limits_as_failed() -> None:
    pods = [
        summarize_pod(_pod(1, report={"result": "succeeded"})),
        summarize_pod(_pod(2, phase="Failed", report={"result": "rateLimited"})),
        summarize_pod(_pod(3, phase="Failed", report={"result": "failed"})),
        summarize_pod(_pod(4, report={"result": "succeeded"}, deleting=True)),
        summarize_pod(_pod(5, phase="Running", containers=[{"name": "sync", "state": {"running": {}}}])),
    ]
    assert finished_pods([pod for pod in pods if pod is not None]) == [
        FinishedPod(run=1, name="export-run-1", succeeded=True),
        FinishedPod(run=2, name="export-run-2", succeeded=False),
        FinishedPod(run=3, name="export-run-3", succeeded=False),
    ]
