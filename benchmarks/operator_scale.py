"""The operator at scale: cost per job at 1,000 to 10,000 jobs, restart, memory, burst, API writes.

The benchmark plays a fast kubelet (each sync pod is marked Succeeded with a worker report as soon as it
appears), so the figures measure the operator, not thousands of worker processes. Every comparison
runs a bare kopf operator (no-op watch handlers for the same kinds, or one pod per object for the
burst) against the same objects in the same run, one after the other, so the ratios hold on whatever
machine runs them. Scenarios (issue 18):

- scale, per size: time and operator CPU until every job ran once and sleeps, per job; peak RSS
  against the bare kopf operator watching the same objects; operator API writes per job (first run
  included), writes while everything sleeps, and writes per run when 1,000 of the jobs are run again
  (the others must see no write).
- restart, per size: the operator restarted under the sleeping jobs, time until every job's runner
  waits (the operator's `destinations_job_runners` gauge), against the bare kopf operator listing and
  watching the same objects; the writes it made meanwhile (must be zero).
- burst: 1,000 jobs applied at once, the rate at which they reach their first pod, against a bare kopf
  operator that creates one pod per object.

`--scenarios restart` without `scale` seeds the sleeping jobs instead of running them: the operator runs
one job to sleep, is stopped, and that job and its finished pod are copied (names, uids and times
substituted) to the other jobs through the API: the same objects the scale scenario leaves, in minutes
instead of a quarter of an hour at 10,000 jobs.

The API writes are read from the backend's request log. The backend is the sandbox's: `embedded` (the
embedded API emulator) or `real` (kube-apiserver, `SandboxConfig(control_plane="real")`, where the
sandbox has it). The emulator runs in this process, so the benchmark's own CPU time (emulator plus fake
kubelet) is printed too: it shows when the emulator, not the operator, bounds the figures.

    nice -n 5 .venv/bin/python benchmarks/operator_scale.py [--jobs 1000 3000 10000] [--backend embedded]
        [--scenarios scale restart burst] [--profile DIR]
    nice -n 5 .venv/bin/python benchmarks/operator_scale.py --jobs 10000 --scenarios restart   # seeded

`--profile DIR` records the operator with py-spy (collapsed stacks, `DIR/<scenario>-<jobs>.txt`).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from destinations.sandbox import Sandbox, SandboxConfig

T = TypeVar("T")

NAMESPACE = "bench"
OPERATOR_USER = "system:serviceaccount:destinations-system:destinations-operator"
OPERATOR_TOKEN = "operator-bench-token"
GROUP_PATH = "/apis/destinations.dev/v1"
REPORT = json.dumps({"result": "succeeded", "records": {"read": 1, "added": 1}, "message": "bench"})
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
RERUN_JOBS = 1000
QUIET_SECONDS = 5.0
TIMEOUT_SECONDS = 1800.0

BARE_KOPF = textwrap.dedent(
    """
    import asyncio, os, kopf

    jobs, pods = set(), set()
    want_jobs, want_pods = int(os.environ["BENCH_JOBS"]), int(os.environ["BENCH_PODS"])
    create_pods = os.environ.get("BENCH_CREATE_PODS") == "1"
    session = None

    def check():
        if len(jobs) >= want_jobs and len(pods) >= want_pods:
            open(os.environ["BENCH_MARKER"], "w").close()

    @kopf.on.login()
    def login(**kwargs):
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.event("destinations.dev", "v1", "destinationjobs")
    async def job(name, namespace, uid, type, **_):
        if name in jobs or type == "DELETED":
            return
        jobs.add(name)
        if create_pods:  # one pod per object, as a minimal operator would
            await create_pod(namespace, name, uid)
        check()

    async def create_pod(namespace, name, uid):
        global session
        import aiohttp, yaml
        if session is None:
            import base64, ssl
            config = yaml.safe_load(open(os.environ["KUBECONFIG"]))
            user, cluster = config["users"][0]["user"], config["clusters"][0]["cluster"]
            context = None
            if cluster.get("certificate-authority-data"):  # kube-apiserver serves TLS under its own CA
                pem = base64.b64decode(cluster["certificate-authority-data"]).decode()
                context = ssl.create_default_context(cadata=pem)
            session = aiohttp.ClientSession(
                base_url=cluster["server"],
                headers={"Authorization": "Bearer " + user["token"]},
                connector=aiohttp.TCPConnector(ssl=context) if context else None,
            )
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name + "-run-1",
                "labels": {"destinations.dev/job": name, "destinations.dev/run": "1"},
                "ownerReferences": [
                    {"apiVersion": "destinations.dev/v1", "kind": "DestinationJob", "name": name,
                     "uid": uid, "controller": True, "blockOwnerDeletion": True}
                ],
            },
            "spec": {"restartPolicy": "Never", "containers": [{"name": "sync", "image": "bench"}]},
        }
        async with session.post(f"/api/v1/namespaces/{namespace}/pods", json=pod) as response:
            if response.status >= 300 and response.status != 409:
                raise kopf.TemporaryError(f"pod not created: {response.status}", delay=1)

    @kopf.on.event("destinations.dev", "v1", "authorizations")
    def authorization(**_):
        pass

    @kopf.on.event("v1", "pods", labels={"destinations.dev/job": kopf.PRESENT})
    def pod(name, type, **_):
        if type != "DELETED":
            pods.add(name)
            check()

    @kopf.on.event("v1", "secrets")
    def secret(**_):
        pass
    """
)


# ----------------------------------------------------------------------------------- processes


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


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclasses.dataclass
class Process:
    """A child process (the operator or bare kopf), optionally recorded by py-spy."""

    popen: subprocess.Popen[bytes]
    started: float
    log_path: Path
    profiler: subprocess.Popen[bytes] | None = None
    stopped: tuple[float, float] | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> tuple[float, float]:
        """Stop it (once); return (peak RSS MiB, CPU seconds) read just before."""
        if self.stopped is not None:
            return self.stopped
        self.stopped = peak, cpu = peak_rss_mib(self.pid), cpu_seconds(self.pid)
        if self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.profiler.wait(60)
        self.popen.terminate()
        try:
            self.popen.wait(30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)
        return peak, cpu


def operator_kubeconfig(sandbox: Sandbox, path: Path) -> Path:
    """The operator's credentials: a `users` entry on the emulator; on a real control plane, as the
    operator tests do, the shipped ServiceAccount bound to the shipped ClusterRole (real RBAC)."""
    if getattr(sandbox, "control_plane", "embedded") != "real":
        return sandbox.kubeconfig_for(OPERATOR_USER, path)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.fixtures.sandbox import SandboxApi
    from tests.operator.harness import operator_kubeconfig as shipped_rbac_kubeconfig

    path = shipped_rbac_kubeconfig(sandbox, SandboxApi(sandbox), path)
    # The operator here watches one namespace (`--namespace bench`), so it gets what the chart grants
    # then (helm/destinations-operator/templates/rbac.yaml): kopf lists Namespaces once, and without
    # the grant retries the 403 for ~54 s (its error backoffs) before it starts watching.
    for document in (
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "bench-namespaces"},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "bench-namespaces"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "bench-namespaces",
            },
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": "destinations-operator",
                    "namespace": "destinations-system",
                }
            ],
        },
    ):
        sandbox.apply(document)
    return path


def start_operator(sandbox: Sandbox, workdir: Path, label: str, profile: Path | None) -> Process:
    kubeconfig = operator_kubeconfig(sandbox, workdir / "operator-kubeconfig")
    log_path = workdir / f"operator-{label}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "destinations",
                "operator",
                "--namespace",
                NAMESPACE,
                "--metrics-port",
                "0",
                "--liveness-port",
                "0",
                # Polling the runners gauge must not render 21 series per job each time (docs/operator.md).
                "--no-per-job-metrics",
            ],
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    process = Process(popen, time.perf_counter(), log_path)
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        py_spy = Path(sys.executable).with_name("py-spy")
        process.profiler = subprocess.Popen(
            [
                *(str(py_spy), "record", "--pid", str(popen.pid), "--rate", "50", "--format", "raw"),
                *("--nonblocking", "--output", str(profile / f"{label}.txt")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return process


def start_bare_kopf(
    sandbox: Sandbox, workdir: Path, jobs: int, pods: int, *, create_pods: bool = False
) -> tuple[Process, Path]:
    script = workdir / "bare_kopf.py"
    script.write_text(BARE_KOPF)
    marker = workdir / "bare-kopf-saw-all"
    marker.unlink(missing_ok=True)
    kubeconfig = operator_kubeconfig(sandbox, workdir / "bare-kopf-kubeconfig")
    environment = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "BENCH_JOBS": str(jobs),
        "BENCH_PODS": str(pods),
        "BENCH_MARKER": str(marker),
        "BENCH_CREATE_PODS": "1" if create_pods else "0",
    }
    log_path = workdir / "bare-kopf.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kopf",
                "run",
                "--standalone",
                "--namespace",
                NAMESPACE,
                "-q",
                str(script),
            ],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Process(popen, time.perf_counter(), log_path), marker


def wait_for(
    condition: Callable[[], bool], what: str, timeout: float = TIMEOUT_SECONDS, poll: float = 0.1
) -> float:
    """Poll until `condition()`; return the time it became true (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
    return time.perf_counter()


def metrics_port(process: Process) -> int:
    found: list[int] = []

    def port_logged() -> bool:
        match = re.search(rb"metrics on http://[^:]+:(\d+)/metrics", process.log_path.read_bytes())
        if match:
            found.append(int(match.group(1)))
        elif process.popen.poll() is not None:
            tail = process.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the operator exited:\n{tail}")
        return bool(found)

    wait_for(port_logged, "the operator's metrics port", 120)
    return found[0]


def idle_runners(port: int) -> int:
    """The operator's `destinations_job_runners{state="idle"}` gauge."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except httpx.HTTPError:
        return -1
    match = re.search(r'^destinations_job_runners\{state="idle"\} ([0-9.e+]+)$', text, re.MULTILINE)
    return int(float(match.group(1))) if match else -1


# ------------------------------------------------------------------------- the benchmark's client


class World:
    """The benchmark's view of the cluster: watches of jobs and pods, and a fake kubelet.

    Runs an asyncio loop in its own thread; everything here is read from the main thread, which only
    orchestrates.
    """

    def __init__(self, sandbox: Sandbox, *, kubelet: bool) -> None:
        self.url = sandbox.url
        self.headers = {"Authorization": f"Bearer {sandbox.token}"}
        self.verify: Any = sandbox.ssl_context() or False
        self.kubelet = kubelet
        self.phases: dict[str, str] = {}
        self.runs: dict[str, int] = {}
        self.handled: dict[str, str] = {}
        self.pod_times: dict[str, float] = {}
        self.live_pods: set[str] = set()
        self._finished: set[str] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-world", daemon=True)
        self._thread.start()
        self.client: httpx.AsyncClient = self.call(self._make_client())
        self._semaphore = asyncio.Semaphore(8)
        # The kubelet's own: pods finish while the jobs are still being created, as on a cluster.
        self._kubelet_semaphore = asyncio.Semaphore(8)
        self._watches = [
            asyncio.run_coroutine_threadsafe(
                self._watch(f"{GROUP_PATH}/namespaces/{NAMESPACE}/destinationjobs", {}, self._on_job),
                self._loop,
            ),
            asyncio.run_coroutine_threadsafe(
                self._watch(
                    f"/api/v1/namespaces/{NAMESPACE}/pods",
                    {"labelSelector": "destinations.dev/job"},
                    self._on_pod,
                ),
                self._loop,
            ),
        ]

    async def _make_client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=32)
        return httpx.AsyncClient(
            base_url=self.url, headers=self.headers, verify=self.verify, timeout=120, limits=limits
        )

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = TIMEOUT_SECONDS) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def close(self) -> None:
        for watch in self._watches:
            watch.cancel()
        self.call(self.client.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # --- queries from the main thread --------------------------------------------------------

    def count(self, predicate: Callable[[str], bool]) -> int:
        return sum(1 for name in list(self.phases) if predicate(name))

    def sleeping_after(self, runs: int, names: Iterator[str] | list[str] | None = None) -> int:
        selected = list(self.phases) if names is None else list(names)
        return sum(
            1 for name in selected if self.phases.get(name) == "Sleeping" and self.runs.get(name, 0) >= runs
        )

    # --- writes ------------------------------------------------------------------------------

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        async with self._semaphore:
            response = await self.client.post(path, json=body)
        if response.status_code >= 300:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")

    async def _patch(
        self, path: str, body: dict[str, Any], semaphore: asyncio.Semaphore | None = None
    ) -> None:
        async with semaphore or self._semaphore:
            response = await self.client.patch(
                path, content=json.dumps(body), headers={"Content-Type": "application/merge-patch+json"}
            )
        if response.status_code >= 300 and response.status_code != 404:
            raise RuntimeError(f"PATCH {path}: {response.status_code} {response.text[:300]}")

    def create_jobs(self, names: list[str]) -> None:
        async def create_all() -> None:
            path = f"{GROUP_PATH}/namespaces/{NAMESPACE}/destinationjobs"
            await asyncio.gather(*(self._post(path, job(name)) for name in names))

        self.call(create_all())

    def request_runs(self, names: list[str], value: str) -> None:
        async def annotate_all() -> None:
            await asyncio.gather(
                *(
                    self._patch(
                        f"{GROUP_PATH}/namespaces/{NAMESPACE}/destinationjobs/{name}",
                        {"metadata": {"annotations": {"destinations.dev/requested-at": value}}},
                    )
                    for name in names
                )
            )

        self.call(annotate_all())

    def seed(self, template: str, names: list[str]) -> None:
        """Copy the sleeping job `template` (its status and its finished pod) to each of `names`."""

        async def fetch() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            base = f"{GROUP_PATH}/namespaces/{NAMESPACE}/destinationjobs/{template}"
            body = (await self.client.get(base)).json()
            params = {"labelSelector": f"destinations.dev/job={template}"}
            pods = (await self.client.get(f"/api/v1/namespaces/{NAMESPACE}/pods", params=params)).json()
            return body, pods["items"]

        body, pods = self.call(fetch())
        status_text = json.dumps(body["status"])
        template_uid = body["metadata"]["uid"]

        async def copy(name: str) -> None:
            created = await self._request(
                "POST", f"{GROUP_PATH}/namespaces/{NAMESPACE}/destinationjobs", job(name)
            )
            uid = created["metadata"]["uid"]
            status = json.loads(status_text.replace(template, name))
            path = f"{GROUP_PATH}/namespaces/{NAMESPACE}/destinationjobs/{name}/status"
            await self._request("PATCH", path, {"status": status})
            for pod in pods:
                text = (
                    json.dumps({"metadata": pod["metadata"], "spec": pod["spec"], "status": pod["status"]})
                    .replace(template_uid, uid)
                    .replace(template, name)
                )
                copied = json.loads(text)
                for field in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
                    copied["metadata"].pop(field, None)
                copied["spec"].pop("nodeName", None)
                pod_status = copied.pop("status")
                await self._request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", copied)
                pod_path = f"/api/v1/namespaces/{NAMESPACE}/pods/{copied['metadata']['name']}/status"
                await self._request("PATCH", pod_path, {"status": pod_status})

        async def copy_all() -> None:
            await asyncio.gather(*(copy(name) for name in names))
            # What the operator would have counted had it seen them come: no write left at restart.
            path = f"{GROUP_PATH}/namespaces/{NAMESPACE}/authorizations/hook/status"
            await self._request("PATCH", path, {"status": {"usedBy": len(names) + 1}})

        self.call(copy_all())

    async def _request(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
        async with self._semaphore:
            response = await self.client.request(method, path, content=json.dumps(body), headers=headers)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        result: dict[str, Any] = response.json()
        return result

    def setup(self) -> None:
        async def create() -> None:
            await self._post("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
            await self._post(
                f"/api/v1/namespaces/{NAMESPACE}/secrets",
                {"metadata": {"name": "credentials"}, "data": {"apiKey": "YmVuY2g="}},
            )
            await self._post(
                f"{GROUP_PATH}/namespaces/{NAMESPACE}/authorizations",
                {
                    "apiVersion": "destinations.dev/v1",
                    "kind": "Authorization",
                    "metadata": {"name": "hook"},
                    "spec": {"provider": "webhook", "method": "apiKey", "secretRef": {"name": "credentials"}},
                },
            )

        self.call(create())

    # --- watches -----------------------------------------------------------------------------

    async def _watch(self, path: str, params: dict[str, str], handle: Callable[[str, Any], None]) -> None:
        version: str | None = None
        while True:
            try:
                if version is None:
                    listing = (await self.client.get(path, params=params)).json()
                    version = listing["metadata"]["resourceVersion"]
                    for item in listing.get("items") or []:
                        handle("ADDED", item)
                query = {
                    **params,
                    "watch": "1",
                    "resourceVersion": version,
                    "allowWatchBookmarks": "true",
                    "timeoutSeconds": "300",
                }
                async with self.client.stream("GET", path, params=query, timeout=None) as response:
                    async for line in response.aiter_lines():
                        if not line:
                            continue
                        event = json.loads(line)
                        if event["type"] == "ERROR":
                            version = None  # 410 Gone: list again
                            break
                        version = event["object"]["metadata"].get("resourceVersion", version)
                        if event["type"] != "BOOKMARK":
                            handle(event["type"], event["object"])
            except asyncio.CancelledError:
                raise
            except Exception as error:  # keep watching: the benchmark must not stall on a hiccup
                print(f"watch {path}: {error!r}", file=sys.stderr)
                await asyncio.sleep(0.5)

    def _on_job(self, event_type: str, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        if event_type == "DELETED":
            self.phases.pop(name, None)
            return
        status = body.get("status") or {}
        self.phases[name] = status.get("phase") or ""
        self.runs[name] = (status.get("runs") or {}).get("total", 0)
        self.handled[name] = status.get("lastHandledRequestAt") or ""

    def _on_pod(self, event_type: str, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        if event_type == "DELETED":
            self.live_pods.discard(name)
            return
        self.live_pods.add(name)
        self.pod_times.setdefault(name, time.perf_counter())
        finished = (body.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if self.kubelet and name not in self._finished and not finished:
            self._finished.add(name)
            task = asyncio.get_running_loop().create_task(self._finish_pod(name))
            task.add_done_callback(_report_failure)

    async def _finish_pod(self, name: str) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        terminated = {"exitCode": 0, "reason": "Completed", "message": REPORT, "startedAt": now}
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
                        "state": {"terminated": {**terminated, "finishedAt": now}},
                    }
                ],
            }
        }
        path = f"/api/v1/namespaces/{NAMESPACE}/pods/{name}/status"
        await self._patch(path, status, self._kubelet_semaphore)


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        print(f"fake kubelet: {task.exception()!r}", file=sys.stderr)


def job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {"name": name},
        "spec": {
            "provider": "webhook",
            "type": "export",
            "authorizationRef": {"name": "hook"},
            "config": {"url": "http://127.0.0.1:9/hook"},
            "source": {"url": {"url": "http://127.0.0.1:9/records"}},
            "schedule": {"every": "1h"},
        },
    }


def job_names(count: int) -> list[str]:
    return [f"job-{index:05d}" for index in range(count)]


# ---------------------------------------------------------------------------------- request log


class Writes:
    """Operator writes from the backend's request log (the emulator's, or the API server's audit log)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._since = ""

    def mark(self) -> None:
        self._since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def settle(self, quiet: float = 2.0) -> list[Any]:
        """Wait until no operator write for `quiet` seconds; the writes since the mark."""
        while True:
            window = self.since_mark()
            time.sleep(quiet)
            if len(self.since_mark()) == len(window):
                return window

    def since_mark(self, verbs: frozenset[str] | None = WRITE_VERBS) -> list[Any]:
        """The operator's requests since the mark: its writes, or every request (`verbs=None`)."""
        return [
            record
            for record in self.sandbox.request_log
            if record.time >= self._since
            and record.user == OPERATOR_USER
            and (verbs is None or record.verb in verbs)
        ]


# ---------------------------------------------------------------------------------- scenarios


@dataclasses.dataclass
class Backend:
    name: str
    description: str

    def sandbox(self, workdir: Path) -> Sandbox:
        options: dict[str, Any] = {
            "kubeconfig_path": workdir / "kubeconfig",
            "kubelet": False,
            "tls": False,
            "users": {OPERATOR_USER: OPERATOR_TOKEN},
        }
        if self.name != "embedded":
            options["control_plane"] = self.name
        return Sandbox(SandboxConfig(**options))


def choose_backend(name: str) -> Backend:
    if name == "embedded":
        return Backend(name, "embedded: the sandbox's API emulator, in this process")
    if "control_plane" not in {field.name for field in dataclasses.fields(SandboxConfig)}:
        raise SystemExit(f"--backend {name!r}: this sandbox has only the embedded API emulator ('embedded')")
    return Backend(name, f"{name}: SandboxConfig(control_plane={name!r})")


@dataclasses.dataclass
class Cluster:
    """One scenario's cluster: its sandbox and work directory, the benchmark's world (set up: namespace,
    Secret, Authorization) and the operator's writes; what is put on `stack` is stopped at the end."""

    workdir: Path
    sandbox: Sandbox
    world: World
    writes: Writes
    stack: contextlib.ExitStack


@contextlib.contextmanager
def cluster(backend: Backend, prefix: str, *, kubelet: bool) -> Iterator[Cluster]:
    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        workdir = Path(directory)
        with backend.sandbox(workdir) as sandbox, contextlib.ExitStack() as stack:
            world = World(sandbox, kubelet=kubelet)
            try:
                world.setup()
                yield Cluster(workdir, sandbox, world, Writes(sandbox), stack)
            finally:
                world.close()


@dataclasses.dataclass
class ScaleResult:
    jobs: int
    seconds: float
    cpu: float
    bench_cpu: float
    peak: float
    writes: int
    sleeping_writes: int
    rerun_writes: int
    rerun_jobs: int
    rerun_writes_elsewhere: int
    restart_seconds: float = 0.0
    restart_cpu: float = 0.0
    restart_peak: float = 0.0
    restart_writes: int = 0
    bare_seconds: float = 0.0
    bare_cpu: float = 0.0
    bare_peak: float = 0.0


def scenario_scale(backend: Backend, jobs: int, profile: Path | None, restart: bool) -> ScaleResult:
    with cluster(backend, "operator-scale-", kubelet=True) as c:
        world, writes = c.world, c.writes
        names = job_names(jobs)
        operator = start_operator(c.sandbox, c.workdir, f"scale-{jobs}", profile)
        c.stack.callback(operator.stop)
        metrics_port(operator)
        writes.mark()
        bench_cpu_before = own_cpu_seconds()
        started = time.perf_counter()
        world.create_jobs(names)
        done = wait_for(lambda: world.sleeping_after(1) >= jobs, f"{jobs} jobs to sleep after a run")
        cpu = cpu_seconds(operator.pid)
        bench_cpu = own_cpu_seconds() - bench_cpu_before
        first_run = writes.settle()  # the last Events land after the status
        first_run_writes = len(first_run)
        print(f"operator writes during the first runs: {request_counts(first_run)}")

        writes.mark()
        time.sleep(QUIET_SECONDS)
        sleeping_writes = len(writes.since_mark())

        rerun = names[:: max(1, jobs // RERUN_JOBS)][:RERUN_JOBS]
        writes.mark()
        value = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        world.request_runs(rerun, value)
        wait_for(
            lambda: (
                world.sleeping_after(2, rerun) >= len(rerun)
                and all(world.handled.get(name) == value for name in rerun)
            ),
            "the jobs run again to sleep",
        )
        window = writes.settle()
        chosen = set(rerun)
        elsewhere = sum(
            1 for record in window if record.resource == "destinationjobs" and record.name not in chosen
        )
        peak, _ = operator.stop()
        result = ScaleResult(
            jobs=jobs,
            seconds=done - started,
            cpu=cpu,
            bench_cpu=bench_cpu,
            peak=peak,
            writes=first_run_writes,
            sleeping_writes=sleeping_writes,
            rerun_writes=len(window),
            rerun_jobs=len(rerun),
            rerun_writes_elsewhere=elsewhere,
        )
        report_scale([result], restart=False)
        sys.stdout.flush()
        if restart:
            scenario_restart(c, result, profile)
        return result


def scenario_restart(c: Cluster, result: ScaleResult, profile: Path | None) -> None:
    jobs, pods = result.jobs, len(c.world.live_pods)
    bare, marker = start_bare_kopf(c.sandbox, c.workdir, jobs, pods)
    c.stack.callback(bare.stop)
    seen = wait_for(marker.exists, "the bare kopf operator to see every object")
    result.bare_seconds = seen - bare.started
    result.bare_cpu = cpu_seconds(bare.pid)
    time.sleep(2)  # the idle memory after the listing
    result.bare_peak, _ = bare.stop()

    writes = c.writes
    writes.mark()
    operator = start_operator(c.sandbox, c.workdir, f"restart-{jobs}", profile)
    c.stack.callback(operator.stop)
    port = metrics_port(operator)
    settled = wait_for(lambda: idle_runners(port) >= jobs, "every job's runner to wait", poll=1.0)
    result.restart_seconds = settled - operator.started
    result.restart_cpu = cpu_seconds(operator.pid)
    time.sleep(QUIET_SECONDS)
    result.restart_writes = len(writes.since_mark())
    print(f"operator requests during the restart: {request_counts(writes.since_mark(verbs=None))}")
    listed = re.search(r"listed at start-up in [^\n]*", operator.log_path.read_text(errors="replace"))
    if listed:
        print(f"operator log: {listed.group(0)}")
    result.restart_peak, _ = operator.stop()


def scenario_seeded_restart(backend: Backend, jobs: int, profile: Path | None) -> ScaleResult:
    """The restart scenario under `jobs` sleeping jobs seeded from one the operator ran (see above)."""
    with cluster(backend, "operator-restart-", kubelet=True) as c:
        world = c.world
        names = job_names(jobs)
        operator = start_operator(c.sandbox, c.workdir, "template", None)
        c.stack.callback(operator.stop)
        metrics_port(operator)
        world.create_jobs(names[:1])
        wait_for(lambda: world.sleeping_after(1) >= 1, "the template job to sleep after a run")
        c.writes.settle()
        operator.stop()
        seeding = time.perf_counter()
        world.kubelet = False  # the copies are finished pods already
        world.seed(names[0], names[1:])
        wait_for(lambda: world.sleeping_after(1) >= jobs, f"{jobs} seeded jobs to be seen sleeping")
        took = time.perf_counter() - seeding
        print(f"seeded {jobs - 1:,} sleeping jobs and their pods in {took:.1f} s")
        result = ScaleResult(
            jobs=jobs,
            seconds=0.0,
            cpu=0.0,
            bench_cpu=0.0,
            peak=0.0,
            writes=0,
            sleeping_writes=0,
            rerun_writes=0,
            rerun_jobs=1,
            rerun_writes_elsewhere=0,
        )
        scenario_restart(c, result, profile)
        return result


def request_counts(records: list[Any]) -> dict[str, int]:
    """Requests by verb and resource (with subresource): `{"patch destinationjobs/status": 2000, ...}`."""
    counts = collections.Counter(
        f"{record.verb} {record.resource}{'/' + record.subresource if record.subresource else ''}"
        for record in records
    )
    return dict(sorted(counts.items()))


@dataclasses.dataclass
class BurstResult:
    jobs: int
    operator_seconds: float
    bare_seconds: float
    operator_writes: int


def scenario_burst(backend: Backend, jobs: int, profile: Path | None) -> BurstResult:
    def first_pods(start: Callable[[Sandbox, Path], Process]) -> tuple[float, int]:
        with cluster(backend, "operator-burst-", kubelet=False) as c:
            process = start(c.sandbox, c.workdir)
            c.stack.callback(process.stop)
            time.sleep(3)  # started and listed (nothing yet)
            c.writes.mark()
            started = time.perf_counter()
            c.world.create_jobs(job_names(jobs))
            wait_for(lambda: len(c.world.pod_times) >= jobs, f"{jobs} first pods")
            last = max(c.world.pod_times.values())
            made = c.writes.since_mark()
            process.stop()
            # The writes up to the last pod's creation (the others, made later, wait for it).
            last_pod = max(r.time for r in made if r.verb == "create" and r.resource == "pods")
            return last - started, sum(1 for r in made if r.time <= last_pod)

    def operator(sandbox: Sandbox, workdir: Path) -> Process:
        process = start_operator(sandbox, workdir, f"burst-{jobs}", profile)
        metrics_port(process)
        return process

    def bare(sandbox: Sandbox, workdir: Path) -> Process:
        return start_bare_kopf(sandbox, workdir, jobs, jobs, create_pods=True)[0]

    operator_seconds, operator_writes = first_pods(operator)
    bare_seconds, _ = first_pods(bare)
    return BurstResult(jobs, operator_seconds, bare_seconds, operator_writes)


# ---------------------------------------------------------------------------------- reporting


def report_scale(results: list[ScaleResult], *, restart: bool = True) -> None:
    print("\n## scale: every job created at once, run once by the fake kubelet, then sleeping")
    print(
        "| jobs | time | per job | operator CPU | per job | bench+emulator CPU | peak RSS "
        "| bare kopf RSS | ratio | writes/job (1st run) | writes while sleeping "
        "| writes/run (re-run of N) | writes to other jobs |"
    )
    print("|" + "---|" * 13)
    for r in results:
        per_job_ms = r.seconds / r.jobs * 1000
        print(
            f"| {r.jobs:,} | {r.seconds:.1f} s | {per_job_ms:.2f} ms | {r.cpu:.1f} s "
            f"| {r.cpu / r.jobs * 1000:.2f} ms | {r.bench_cpu:.1f} s | {r.peak:.0f} MiB "
            + (
                f"| {r.bare_peak:.0f} MiB | {r.peak / r.bare_peak:.2f}x "
                if r.bare_peak
                else "| (no restart) | "
            )
            + f"| {r.writes / r.jobs:.2f} | {r.sleeping_writes} in {QUIET_SECONDS:.0f} s "
            f"| {r.rerun_writes / r.rerun_jobs:.2f} (N={r.rerun_jobs:,}) | {r.rerun_writes_elsewhere} |"
        )
    if len(results) > 1:
        base = results[0]
        for r in results[1:]:
            print(
                f"{r.jobs:,} vs {base.jobs:,} jobs: {r.jobs / base.jobs:.0f}x the jobs took "
                f"{r.seconds / base.seconds:.1f}x the time and {r.cpu / base.cpu:.1f}x the operator CPU "
                f"(per job: {(r.seconds / r.jobs) / (base.seconds / base.jobs):.2f}x time, "
                f"{(r.cpu / r.jobs) / (base.cpu / base.jobs):.2f}x CPU); memory per 1,000 more jobs: "
                f"operator {(r.peak - base.peak) / (r.jobs - base.jobs) * 1000:.0f} MiB, bare kopf "
                f"{(r.bare_peak - base.bare_peak) / (r.jobs - base.jobs) * 1000:.0f} MiB"
            )
    if restart and any(r.bare_seconds for r in results):
        report_restart(results)


def report_restart(results: list[ScaleResult]) -> None:
    print("\n## restart under the sleeping jobs (and their pods), side by side with bare kopf")
    print(
        "| jobs | operator settled | bare kopf listed+watching | ratio | operator CPU | bare kopf CPU "
        "| ratio | writes meanwhile (+5 s) | operator RSS | bare kopf RSS | ratio |"
    )
    print("|" + "---|" * 11)
    for r in results:
        print(
            f"| {r.jobs:,} | {r.restart_seconds:.1f} s | {r.bare_seconds:.1f} s "
            f"| {r.restart_seconds / r.bare_seconds:.2f}x | {r.restart_cpu:.1f} s | {r.bare_cpu:.1f} s "
            f"| {r.restart_cpu / r.bare_cpu:.2f}x | {r.restart_writes} "
            f"| {r.restart_peak:.0f} MiB | {r.bare_peak:.0f} MiB | {r.restart_peak / r.bare_peak:.2f}x |"
        )


def report_burst(result: BurstResult) -> None:
    print(f"\n## burst: {result.jobs:,} jobs applied at once, until each has its first pod")
    operator_rate = result.jobs / result.operator_seconds
    bare_rate = result.jobs / result.bare_seconds
    print(
        f"operator: {result.operator_seconds:.1f} s ({operator_rate:.0f} jobs/s), "
        f"{result.operator_writes / result.jobs:.2f} writes per job until the last pod"
    )
    print(f"bare kopf creating one pod per object: {result.bare_seconds:.1f} s ({bare_rate:.0f} jobs/s)")
    print(f"rate ratio: {operator_rate / bare_rate:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000])
    parser.add_argument(
        "--backend",
        default="embedded",
        help="the sandbox's control plane: embedded (the API emulator, default) or real (kube-apiserver)",
    )
    parser.add_argument(
        "--scenarios", nargs="+", default=["scale", "restart", "burst"], choices=["scale", "restart", "burst"]
    )
    parser.add_argument("--burst-jobs", type=int, default=1000)
    parser.add_argument("--profile", type=Path, help="record the operator with py-spy into this directory")
    args = parser.parse_args()
    # Stopped (timeout, Ctrl-C): unwind, so the `finally` blocks stop the operators started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    backend = choose_backend(args.backend)
    print(f"backend: {backend.description}")
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, nice {os.nice(0)}")
    sys.stdout.flush()
    results: list[ScaleResult] = []
    if "restart" in args.scenarios and "scale" not in args.scenarios:
        for jobs in args.jobs:
            results.append(scenario_seeded_restart(backend, jobs, args.profile))
            report_restart(results[-1:])
            sys.stdout.flush()
    elif "scale" in args.scenarios:
        for jobs in args.jobs:
            results.append(scenario_scale(backend, jobs, args.profile, "restart" in args.scenarios))
            report_scale(results[-1:])
            sys.stdout.flush()
        if len(results) > 1:
            print("\n# all sizes")
            report_scale(results)
    if "burst" in args.scenarios:
        report_burst(scenario_burst(backend, args.burst_jobs, args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
