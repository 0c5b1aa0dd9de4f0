"""The operator's side of dry runs (destinations.controller.dry_runs): asking once, naming the pod,
reading its end, and what `status.lastDryRun` shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from destinations.api.models import DestinationJobStatus, LastDryRun, RunResult
from destinations.controller import dry_runs

NOW = datetime(2026, 5, 2, 9, 0, 5, tzinfo=UTC)


def test_a_value_is_asked_for_once() -> None:
    status = DestinationJobStatus()
    assert dry_runs.requested("v1", status) == dry_runs.DryRunRequested("v1")
    assert dry_runs.requested(None, status) is None
    assert dry_runs.requested("", status) is None
    status.last_dry_run = LastDryRun(requested_at="v1", result=RunResult.SUCCEEDED, finished_at="t")
    assert dry_runs.requested("v1", status) is None
    assert dry_runs.requested("v2", status) == dry_runs.DryRunRequested("v2")


def test_the_pod_name_is_one_per_value_and_a_dns_label() -> None:
    assert (
        dry_runs.dry_run_pod_name("export", "2026-05-02T09:00:00Z") == "export-dry-run-017fdd0c"
    )  # sha256sum of the value, first 8
    long = dry_runs.dry_run_pod_name("j" * 80, "x")
    assert len(long) == 63 and long.endswith("-dry-run-2d711642")
    assert dry_runs.dry_run_pod_name("export", "a") != dry_runs.dry_run_pod_name("export", "b")


def _pod(phase: str, message: dict[str, object] | None) -> dict[str, object]:
    terminated = {"exitCode": 0, "message": json.dumps(message)} if message is not None else None
    return {
        "metadata": {
            "name": "export-dry-run-8d6f5a3e",
            "labels": {"destinations.dev/job": "export", "destinations.dev/dry-run": "true"},
            "annotations": {"destinations.dev/dry-run-requested-at": "v1"},
        },
        "status": {
            "phase": phase,
            "containerStatuses": [
                {"name": "sync", "state": {"terminated": terminated} if terminated else {}}
            ],
        },
    }


def test_only_dry_run_pods_are_taken_for_dry_runs() -> None:
    assert dry_runs.job_of_dry_run_pod(_pod("Running", None)) == "export"
    run_pod = {"metadata": {"labels": {"destinations.dev/job": "export", "destinations.dev/run": "3"}}}
    assert dry_runs.job_of_dry_run_pod(run_pod) is None


def test_a_running_dry_run_is_not_finished_and_an_ended_one_becomes_last_dry_run() -> None:
    assert dry_runs.finished(_pod("Running", None)) is None
    report = {
        "result": "succeeded",
        "message": "dry run: read 3; would add 1, update 2, remove 0, skip 0",
        "preview": {
            "records": {"read": 3, "added": 1, "updated": 2, "removed": 0},
            "samples": {"added": ["c@example.com"]},
        },
    }
    ended = dry_runs.finished(_pod("Succeeded", report))
    assert ended is not None and (ended.value, ended.pod_name) == ("v1", "export-dry-run-8d6f5a3e")
    shown = dry_runs.last_dry_run(ended, NOW).model_dump(mode="json", by_alias=True, exclude_none=True)
    assert shown == {
        "requestedAt": "v1",
        "result": "succeeded",
        "finishedAt": "2026-05-02T09:00:05Z",
        "records": {"read": 3, "added": 1, "updated": 2, "removed": 0, "skipped": 0},
        "samples": {
            "added": ["c@example.com"],
            "updated": [],
            "removed": [],
            "skipped": [],
            "rejected": [],
            "sent": [],
        },
        "message": "dry run: read 3; would add 1, update 2, remove 0, skip 0",
    }


def test_a_dry_run_that_could_not_start_says_why() -> None:
    shown = dry_runs.last_dry_run(dry_runs.failed("v1", "the dry run could not start: spec.type: bad"), NOW)
    assert (shown.result, shown.message, shown.records.read) == (
        RunResult.FAILED,
        "the dry run could not start: spec.type: bad",
        0,
    )
