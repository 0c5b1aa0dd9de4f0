"""The start-up list (controller/priming.py): what jobs decide with, before kopf's first delivery.

Runs against each backend's API (the emulator and kube-apiserver): paging, label selection and the
sweep of objects deleted between the operator's list and kopf's are the API server's behaviour.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import kopf
import pytest

from destinations.controller.authorizations import AuthorizationController
from destinations.controller.jobs import JobController, utc_now
from destinations.controller.kube import KubeClient
from destinations.controller.priming import Priming
from destinations.controller.settings import OperatorSettings
from destinations.sandbox import Sandbox
from tests.fixtures.sandbox import SandboxApi

NAMESPACE = "team"
JOBS = f"/apis/destinations.dev/v1/namespaces/{NAMESPACE}/destinationjobs"
AUTHORIZATIONS = f"/apis/destinations.dev/v1/namespaces/{NAMESPACE}/authorizations"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"


def job(name: str, authorization: str = "hook") -> dict[str, Any]:
    return {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {"name": name},
        "spec": {
            "provider": "webhook",
            "type": "export",
            "authorizationRef": {"name": authorization},
            "config": {"url": "https://hooks.example.com/members"},
            "source": {"url": {"url": "https://data.example.com/users.jsonl"}},
            "schedule": {"every": "1h"},
        },
    }


def pod(job_name: str, run: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{job_name}-run-{run}",
            "labels": {"destinations.dev/job": job_name, "destinations.dev/run": str(run)},
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "sync", "image": "worker"}]},
    }


class World:
    """The controllers and the start-up list, on the sandbox's API as the operator's client."""

    def __init__(self, sandbox: Sandbox) -> None:
        pem = sandbox.server.ca_pem
        info = kopf.ConnectionInfo(
            server=sandbox.url,
            token=sandbox.token,
            ca_data=base64.b64encode(pem).decode() if pem else None,
            insecure=None if pem else True,
        )
        self.kube = KubeClient(info)
        self.jobs = JobController(OperatorSettings(namespaces=(NAMESPACE,)), lambda: self.kube)
        self.authorizations = AuthorizationController(
            self.jobs.usage, lambda: self.kube, clock=utc_now, tell_jobs=self.jobs.authorization_changed
        )
        self.jobs.authorizations = self.authorizations
        self.priming = Priming(
            self.jobs, self.authorizations, lambda: self.kube, (NAMESPACE,), quiet_seconds=0.3
        )

    async def close(self) -> None:
        await self.priming.close()
        await self.kube.close()


@pytest.fixture
def api(sandbox_api: SandboxApi) -> SandboxApi:
    assert sandbox_api.post("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}}).status_code == 201
    authorization = {
        "apiVersion": "destinations.dev/v1",
        "kind": "Authorization",
        "metadata": {"name": "hook"},
        "spec": {"provider": "webhook", "method": "apiKey", "secretRef": {"name": "credentials"}},
    }
    assert sandbox_api.post(AUTHORIZATIONS, authorization).status_code == 201
    for name in ("job-a", "job-b", "job-c"):
        assert sandbox_api.post(JOBS, job(name)).status_code == 201
    assert sandbox_api.post(JOBS, job("job-d", authorization="other")).status_code == 201
    for body in (pod("job-a", 1), pod("job-a", 2), pod("job-b", 1)):
        assert sandbox_api.post(PODS, body).status_code == 201
    unlabelled = {**pod("job-c", 1), "metadata": {"name": "not-a-sync-pod"}}
    assert sandbox_api.post(PODS, unlabelled).status_code == 201
    return sandbox_api


Scenario = Callable[[World], Awaitable[None]]


@pytest.fixture
def run(sandbox: Sandbox, api: SandboxApi) -> Callable[[Scenario], None]:
    """Run a scenario in a fresh event loop with a fresh World (the operator's client binds to it)."""

    def run_scenario(scenario: Scenario) -> None:
        async def main() -> None:
            world = World(sandbox)
            try:
                await scenario(world)
            finally:
                await world.close()

        asyncio.run(main())

    return run_scenario


def test_list_pages_follows_continue_tokens_a_page_at_a_time(run: Callable[[Scenario], None]) -> None:
    async def scenario(world: World) -> None:
        pages = [page async for page in world.kube.list_pages(JOBS, limit=3)]
        assert [len(page) for page in pages] == [3, 1]
        assert sorted(body["metadata"]["name"] for page in pages for body in page) == [
            "job-a",
            "job-b",
            "job-c",
            "job-d",
        ]
        selected = [
            page async for page in world.kube.list_pages(PODS, {"labelSelector": "destinations.dev/job"})
        ]
        assert sorted(body["metadata"]["name"] for page in selected for body in page) == [
            "job-a-run-1",
            "job-a-run-2",
            "job-b-run-1",
        ]

    run(scenario)


def test_the_start_up_list_fills_what_jobs_decide_with(run: Callable[[Scenario], None]) -> None:
    async def scenario(world: World) -> None:
        await world.priming.prime()

        assert world.jobs.usage.count(NAMESPACE, "hook") == 3
        assert world.jobs.usage.users(NAMESPACE, "other") == ["job-d"]
        assert sorted(world.jobs.pods[(NAMESPACE, "job-a")]) == ["job-a-run-1", "job-a-run-2"]
        assert sorted(world.jobs.pods[(NAMESPACE, "job-b")]) == ["job-b-run-1"]
        assert (NAMESPACE, "job-c") not in world.jobs.pods  # the unlabelled pod is no sync pod
        assert sorted(world.authorizations.entries) == [(NAMESPACE, "hook")]
        assert world.jobs.runners == {}  # runners come with kopf's deliveries, not with the list
        assert {kind: len(keys) for kind, keys in world.priming.unconfirmed.items()} == {
            "authorizations": 1,
            "destinationjobs": 4,
            "pods": 3,
        }

    run(scenario)


def test_the_sweep_forgets_only_what_was_deleted_before_kopfs_watch(
    run: Callable[[Scenario], None], api: SandboxApi
) -> None:
    async def scenario(world: World) -> None:
        await world.priming.prime()
        # kopf delivers job-a and its first pod; job-b and job-a's second pod are deleted before the
        # watch starts (no event will ever come for them); job-c exists but kopf has not reached it yet.
        world.priming.confirm("destinationjobs", {"metadata": {"namespace": NAMESPACE, "name": "job-a"}})
        world.priming.confirm("pods", {"metadata": {"namespace": NAMESPACE, "name": "job-a-run-1"}})
        assert api.delete(f"{JOBS}/job-b").status_code == 200
        assert api.delete(f"{PODS}/job-a-run-2").status_code == 200
        assert api.delete(f"{PODS}/job-b-run-1").status_code == 200

        await asyncio.wait_for(world.priming.swept, 30) if world.priming.swept else None

        assert world.jobs.usage.users(NAMESPACE, "hook") == ["job-a", "job-c"]
        assert sorted(world.jobs.pods[(NAMESPACE, "job-a")]) == ["job-a-run-1"]
        assert world.jobs.pods.get((NAMESPACE, "job-b"), {}) == {}
        assert sorted(world.authorizations.entries) == [(NAMESPACE, "hook")]
        assert world.priming.unconfirmed == {"authorizations": set(), "destinationjobs": set(), "pods": set()}

    run(scenario)


def test_no_sweep_when_kopf_delivered_everything_listed(
    run: Callable[[Scenario], None], sandbox: Sandbox, api: SandboxApi
) -> None:
    async def scenario(world: World) -> None:
        await world.priming.prime()
        listed = {kind: sorted(keys) for kind, keys in world.priming.unconfirmed.items()}
        for kind, keys in listed.items():
            for namespace, name in keys:
                world.priming.confirm(kind, {"metadata": {"namespace": namespace, "name": name}})
        assert world.priming.swept is not None
        await asyncio.wait_for(world.priming.swept, 30)
        await asyncio.sleep(0.5)  # longer than the quiet period: a sweep would have listed by now

        lists = [
            record
            for record in sandbox.request_log
            if record.verb == "list"
            and record.resource in ("destinationjobs", "pods", "authorizations")
            and record.namespace == NAMESPACE
        ]
        assert sorted(record.resource for record in lists) == ["authorizations", "destinationjobs", "pods"]

    run(scenario)


def test_the_sweep_waits_until_kopfs_deliveries_pause(
    run: Callable[[Scenario], None], api: SandboxApi
) -> None:
    async def scenario(world: World) -> None:
        await world.priming.prime()
        assert api.delete(f"{JOBS}/job-d").status_code == 200
        for name in ("job-a", "job-b", "job-c"):  # one delivery every 0.2 s: never 0.3 s quiet
            world.priming.confirm("destinationjobs", {"metadata": {"namespace": NAMESPACE, "name": name}})
            await asyncio.sleep(0.2)
            assert world.jobs.usage.users(NAMESPACE, "other") == ["job-d"]

        assert world.priming.swept is not None
        await asyncio.wait_for(world.priming.swept, 30)
        assert world.jobs.usage.users(NAMESPACE, "other") == []

    run(scenario)
