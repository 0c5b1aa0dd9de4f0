"""Worker throughput: records/s exported to a local webhook receiver, next to a plain httpx loop.

Both sides post the same batches (same records, same batch size, same concurrency) to the same
receiver, in the same run. The receiver runs in its own process (aiohttp) so neither side competes
with it for the GIL. The worker is timed twice: wall clock of the whole `destinations worker`
process (start-up included) and the run itself as the worker logs it.

    .venv/bin/python benchmarks/worker_throughput.py [--records 200000] [--batch-size 1000] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]


def serve(port: int, ready: Any) -> None:
    from aiohttp import web

    received = {"records": 0}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        received["records"] += body.count(b'"email"')
        return web.json_response({"ok": True})

    async def count(request: web.Request) -> web.Response:
        return web.json_response(received)

    async def reset(request: web.Request) -> web.Response:
        received["records"] = 0
        return web.json_response(received)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes([web.post("/hook", hook), web.get("/count", count), web.post("/reset", reset)])

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def generate(path: Path, count: int) -> None:
    with path.open("w") as stream:
        for i in range(count):
            stream.write(
                json.dumps({"id": i, "email": f"user{i}@example.com", "plan": "pro", "score": i % 97}) + "\n"
            )


def run_worker(root: Path, url: str, batch_size: int, concurrency: int) -> tuple[float, float]:
    for sub in ("credentials", "secrets", "data/sink"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    spec = {
        "provider": "webhook",
        "type": "export",
        "authorizationRef": {"name": "auth"},
        "config": {"url": url, "batchSize": batch_size, "concurrency": concurrency},
        "source": {"file": {"path": "records.jsonl", "volume": {"persistentVolumeClaim": "data"}}},
    }
    request = {"namespace": "bench", "name": "throughput", "run": 1, "spec": spec, "authMethod": "none"}
    env = {**os.environ, "DESTINATIONS_JOB": json.dumps(request)}
    command = [
        str(REPO_ROOT / ".venv" / "bin" / "destinations"), "worker",
        "--credentials-dir", str(root / "credentials"), "--secrets-dir", str(root / "secrets"),
        "--data-dir", str(root / "data"), "--termination-log", str(root / "termination-log"),
        "--batch-size", str(batch_size),
    ]  # fmt: skip
    started = time.perf_counter()
    finished = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    report = json.loads((root / "termination-log").read_text())
    if finished.returncode != 0:
        sys.exit(f"worker failed: {report}")
    run_seconds = next(
        json.loads(line)["seconds"] for line in finished.stdout.splitlines() if '"event": "succeeded"' in line
    )
    return wall, float(run_seconds)


async def baseline(path: Path, url: str, batch_size: int, concurrency: int) -> float:
    """Read, batch, encode and POST with httpx and a semaphore: what a hand-written loop would do."""
    started = time.perf_counter()
    slots = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency), timeout=60) as client:

        async def post(batch: list[dict[str, object]]) -> None:
            async with slots:
                response = await client.post(
                    url,
                    content=json.dumps({"records": batch}).encode(),
                    headers={"Content-Type": "application/json"},
                )
                response.raise_for_status()

        tasks: set[asyncio.Task[None]] = set()
        batch: list[dict[str, object]] = []
        with path.open() as stream:
            for line in stream:
                batch.append(json.loads(line))
                if len(batch) == batch_size:
                    while len(tasks) >= concurrency:
                        _, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    tasks.add(asyncio.ensure_future(post(batch)))
                    batch = []
        if batch:
            tasks.add(asyncio.ensure_future(post(batch)))
        await asyncio.gather(*tasks)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    port = free_port()
    ready = multiprocessing.Event()
    receiver = multiprocessing.Process(target=serve, args=(port, ready), daemon=True)
    receiver.start()
    ready.wait(30)
    base = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory(prefix="destinations-bench-") as directory:
            root = Path(directory)
            (root / "data" / "source").mkdir(parents=True)
            source = root / "data" / "source" / "records.jsonl"
            generate(source, args.records)

            wall, run_seconds = run_worker(root, f"{base}/hook", args.batch_size, args.concurrency)
            worker_received = httpx.get(f"{base}/count").json()["records"]
            httpx.post(f"{base}/reset")
            plain = asyncio.run(baseline(source, f"{base}/hook", args.batch_size, args.concurrency))
            plain_received = httpx.get(f"{base}/count").json()["records"]
    finally:
        receiver.terminate()

    assert worker_received == plain_received == args.records, (worker_received, plain_received)
    print(f"records: {args.records}, batch size: {args.batch_size}, concurrency: {args.concurrency}")
    print(f"worker (process wall clock): {args.records / wall:>10,.0f} records/s  ({wall:.2f} s)")
    print(
        f"worker (run, as logged):     {args.records / run_seconds:>10,.0f} records/s  ({run_seconds:.2f} s)"
    )
    print(f"plain httpx loop:            {args.records / plain:>10,.0f} records/s  ({plain:.2f} s)")
    print(f"ratio worker/plain: {plain / wall:.2f} (wall clock), {plain / run_seconds:.2f} (run)")


if __name__ == "__main__":
    main()
