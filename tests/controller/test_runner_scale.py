"""Job runners at scale (issue 18): pods first, and what a sleeping job keeps.

Pods first: while any job's sync pod is being created, the other writes wait. When many jobs start at
once, each run's pod is what starts the work; statuses and Events follow. Within one job the order
stays pod, status, Event (tests/operator/test_restart.py checks it on a cluster, with a crash between
the pod and the status).

A sleeping job keeps its status only as the JSON text last written, and parses it again when it
wakes; a status not yet written (a failed write) stays as it is until it is written.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from destinations.api.models import AuthorizationSpec
from destinations.controller import jobs
from destinations.controller.jobs import JobController
from destinations.controller.kube import KubeError
from destinations.controller.settings import OperatorSettings

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
AUTHORIZATION = {"provider": "webhook", "method": "apiKey", "secretRef": {"name": "credentials"}}


def job(name: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "team", "name": name, "uid": f"uid-{name}", "generation": 1},
        "spec": {
            "provider": "webhook",
            "type": "export",
            "authorizationRef": {"name": "hook"},
            "config": {"url": "https://hooks.example.com/members"},
            "source": {"url": {"url": "https://data.example.com/users.jsonl"}},
            "schedule": {"every": "1h"},
        },
    }


class Entry:
    spec: Mapping[str, Any] = AUTHORIZATION
    parsed = AuthorizationSpec.model_validate(AUTHORIZATION)


class Authorizations:
    def get(self, namespace: str, name: str) -> Entry:
        return Entry()

    def not_ready_message(self, namespace: str, name: str) -> str | None:
        return None

    async def store_rotated(self, namespace: str, name: str, run_id: str, sealed: str) -> None:
        raise AssertionError("no run finishes here")


class Kube:
    """Records writes in order; the creation of `held`'s pod waits for `release`."""

    def __init__(self, held: str) -> None:
        self.held = held
        self.release = asyncio.Event()
        self.writes: list[tuple[str, str]] = []
        self.refuse_status = False

    async def create_pod(self, namespace: str, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        self.writes.append(("pod", name))
        if name.startswith(self.held):
            await self.release.wait()

    async def patch_status(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.writes.append(("status", name))
        if self.refuse_status:
            raise KubeError(500, "etcdserver: request timed out")

    async def post_event(self, involved: dict[str, str], reason: str, message: str, kind: str) -> None:
        self.writes.append((reason, involved["name"]))


@pytest.fixture(autouse=True)
def short_quiet_period(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "POD_QUIET_SECONDS", 0.01)


async def settle() -> None:
    """Until the runners have done what they can: a few turns of the loop past the quiet period."""
    for _ in range(5):
        await asyncio.sleep(0.02)


def test_a_started_job_writes_its_status_and_event_only_once_no_pod_is_being_created() -> None:
    async def scenario() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        kube = Kube(held="slow-run-")
        settings = OperatorSettings(metrics_port=0, liveness_port=0)
        controller = JobController(settings, lambda: kube, clock=lambda: NOW)  # type: ignore[arg-type,return-value]
        controller.authorizations = Authorizations()
        await controller.on_job_event("ADDED", job("slow"))
        await settle()
        await controller.on_job_event("ADDED", job("quick"))
        await settle()
        while_held = list(kube.writes)
        kube.release.set()
        await settle()
        await controller.close()
        return while_held, kube.writes

    while_held, writes = asyncio.run(scenario())

    assert while_held == [("pod", "slow-run-1"), ("pod", "quick-run-1")]
    assert sorted(writes[2:]) == [
        ("Started", "quick"),
        ("Started", "slow"),
        ("status", "quick"),
        ("status", "slow"),
    ]
    # Each job's own order: its pod, then its status, then its Event.
    for name in ("quick", "slow"):
        assert [write for write in writes if name in write[1]] == [
            ("pod", f"{name}-run-1"),
            ("status", name),
            ("Started", name),
        ]


def test_a_pod_creation_that_hangs_holds_the_other_writes_back_only_for_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jobs, "POD_FIRST_LIMIT_SECONDS", 0.05)

    async def scenario() -> list[tuple[str, str]]:
        kube = Kube(held="slow-run-")  # never released
        settings = OperatorSettings(metrics_port=0, liveness_port=0)
        controller = JobController(settings, lambda: kube, clock=lambda: NOW)  # type: ignore[arg-type,return-value]
        controller.authorizations = Authorizations()
        await controller.on_job_event("ADDED", job("slow"))
        await settle()
        await controller.on_job_event("ADDED", job("quick"))
        await settle()
        writes = list(kube.writes)
        await controller.close()
        return writes

    assert asyncio.run(scenario()) == [
        ("pod", "slow-run-1"),
        ("pod", "quick-run-1"),
        ("status", "quick"),
        ("Started", "quick"),
    ]


def started_and_sleeping(kube: Kube) -> tuple[JobController, dict[str, Any]]:
    """A controller whose job `export` ran once (its pod reported success) and now sleeps."""
    settings = OperatorSettings(metrics_port=0, liveness_port=0)
    controller = JobController(settings, lambda: kube, clock=lambda: NOW)  # type: ignore[arg-type,return-value]
    controller.authorizations = Authorizations()
    pod = {
        "metadata": {
            "namespace": "team",
            "name": "export-run-1",
            "labels": {"destinations.dev/job": "export", "destinations.dev/run": "1"},
        },
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "name": "sync",
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "finishedAt": "2026-11-30T01:00:00Z",
                            "message": '{"result": "succeeded", "records": {"read": 2, "added": 2}}',
                        }
                    },
                }
            ],
        },
    }
    return controller, pod


def test_a_sleeping_job_keeps_its_status_as_written_text_and_reads_it_back_unchanged() -> None:
    async def scenario() -> None:
        kube = Kube(held="-")
        controller, pod = started_and_sleeping(kube)
        await controller.on_job_event("ADDED", job("export"))
        await settle()
        await controller.on_pod_event("MODIFIED", pod)
        await settle()
        runner = controller.runners[("team", "export")]
        assert runner.idle
        assert runner._model is None  # let go of: only the written text is kept
        assert runner.phase == "Sleeping"
        status = runner.status  # parsed again from the text
        assert status.phase is not None and status.phase.value == "Sleeping"
        assert status.runs.total == 1 and status.runs.succeeded == 1
        assert status.last_run is not None and status.last_run.records.added == 2
        assert [entry.event for entry in status.history] == ["Started", "Synced"]
        assert status.next_run_at == "2026-11-30T02:00:00Z"
        writes = len(kube.writes)
        await controller.on_job_event("MODIFIED", job("export"))  # an echo of its own write
        await settle()
        assert len(kube.writes) == writes  # no write: the text read back is what was written
        await controller.close()

        # Restarted: the job read back with that status decides, writes nothing, keeps only the text.
        restarted_kube = Kube(held="-")
        restarted, _ = started_and_sleeping(restarted_kube)
        await restarted.on_job_event("ADDED", {**job("export"), "status": json.loads(runner._written)})
        await settle()
        again = restarted.runners[("team", "export")]
        assert again.idle
        assert again._model is None
        assert restarted_kube.writes == []
        await restarted.close()

    asyncio.run(scenario())


def test_a_status_whose_write_failed_is_kept_until_it_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "_WRITE_RETRY_SECONDS", (0.01,))

    async def scenario() -> None:
        kube = Kube(held="-")
        controller, pod = started_and_sleeping(kube)
        await controller.on_job_event("ADDED", job("export"))
        await settle()
        kube.refuse_status = True
        await controller.on_pod_event("MODIFIED", pod)
        for _ in range(20):
            await asyncio.sleep(0.01)
        runner = controller.runners[("team", "export")]
        assert runner.idle
        assert runner._model is not None  # not written: the model is the only copy
        assert runner.status.runs.succeeded == 1
        await controller.close()

    asyncio.run(scenario())


def test_a_pod_seen_again_at_the_same_resource_version_is_not_summarized_again() -> None:
    """kopf hands each pod event to the index handler, then to the event handler (issue 18)."""
    controller, pod = started_and_sleeping(Kube(held="-"))
    seen = {**pod, "metadata": {**pod["metadata"], "resourceVersion": "41"}}
    first = controller.remember_pod(seen)
    assert first is not None and first.report is not None
    assert controller.remember_pod(json.loads(json.dumps(seen))) is first
    changed = {**seen, "metadata": {**seen["metadata"], "resourceVersion": "42"}}
    again = controller.remember_pod(changed)
    assert again is not first and again is not None
    assert again.resource_version == "42"
    assert controller.pods[("team", "export")] == {"export-run-1": again}
