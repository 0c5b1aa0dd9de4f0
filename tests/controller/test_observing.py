"""Reading jobs and pods into the lifecycle core's observations."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from destinations.api.models import CurrentRun, DestinationJobStatus, Phase
from destinations.controller.observing import (
    finished_pods,
    job_view,
    observations_for_change,
    parse_spec,
    run_observation,
    summarize_pod,
)
from destinations.lifecycle import RunFinished, RunLost, RunNowRequested, SpecChanged


def _job(generation: int = 1, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "export",
            "namespace": "team",
            "uid": "u1",
            "generation": generation,
            "annotations": annotations or {},
        },
        "spec": {
            "provider": "webhook",
            "type": "export",
            "authorizationRef": {"name": "hook"},
            "config": {"url": "https://example.com/hook"},
            "source": {"url": {"url": "https://example.com/records"}},
            **spec,
        },
    }


def _pod(run: int, phase: str, report: dict[str, Any] | None = None) -> dict[str, Any]:
    terminated = {"exitCode": 0 if phase == "Succeeded" else 1, "finishedAt": "2030-01-01T00:00:05Z"}
    if report is not None:
        terminated["message"] = json.dumps(report)
    container: dict[str, Any] = {"name": "sync", "state": {"terminated": terminated}}
    if phase == "Running":
        container = {"name": "sync", "state": {"running": {}}}
    return {
        "metadata": {
            "name": f"export-run-{run}",
            "labels": {"destinations.dev/job": "export", "destinations.dev/run": str(run)},
        },
        "status": {"phase": phase, "containerStatuses": [container]},
    }


def _running(run: int) -> DestinationJobStatus:
    return DestinationJobStatus(
        phase=Phase.RUNNING,
        observed_generation=1,
        current_run=CurrentRun(number=run, pod=f"export-run-{run}", started_at="2030-01-01T00:00:00Z"),
    )


def test_a_new_generation_is_a_spec_change() -> None:
    status = DestinationJobStatus(phase=Phase.SLEEPING, observed_generation=1)
    assert observations_for_change(job_view(_job(generation=2)), status) == [SpecChanged()]


def test_the_echo_of_the_operators_own_status_write_means_nothing() -> None:
    status = DestinationJobStatus(phase=Phase.SLEEPING, observed_generation=1)
    assert observations_for_change(job_view(_job()), status) == []


def test_a_new_requested_at_value_is_a_run_now_request_and_an_old_one_is_not() -> None:
    view = job_view(_job(annotations={"destinations.dev/requested-at": "t1"}))
    fresh = DestinationJobStatus(phase=Phase.SLEEPING, observed_generation=1)
    handled = fresh.model_copy(update={"last_handled_request_at": "t1"})
    assert observations_for_change(view, fresh) == [RunNowRequested("t1")]
    assert observations_for_change(view, handled) == []


@pytest.mark.parametrize(
    ("value", "run"), [("7", 7), (" 12 ", 12), ("0", None), ("-3", None), ("run 7", None), (None, None)]
)
def test_the_confirm_removal_annotation_is_read_as_a_run_number(value: str | None, run: int | None) -> None:
    annotations = {} if value is None else {"destinations.dev/confirm-removal": value}
    assert job_view(_job(annotations=annotations)).confirmed_removal_run == run


def test_an_invalid_spec_yields_problems_naming_the_field() -> None:
    parsed = parse_spec(job_view(_job(provider="nosuch")), None, default_purge_after=None)
    assert parsed.spec is None
    assert parsed.problems is not None and "spec.provider" in parsed.problems


def test_an_authorization_of_another_provider_is_a_spec_problem() -> None:
    parsed = parse_spec(job_view(_job()), {"provider": "mailchimp"}, default_purge_after=None)
    assert parsed.problems is not None and "spec.authorizationRef.name" in parsed.problems


def test_the_operators_purge_period_applies_when_the_job_has_none() -> None:
    parsed = parse_spec(job_view(_job()), None, default_purge_after=timedelta(days=7))
    assert parsed.spec is not None and parsed.spec.purge_after == timedelta(days=7)


def test_a_finished_pod_of_the_current_run_finishes_it() -> None:
    pod = summarize_pod(_pod(3, "Succeeded", {"result": "succeeded", "records": {"added": 2}}))
    assert pod is not None
    observation = run_observation(_running(3), pod, pod_name=pod.name, gone=False)
    assert isinstance(observation, RunFinished)
    assert observation.report.records.added == 2


def test_a_running_pod_says_nothing_yet() -> None:
    pod = summarize_pod(_pod(3, "Running"))
    assert pod is not None
    assert run_observation(_running(3), pod, pod_name=pod.name, gone=False) is None


def test_a_pod_gone_before_it_finished_is_a_lost_run() -> None:
    pod = summarize_pod(_pod(3, "Running"))
    observation = run_observation(_running(3), pod, pod_name="export-run-3", gone=True)
    assert isinstance(observation, RunLost)


def test_a_pod_gone_after_it_finished_keeps_its_result() -> None:
    pod = summarize_pod(_pod(3, "Failed", {"result": "failed", "message": "HTTP 500"}))
    observation = run_observation(_running(3), pod, pod_name="export-run-3", gone=True)
    assert isinstance(observation, RunFinished)
    assert observation.report.message == "HTTP 500"


def test_pods_of_other_runs_are_history_only() -> None:
    pod = summarize_pod(_pod(2, "Succeeded", {"result": "succeeded"}))
    assert pod is not None
    assert run_observation(_running(3), pod, pod_name=pod.name, gone=False) is None
    assert [(p.run, p.succeeded) for p in finished_pods([pod])] == [(2, True)]


def test_pods_without_the_job_labels_are_not_sync_pods() -> None:
    assert summarize_pod({"metadata": {"name": "web", "labels": {"app": "web"}}}) is None
