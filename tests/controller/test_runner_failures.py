"""A job runner whose work raises shows it on the job and tries again (issue 13, item 1).

The integration tests (tests/operator/test_runner_failures.py) cover a step that raises; here the
adoption of a run in flight after a restart, whose pod read fails with a server error.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from destinations.api.models import CurrentRun, DestinationJobStatus, Phase
from destinations.controller import jobs
from destinations.controller.jobs import JobRunner
from destinations.controller.kube import KubeError
from destinations.controller.observing import JobView
from destinations.lifecycle import RunLost

NOW = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)


class FakeKube:
    """Answers the pod read with the given errors in turn; records status patches and Events."""

    def __init__(self, errors: list[KubeError]) -> None:
        self.errors = errors
        self.patches: list[dict[str, Any]] = []
        self.events: list[tuple[str, str, str]] = []

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        raise self.errors.pop(0)

    async def patch_status(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.patches.append(patch)

    async def post_event(self, involved: dict[str, str], reason: str, message: str, kind: str) -> None:
        self.events.append((reason, message, kind))


def test_a_run_in_flight_that_cannot_be_read_is_shown_and_adopted_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jobs, "_FAILURE_RETRY_SECONDS", (0.01,))
    kube = FakeKube([KubeError(500, "etcdserver: request timed out"), KubeError(404, "not found")])
    controller = SimpleNamespace(kube=kube, pods={}, clock=lambda: NOW)
    view = JobView("team", "export", "uid-1", 1, {}, None, None, False)
    status = DestinationJobStatus(
        phase=Phase.RUNNING,
        current_run=CurrentRun(number=3, pod="export-run-3", started_at="2026-11-29T21:59:00Z"),
    )
    runner = JobRunner(controller, view, status, {})  # type: ignore[arg-type]

    asyncio.run(runner._adopt_or_report())

    assert len(kube.patches) == 1
    shown = kube.patches[0]
    assert shown["reason"] == "OperatorError"
    assert shown["message"].startswith(
        "the operator failed to read this job's run in flight: "
        "KubeError: HTTP 500: etcdserver: request timed out"
    )
    assert [(reason, kind) for reason, _, kind in kube.events] == [("OperatorError", "Warning")]
    # The second try finds the pod gone: the run is lost (an error the lifecycle records), not forgotten.
    assert list(runner._inbox) == [RunLost(3, "pod export-run-3 was deleted before the run finished")]
