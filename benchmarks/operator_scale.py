"""The operator with 1,000 jobs: peak memory and the time until every job has run once and sleeps.

Runs the sandbox without its kubelet; the benchmark plays a fast kubelet instead (each sync pod is
marked Succeeded with a worker report as soon as it appears), so the figures measure the operator, not
1,000 worker processes. Then a bare kopf operator (no-op watch handlers for the same kinds) watches
the same objects, as the baseline. Prints the operator's peak RSS, the baseline's, their ratio, the
time to Sleeping for all jobs, and the API writes the operator made per job.

    .venv/bin/python benchmarks/operator_scale.py [--jobs 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

from destinations.sandbox import Sandbox, SandboxConfig

NAMESPACE = "bench"
OPERATOR_USER = "system:serviceaccount:destinations-system:destinations-operator"
JOBS = f"/apis/destinations.dev/v1/namespaces/{NAMESPACE}/destinationjobs"
REPORT = json.dumps({"result": "succeeded", "records": {"read": 1, "added": 1}, "message": "bench"})

BARE_KOPF = textwrap.dedent(
    """
    import os, kopf

    seen = set()

    @kopf.on.event("destinations.dev", "v1", "destinationjobs")
    def job(name, **_):
        seen.add(name)
        if len(seen) >= int(os.environ["BENCH_JOBS"]):
            open(os.environ["BENCH_MARKER"], "w").close()

    @kopf.on.event("destinations.dev", "v1", "authorizations")
    def authorization(**_):
        pass

    @kopf.on.event("v1", "pods", labels={"destinations.dev/job": kopf.PRESENT})
    def pod(**_):
        pass

    @kopf.on.event("v1", "secrets")
    def secret(**_):
        pass
    """
)


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the process' peak resident set size so far (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def setup(client: httpx.Client, jobs: int) -> None:
    client.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}}).raise_for_status()
    client.post(
        f"/api/v1/namespaces/{NAMESPACE}/secrets",
        json={"metadata": {"name": "credentials"}, "data": {"apiKey": "YmVuY2g="}},
    ).raise_for_status()
    client.post(
        f"/apis/destinations.dev/v1/namespaces/{NAMESPACE}/authorizations",
        json={
            "apiVersion": "destinations.dev/v1",
            "kind": "Authorization",
            "metadata": {"name": "hook"},
            "spec": {"provider": "webhook", "method": "apiKey", "secretRef": {"name": "credentials"}},
        },
    ).raise_for_status()
    for index in range(jobs):
        client.post(JOBS, json=job(index)).raise_for_status()


def job(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {"name": f"job-{index:04d}"},
        "spec": {
            "provider": "webhook",
            "type": "export",
            "authorizationRef": {"name": "hook"},
            "config": {"url": "http://127.0.0.1:9/hook"},
            "source": {"url": {"url": "http://127.0.0.1:9/records"}},
            "schedule": {"every": "1h"},
        },
    }


async def fake_kubelet(url: str, token: str, stop: asyncio.Event) -> None:
    """Mark every new sync pod Succeeded with a report in its termination message."""
    done: set[str] = set()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        while not stop.is_set():
            response = await client.get(
                f"/api/v1/namespaces/{NAMESPACE}/pods", params={"labelSelector": "destinations.dev/job"}
            )
            pending = [
                pod["metadata"]["name"]
                for pod in response.json().get("items", [])
                if pod["metadata"]["name"] not in done
            ]
            for name in pending:
                status = {
                    "status": {
                        "phase": "Succeeded",
                        "containerStatuses": [
                            {
                                "name": "sync",
                                "ready": False,
                                "restartCount": 0,
                                "image": "bench",
                                "imageID": "bench",
                                "state": {
                                    "terminated": {
                                        "exitCode": 0,
                                        "reason": "Completed",
                                        "message": REPORT,
                                        "startedAt": now,
                                        "finishedAt": now,
                                    }
                                },
                            }
                        ],
                    }
                }
                await client.patch(
                    f"/api/v1/namespaces/{NAMESPACE}/pods/{name}/status",
                    content=json.dumps(status),
                    headers={"Content-Type": "application/merge-patch+json"},
                )
                done.add(name)
            await asyncio.sleep(0.2)


def sleeping_count(client: httpx.Client) -> int:
    items = client.get(JOBS).json()["items"]
    return sum(1 for item in items if (item.get("status") or {}).get("phase") == "Sleeping")


def measure_operator(sandbox: Sandbox, workdir: Path, jobs: int) -> tuple[float, float, int, float]:
    kubeconfig = sandbox.kubeconfig_for(OPERATOR_USER, workdir / "operator-kubeconfig")
    environment = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    log = (workdir / "operator.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "destinations", "operator", "--metrics-port", "0", "--liveness-port", "0"],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    kubelet = loop.create_task(fake_kubelet(sandbox.url, sandbox.token, stop))
    client = httpx.Client(
        base_url=sandbox.url, headers={"Authorization": f"Bearer {sandbox.token}"}, timeout=60
    )
    started = time.perf_counter()
    peak = 0.0
    try:
        setup(client, jobs)
        while True:
            loop.run_until_complete(asyncio.sleep(0.5))
            peak = max(peak, peak_rss_mib(process.pid))
            if sleeping_count(client) >= jobs:
                break
            if time.perf_counter() - started > 900:
                raise TimeoutError("not every job reached Sleeping within 15 minutes")
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(process.pid)
        loop.run_until_complete(asyncio.sleep(2))  # settle: the idle operator's memory
        peak = max(peak, peak_rss_mib(process.pid))
    finally:
        stop.set()
        loop.run_until_complete(kubelet)
        loop.close()
        process.terminate()
        process.wait(30)
        log.close()
    writes = sum(
        1
        for record in sandbox.request_log
        if record.user == OPERATOR_USER and record.verb in ("create", "update", "patch", "delete")
    )
    client.close()
    return peak, elapsed, writes, cpu


def measure_bare_kopf(sandbox: Sandbox, workdir: Path, jobs: int) -> float:
    script = workdir / "bare_kopf.py"
    script.write_text(BARE_KOPF)
    marker = workdir / "bare-kopf-saw-all"
    environment = {
        **os.environ,
        "KUBECONFIG": str(sandbox.kubeconfig_path),
        "BENCH_JOBS": str(jobs),
        "BENCH_MARKER": str(marker),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "kopf", "run", "--standalone", "--all-namespaces", "-q", str(script)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0.0
    try:
        deadline = time.monotonic() + 300
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
            peak = max(peak, peak_rss_mib(process.pid))
        time.sleep(2)
        peak = max(peak, peak_rss_mib(process.pid))
    finally:
        process.terminate()
        process.wait(30)
    return peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="operator-scale-") as directory:
        workdir = Path(directory)
        config = SandboxConfig(
            kubeconfig_path=workdir / "kubeconfig",
            kubelet=False,
            tls=False,
            users={OPERATOR_USER: "operator-bench-token"},
        )
        with Sandbox(config) as sandbox:
            operator_peak, elapsed, writes, cpu = measure_operator(sandbox, workdir, args.jobs)
            baseline_peak = measure_bare_kopf(sandbox, workdir, args.jobs)
    print(f"jobs: {args.jobs}")
    print(f"time until every job ran once and sleeps: {elapsed:.1f} s ({args.jobs / elapsed:.0f} jobs/s)")
    print(f"operator CPU time meanwhile: {cpu:.1f} s")
    print(f"operator peak RSS: {operator_peak:.0f} MiB")
    print(f"bare kopf operator watching the same objects: {baseline_peak:.0f} MiB")
    print(f"ratio: {operator_peak / baseline_peak:.2f}x")
    print(f"operator API writes: {writes} ({writes / args.jobs:.1f} per job, first run included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
