"""What a sleeping job costs the operator in memory, part by part (docs/operator.md, issue 18).

Builds, in this process and without a cluster, what the operator holds for each sleeping job: its
runner (an idle asyncio task waiting for the next run), the view of its spec, its status as last
written (JSON text: a sleeping runner lets go of the pydantic model, parsed again when it wakes; the
model's size is shown for comparison, outside the total), its finished sync pods' summaries and its
entry in the Authorization usage index. The status comes from the lifecycle core itself, after one
run (a job just created) or after 25 runs (a long-lived job: `status.history` full at 20 entries,
one pod kept per run up to the history limit of 3). Sizes are measured with tracemalloc over 1,000
jobs.

    .venv/bin/python benchmarks/job_memory.py
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import sys
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from destinations.api.models import DestinationJobStatus
from destinations.api.runs import RunReport
from destinations.controller.jobs import JobController, JobRunner
from destinations.controller.kube import KubeClient
from destinations.controller.observing import PodSummary, job_view, parse_spec
from destinations.controller.settings import OperatorSettings
from destinations.controller.usage import AuthorizationUsage
from destinations.lifecycle import JobObserved, RunFinished, TimerFired, decide
from destinations.providers.catalog import load_catalog

JOBS = 1000
NOW = datetime(2026, 1, 1, tzinfo=UTC)
AUTHORIZATION = {"provider": "webhook", "method": "apiKey", "secretRef": {"name": "credentials"}}


def body(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {
            "name": f"job-{index:05d}",
            "namespace": "bench",
            "uid": f"00000000-0000-0000-0000-{index:012d}",
            "generation": 1,
            "annotations": {"destinations.dev/created-by": "alice@example.com"},
        },
        "spec": {
            "displayName": "Export of High-Value Users",
            "provider": "webhook",
            "type": "export",
            "authorizationRef": {"name": "hook"},
            "config": {"url": "https://hooks.example.com/members"},
            "source": {"url": {"url": "https://data.example.com/high-value-users.jsonl"}},
            "schedule": {"every": "1h"},
        },
    }


def status_after(runs: int) -> tuple[DestinationJobStatus, list[PodSummary], datetime]:
    """The status the lifecycle core writes after `runs` successful runs, the pods kept, and the time
    the last run finished."""
    view = job_view(body(0))
    spec = parse_spec(view, AUTHORIZATION, default_purge_after=timedelta(days=90)).spec
    assert spec is not None
    schedule = load_catalog()["webhook"].default_schedule
    report = RunReport.model_validate(
        {"result": "succeeded", "records": {"read": 1200, "added": 40, "updated": 7}, "message": "synced"}
    )
    status, now, pods = DestinationJobStatus(), NOW, []
    observation: Any = JobObserved(created_by="alice@example.com")
    for run in range(1, runs + 1):
        started = decide(
            spec,
            status,
            observation,
            now,
            job_name=view.name,
            generation=1,
            default_schedule=schedule,
            authorization_problem=None,
            capacity_available=True,
            finished_pods=[],
        )
        status = started.status
        assert status.current_run is not None, status
        now += timedelta(seconds=30)
        finished = decide(
            spec,
            status,
            RunFinished(run, report, now),
            now,
            job_name=view.name,
            generation=1,
            default_schedule=schedule,
            authorization_problem=None,
            capacity_available=True,
            finished_pods=[],
        )
        status = finished.status
        pods = [*pods, PodSummary(f"{view.name}-run-{run}", view.name, run, True, report, now, False)][-3:]
        finished_at = now
        now = (
            status.next_run_at and datetime.fromisoformat(status.next_run_at.replace("Z", "+00:00"))
        ) or now
        observation = TimerFired()
    return status, pods, finished_at


def measure(build: Callable[[int], object]) -> tuple[float, list[object]]:
    """Bytes per job allocated by `build(index)`, over JOBS jobs (kept alive in the returned list)."""
    gc.collect()
    before = tracemalloc.take_snapshot()
    kept = [build(index) for index in range(JOBS)]
    gc.collect()
    after = tracemalloc.take_snapshot()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return grown / JOBS, kept


async def idle_runners(controller: JobController, status: DestinationJobStatus) -> list[JobRunner]:
    written = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    runners = []
    for index in range(JOBS):
        view = job_view(body(index))
        runner = JobRunner(controller, view, None, dict(written))
        controller.runners[runner.key] = runner
        runner.start()
        runners.append(runner)
    for _ in range(6000):
        if sum(1 for runner in runners if runner.idle) >= JOBS:
            break
        await asyncio.sleep(0.01)
    else:
        raise TimeoutError("the runners did not all go idle within a minute")
    return runners


def main() -> int:
    class NoApi:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(f"a sleeping job makes no API call (it called {name})")

    def no_api() -> KubeClient:
        return NoApi()  # type: ignore[return-value]

    for runs in (1, 25):
        status, pods, finished_at = status_after(runs)
        assert status.phase is not None and status.phase.value == "Sleeping", status.phase
        written = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        tracemalloc.start()
        parts: dict[str, float] = {}
        parts["spec view (JobView + spec dict)"], _views = measure(lambda i: job_view(body(i)))
        model_size, _models = measure(lambda i, s=status: s.model_copy(deep=True))
        parts["status as last written (JSON text)"], _dicts = measure(
            lambda i, w=written: json.dumps(w, separators=(",", ":"), ensure_ascii=False)
        )
        parts[f"finished pod summaries ({len(pods)})"], _pods = measure(
            lambda i, p=pods: {pod.name: dataclasses.replace(pod) for pod in p}
        )
        usage = AuthorizationUsage()
        parts["usage index entry"], _ = measure(
            lambda i, u=usage: u.update("bench", f"job-{i:05d}", "hook", "Sleeping")
        )

        clock = finished_at + timedelta(minutes=1)
        settings = OperatorSettings(metrics_port=0, liveness_port=0)
        controller = JobController(settings, no_api, clock=lambda c=clock: c)
        loop = asyncio.new_event_loop()
        gc.collect()
        before = tracemalloc.take_snapshot()
        runners = loop.run_until_complete(idle_runners(controller, status))
        gc.collect()
        after = tracemalloc.take_snapshot()
        whole_runner = sum(stat.size_diff for stat in after.compare_to(before, "filename")) / JOBS
        runner_only = whole_runner - parts["spec view (JobView + spec dict)"]
        runner_only -= parts["status as last written (JSON text)"]
        parts["runner (object, idle task, event, inbox)"] = runner_only
        tracemalloc.stop()
        for runner in runners:
            loop.run_until_complete(runner.stop(job_deleted=False))
        loop.close()

        print(
            f"\n## a sleeping job after {runs} run(s): {len(status.history or [])} history entries, "
            f"status JSON {len(str(written))} characters"
        )
        print("| part | bytes per job |")
        print("|---|---|")
        for name, size in parts.items():
            print(f"| {name} | {size:,.0f} |")
        print(
            f"| **total** | **{sum(parts.values()):,.0f}** ({sum(parts.values()) * 1000 / 2**20:.1f} MiB "
            "per 1,000 jobs) |"
        )
        print(f"| (status model, pydantic: held only while the job works) | ({model_size:,.0f}) |")
        del _views, _models, _dicts, _pods
    return 0


if __name__ == "__main__":
    sys.exit(main())
