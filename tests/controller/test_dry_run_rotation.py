"""A dry run's sealed rotated credentials are stored like a run's (destinations.controller.dry_runs).

Salesforce's insert and update dry runs look records up, which refreshes the OAuth2 token; with refresh
token rotation the refresh invalidates the Secret's refresh token
(https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm), so the
operator must store the one the dry run was handed before anything else can need it. The seal is bound
to the dry-run request, never to a run: a dry-run pod carries the number of the job's next run.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from destinations.api.models import DestinationJobStatus, RunResult
from destinations.api.runs import RunReport, RunRequest
from destinations.controller.dry_runs import DryRunFinished
from destinations.controller.jobs import JobRunner
from destinations.controller.observing import JobView

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
SPEC = {"provider": "salesforce", "type": "export", "authorizationRef": {"name": "salesforce"}}


class Writes:
    """The Authorization controller's and the API server's side, recording calls in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def store_rotated(self, namespace: str, name: str, run_id: str, sealed: str) -> None:
        self.calls.append(("store_rotated", namespace, name, run_id, sealed))

    async def patch_status(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append(("status", patch["lastDryRun"]["requestedAt"]))

    async def delete_pod(self, namespace: str, name: str) -> None:
        self.calls.append(("delete_pod", name))


def finish(report: RunReport, *, twice: bool = False) -> list[tuple[Any, ...]]:
    writes = Writes()
    controller = SimpleNamespace(kube=writes, authorizations=writes, clock=lambda: NOW)
    view = JobView("team", "export", "uid-1", 1, SPEC, None, None, False, dry_run_requested_at="preview-1")
    runner = JobRunner(controller, view, DestinationJobStatus(), {})  # type: ignore[arg-type]
    event = DryRunFinished("preview-1", "export-dry-run-1a2b3c4d", report)
    asyncio.run(runner._dry_run(event))
    if twice:  # the ended pod's next watch event, before its deletion lands
        asyncio.run(runner._dry_run(event))
    return writes.calls


def test_a_dry_run_that_rotated_the_token_has_it_stored_before_its_result_is_written() -> None:
    report = RunReport(result=RunResult.SUCCEEDED, rotated_credentials="gAAAA-sealed")
    assert finish(report, twice=True) == [
        ("store_rotated", "team", "salesforce", "team/export#dry-run=preview-1", "gAAAA-sealed"),
        ("status", "preview-1"),
        ("delete_pod", "export-dry-run-1a2b3c4d"),
        ("delete_pod", "export-dry-run-1a2b3c4d"),
    ]


def test_a_failed_dry_run_still_hands_its_rotated_token_over() -> None:
    report = RunReport(result=RunResult.RATE_LIMITED, message="limit", rotated_credentials="gAAAA-sealed")
    assert finish(report)[0] == (
        "store_rotated",
        "team",
        "salesforce",
        "team/export#dry-run=preview-1",
        "gAAAA-sealed",
    )


def test_a_dry_run_without_a_rotation_stores_nothing() -> None:
    assert [call[0] for call in finish(RunReport(result=RunResult.SUCCEEDED))] == ["status", "delete_pod"]


def test_the_worker_seals_to_the_id_the_operator_opens_with() -> None:
    request = RunRequest(
        namespace="team",
        name="export",
        run=4,
        spec=SPEC,
        auth_method="oauth2",
        dry_run=True,
        dry_run_requested_at="preview-1",
    )
    assert request.sealing_id == "team/export#dry-run=preview-1"
    assert request.model_copy(update={"dry_run": False}).sealing_id == "team/export#4"
