"""How fast the sandbox API server is, next to a trivial aiohttp handler on the same machine.

Loads N objects (default 5,000 ConfigMaps), then measures requests per second for get, list (one
label-selected page of 50), create, merge patch and a mixed workload, with C concurrent clients over
keep-alive connections, and prints each figure with its ratio to the baseline: an aiohttp handler
returning a constant JSON document, measured in the same run with the same client. Both listen on
plain http so the ratio compares the servers, not TLS.

    .venv/bin/python benchmarks/sandbox_throughput.py [--objects 5000] [--seconds 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import threading
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from destinations.sandbox import Sandbox, SandboxConfig

NAMESPACE = "bench"


async def _measure(
    url: str,
    token: str,
    seconds: float,
    concurrency: int,
    make_request: Callable[[aiohttp.ClientSession, int], Awaitable[int]],
) -> float:
    counter = itertools.count()
    done = 0
    failures = 0
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as session:

        async def worker() -> None:
            nonlocal done, failures
            while time.perf_counter() < deadline:
                status = await make_request(session, next(counter))
                done += 1
                failures += status >= 400

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{failures} requests failed")
    return done / elapsed


def _get(session: aiohttp.ClientSession, path: str) -> Awaitable[int]:
    async def request() -> int:
        async with session.get(path) as response:
            await response.read()
            return response.status

    return request()


def _send(
    session: aiohttp.ClientSession, method: str, path: str, body: object, content_type: str
) -> Awaitable[int]:
    async def request() -> int:
        async with session.request(
            method, path, data=json.dumps(body), headers={"Content-Type": content_type}
        ) as response:
            await response.read()
            return response.status

    return request()


def _mixed(session: aiohttp.ClientSession, index: int, base: str, objects: int) -> Awaitable[int]:
    share = index % 10
    if share < 6:
        return _get(session, f"{base}/cm-{index % objects:05d}")
    if share < 8:
        return _get(session, f"{base}?labelSelector=shard%3D{index % 100}")
    if share < 9:
        patch = {"data": {"m": str(index)}}
        return _send(
            session, "PATCH", f"{base}/cm-{index % objects:05d}", patch, "application/merge-patch+json"
        )
    return _send(
        session, "POST", base, {"metadata": {"name": f"mix-{index}"}, "data": {}}, "application/json"
    )


def _baseline_server() -> tuple[str, Callable[[], None]]:
    payload = json.dumps(
        {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x"}, "data": {"a": "1"}}
    ).encode()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=payload, content_type="application/json")

    async def start() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    ready.wait()

    def stop() -> None:
        runner = holder["runner"]
        assert isinstance(runner, web.AppRunner)
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)

    return f"http://127.0.0.1:{holder['port']}", stop


async def _load(url: str, token: str, objects: int, concurrency: int) -> float:
    started = time.perf_counter()
    async with aiohttp.ClientSession(url, headers={"Authorization": f"Bearer {token}"}) as session:
        await _send(
            session, "POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}}, "application/json"
        )
        queue = iter(range(objects))

        async def worker() -> None:
            for index in queue:
                body = {
                    "metadata": {"name": f"cm-{index:05d}", "labels": {"shard": str(index % 100)}},
                    "data": {"value": str(index)},
                }
                status = await _send(
                    session, "POST", f"/api/v1/namespaces/{NAMESPACE}/configmaps", body, "application/json"
                )
                assert status == 201, status

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return objects / (time.perf_counter() - started)


def _baseline(seconds: float, concurrency: int) -> float:
    url, stop = _baseline_server()
    try:
        return asyncio.run(_measure(url, "x", seconds, concurrency, lambda s, i: _get(s, "/constant")))
    finally:
        stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    baseline_before = _baseline(args.seconds, args.concurrency)
    config = SandboxConfig(tls=False, kubelet=False, install_repo_crds=False)
    base = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
    with Sandbox(config) as sandbox:
        url, token = sandbox.url, sandbox.token
        load_rate = asyncio.run(_load(url, token, args.objects, args.concurrency))
        held = sandbox.object_count()
        workloads: dict[str, Callable[[aiohttp.ClientSession, int], Awaitable[int]]] = {
            "get": lambda s, i: _get(s, f"{base}/cm-{i % args.objects:05d}"),
            "list (labelSelector, 50 items)": lambda s, i: _get(s, f"{base}?labelSelector=shard%3D{i % 100}"),
            "create": lambda s, i: _send(
                s, "POST", base, {"metadata": {"name": f"new-{i}"}, "data": {"a": "1"}}, "application/json"
            ),
            "merge patch": lambda s, i: _send(
                s,
                "PATCH",
                f"{base}/cm-{i % args.objects:05d}",
                {"data": {"n": str(i)}},
                "application/merge-patch+json",
            ),
            "mixed (60% get, 20% list, 10% patch, 10% create)": lambda s, i: _mixed(s, i, base, args.objects),
        }
        results = {
            name: asyncio.run(_measure(url, token, args.seconds, args.concurrency, make))
            for name, make in workloads.items()
        }
        held_after = sandbox.object_count()
    # Measured before and after the sandbox runs: on a shared machine the mean is the fairer reference.
    baseline = (baseline_before + _baseline(args.seconds, args.concurrency)) / 2
    print(
        f"objects loaded: {args.objects} at {load_rate:,.0f} creates/s; objects held: {held} before, "
        f"{held_after} after the runs"
    )
    print(f"baseline (constant JSON from a bare aiohttp handler): {baseline:,.0f} req/s")
    for name, rate in results.items():
        print(f"{name:<50} {rate:>8,.0f} req/s   {rate / baseline:6.1%} of baseline")


if __name__ == "__main__":
    main()
