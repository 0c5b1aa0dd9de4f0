"""The start-up list (controller/priming.py): what jobs decide with, before kopf's first delivery.

Runs against each backend's API (the emulator and kube-apiserver): paging, label selection and the
sweep of objects deleted between the operator's list and kopf's are the API server's behaviour.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import kopf
import pytest

from destinations.controller import priming
from destinations.controller.authorizations import AuthorizationController
from destinations.controller.jobs import JobController, utc_now
from destinations.controller.kube import LIST_PAGE_SIZE, Json, KubeClient, KubeError
from destinations.controller.observing import PodSummary
from destinations.controller.operator import Operator
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


class ListingKube(KubeClient):
    """The operator's client, noting each list it completes, and failing one list when asked (an API
    server cannot be made to answer 500 or to drop a connection on cue)."""

    def __init__(self, info: kopf.ConnectionInfo) -> None:
        super().__init__(info)
        #: The path of each list, once its last page was read.
        self.listed: list[str] = []
        #: path -> what happens instead of the next list of it: returns the error to raise.
        self.faults: dict[str, Callable[[], Exception]] = {}

    async def list_pages(
        self, path: str, params: Mapping[str, str] | None = None, *, limit: int = LIST_PAGE_SIZE
    ) -> AsyncIterator[list[Json]]:
        fault = self.faults.pop(path, None)
        if fault is not None:
            raise fault()
        async for page in super().list_pages(path, params, limit=limit):
            yield page
        self.listed.append(path)


async def until(condition: Callable[[], bool], timeout: float = 30) -> None:
    """Let the loop run until `condition` holds (the start-up list and its sweep run in this loop)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def deliver(world: World, kind: str, *names: str) -> None:
    """What kopf's watch does first with each object that exists: deliver it (confirm)."""
    for name in names:
        world.priming.confirm(kind, {"metadata": {"namespace": NAMESPACE, "name": name}})


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
        self.kube = ListingKube(info)
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
        # kopf delivers job-a, its first pod and the Authorization; job-b and job-a's second pod are
        # deleted before the watch starts (no event will ever come for them); job-c exists but kopf
        # has not reached it yet.
        deliver(world, "destinationjobs", "job-a")
        deliver(world, "pods", "job-a-run-1")
        deliver(world, "authorizations", "hook")
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
        deliver(world, "pods", "job-a-run-1", "job-a-run-2", "job-b-run-1")
        deliver(world, "authorizations", "hook")
        for name in ("job-a", "job-b", "job-c"):  # one delivery every 0.2 s: never 0.3 s quiet
            world.priming.confirm("destinationjobs", {"metadata": {"namespace": NAMESPACE, "name": name}})
            await asyncio.sleep(0.2)
            assert world.jobs.usage.users(NAMESPACE, "other") == ["job-d"]

        assert world.priming.swept is not None
        await asyncio.wait_for(world.priming.swept, 30)
        assert world.jobs.usage.users(NAMESPACE, "other") == []

    run(scenario)


def test_what_kopf_does_not_watch_yet_stays_provisional_past_the_sweep(
    run: Callable[[Scenario], None], api: SandboxApi
) -> None:
    """A standby replica (kopf's peering pause) or a slow start: deliveries are quiet because kopf's
    watches have not listed yet. What the sweep finds present may still be deleted before kopf lists,
    and then no event ever comes for it: it stays provisional until kopf has delivered from its watch."""

    async def scenario(world: World) -> None:
        await world.priming.prime()
        await until(lambda: world.kube.listed.count(AUTHORIZATIONS) == 2)  # swept, nothing delivered
        assert world.jobs.usage.users(NAMESPACE, "other") == ["job-d"]
        assert api.delete(f"{JOBS}/job-d").status_code == 200

        # kopf's watches start, and deliver what exists.
        deliver(world, "destinationjobs", "job-a", "job-b", "job-c")
        deliver(world, "pods", "job-a-run-1", "job-a-run-2", "job-b-run-1")
        deliver(world, "authorizations", "hook")
        assert world.priming.swept is not None
        await asyncio.wait_for(world.priming.swept, 30)

        assert world.jobs.usage.users(NAMESPACE, "other") == []
        assert world.jobs.usage.users(NAMESPACE, "hook") == ["job-a", "job-b", "job-c"]
        assert world.priming.unconfirmed == {"authorizations": set(), "destinationjobs": set(), "pods": set()}

    run(scenario)


def test_a_start_up_list_tried_again_still_forgets_what_the_failed_try_kept(
    run: Callable[[Scenario], None], api: SandboxApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job list fails after the Authorizations were listed (a 500, an expired continue token);
    the Authorization is deleted before the list is tried again: it is forgotten as well."""
    monkeypatch.setattr(priming, "RETRY_SECONDS", 0.05)

    def fail_and_delete() -> Exception:
        assert api.delete(f"{AUTHORIZATIONS}/hook").status_code == 200
        return KubeError(500, f"GET {JOBS}: etcdserver: request timed out")

    async def scenario(world: World) -> None:
        world.kube.faults[JOBS] = fail_and_delete
        await world.priming.prime()
        assert sorted(world.authorizations.entries) == [(NAMESPACE, "hook")]  # from the failed try

        deliver(world, "destinationjobs", "job-a", "job-b", "job-c", "job-d")
        deliver(world, "pods", "job-a-run-1", "job-a-run-2", "job-b-run-1")
        assert world.priming.swept is not None
        await asyncio.wait_for(world.priming.swept, 30)

        assert world.authorizations.entries == {}
        assert world.priming.unconfirmed == {"authorizations": set(), "destinationjobs": set(), "pods": set()}

    run(scenario)


def test_the_sweep_tries_again_after_an_unexpected_error(
    run: Callable[[Scenario], None], api: SandboxApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the sweep meets, it lists again: given up, its provisional objects would never drain."""
    monkeypatch.setattr(priming, "RETRY_SECONDS", 0.05)

    async def scenario(world: World) -> None:
        await world.priming.prime()
        assert api.delete(f"{JOBS}/job-d").status_code == 200
        world.kube.faults[JOBS] = lambda: ValueError("the answer is not JSON")
        deliver(world, "destinationjobs", "job-a", "job-b", "job-c")
        deliver(world, "pods", "job-a-run-1", "job-a-run-2", "job-b-run-1")
        deliver(world, "authorizations", "hook")
        assert world.priming.swept is not None
        await asyncio.wait_for(world.priming.swept, 30)

        assert world.jobs.usage.users(NAMESPACE, "other") == []
        assert world.priming.unconfirmed == {"authorizations": set(), "destinationjobs": set(), "pods": set()}

    run(scenario)


def test_an_item_the_controllers_cannot_read_is_skipped_not_retried_forever(
    run: Callable[[Scenario], None], caplog: pytest.LogCaptureFixture
) -> None:
    """One unreadable object must not keep every job from starting: it is logged and left to kopf."""

    async def scenario(world: World) -> None:
        remember_pod = world.jobs.remember_pod

        def unreadable(body: Mapping[str, Any]) -> PodSummary | None:
            if body["metadata"]["name"] == "job-a-run-2":
                raise ValueError("report: not a run report")
            return remember_pod(body)

        world.jobs.remember_pod = unreadable  # type: ignore[method-assign]
        with caplog.at_level(logging.ERROR, logger="destinations.operator"):
            await asyncio.wait_for(world.priming.prime(), 10)

        assert sorted(world.jobs.pods[(NAMESPACE, "job-a")]) == ["job-a-run-1"]
        assert world.jobs.usage.count(NAMESPACE, "hook") == 3
        assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == [
            "pods team/job-a-run-2 could not be read at start-up; kopf's delivery will try again: "
            "report: not a run report"
        ]

    run(scenario)


def test_closing_stops_the_sweep_before_the_client_closes(run: Callable[[Scenario], None]) -> None:
    async def scenario(world: World) -> None:
        await world.priming.prime()
        swept = world.priming.swept
        assert swept is not None and not swept.done()

        await world.priming.close()

        assert swept.cancelled()

    run(scenario)


def test_a_delivery_in_one_namespace_says_nothing_of_another_namespaces_watch(
    run: Callable[[Scenario], None], api: SandboxApi
) -> None:
    """With a namespace list kopf runs one watch per namespace: one that has delivered has listed,
    the other's may not have yet."""
    archive = "/apis/destinations.dev/v1/namespaces/archive/destinationjobs"
    assert api.post("/api/v1/namespaces", {"metadata": {"name": "archive"}}).status_code == 201
    assert api.post(archive, job("job-e")).status_code == 201

    async def scenario(world: World) -> None:
        both = Priming(
            world.jobs, world.authorizations, lambda: world.kube, (NAMESPACE, "archive"), quiet_seconds=0.3
        )
        try:
            await both.prime()
            assert world.jobs.usage.users("archive", "hook") == ["job-e"]
            for kind, names in (
                ("destinationjobs", ("job-a", "job-b", "job-c", "job-d")),
                ("pods", ("job-a-run-1", "job-a-run-2", "job-b-run-1")),
                ("authorizations", ("hook",)),
            ):
                for name in names:
                    both.confirm(kind, {"metadata": {"namespace": NAMESPACE, "name": name}})
            await until(lambda: world.kube.listed.count(archive) == 2)  # swept: job-e is still there
            assert api.delete(f"{archive}/job-e").status_code == 200  # before kopf's archive watch lists

            both.confirm("destinationjobs", {"metadata": {"namespace": NAMESPACE, "name": "job-a"}})
            assert both.swept is not None
            await asyncio.wait_for(both.swept, 30)

            assert world.jobs.usage.users("archive", "hook") == []
            assert world.jobs.usage.users(NAMESPACE, "hook") == ["job-a", "job-b", "job-c"]
        finally:
            await both.close()

    run(scenario)


# --- the operator's start-up (kopf's startup handler), with no cluster to reach ----------------------

QUIET_OPERATOR = OperatorSettings(namespaces=(NAMESPACE,), metrics_port=0, liveness_port=0)


def test_an_operator_without_credentials_stops_at_start_up_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No service account and no kubeconfig: kopf itself stops ("Ran out of valid credentials"); the
    start-up list must not wait for credentials that will never come."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config; this machine has no service account

    async def main() -> None:
        stop = asyncio.Event()
        try:
            await asyncio.wait_for(Operator(QUIET_OPERATOR).run(stop_flag=stop), 30)
        finally:
            stop.set()

    with pytest.raises(Exception) as raised:  # kopf's ActivityError (not exported), not a timeout
        asyncio.run(main())
    assert type(raised.value).__name__ == "ActivityError"
    assert isinstance(raised.value.__cause__, kopf.PermanentError)
    assert str(raised.value.__cause__) == (
        "no credentials for the cluster: no in-cluster service account "
        "(/var/run/secrets/kubernetes.io/serviceaccount), and no kubeconfig (KUBECONFIG or ~/.kube/config)"
    )


def test_an_operator_stopped_while_its_start_up_list_waits_for_the_api_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """kopf cancels its startup handlers when stopped during them, and then runs no cleanup handler:
    the operator closes what it opened (its API client) all the same."""
    with socket.socket() as probe:  # a port nothing listens on: the API server is unreachable
        probe.bind(("127.0.0.1", 0))
        unreachable = f"https://127.0.0.1:{probe.getsockname()[1]}"

    async def main() -> None:
        operator = Operator(QUIET_OPERATOR)
        operator.connection = kopf.ConnectionInfo(server=unreachable, token="token", insecure=True)
        stop = asyncio.Event()
        running = asyncio.create_task(operator.run(stop_flag=stop))
        await until(lambda: any("start-up list failed" in r.getMessage() for r in caplog.records))
        assert operator._kube is not None
        stop.set()
        await asyncio.wait_for(running, 30)
        assert operator._kube is None

    with caplog.at_level(logging.WARNING, logger="destinations.operator"):
        asyncio.run(main())
