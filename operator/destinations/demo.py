"""`destinations demo`: the whole product on one machine, in one command, leaving nothing behind.

It starts three things, each stood up only for the demo and stopped when it ends (Ctrl-C):

- the **sandbox** (`destinations.sandbox`): a local Kubernetes API server and kubelet, reachable by the
  real `kubectl` through the kubeconfig the demo prints;
- the **operator** (`destinations operator`), as a child process watching the sandbox;
- a **receiver**: a small HTTP server standing in for a marketing tool. It counts the records POSTed to
  it and answers each path its own way (accept, always 500, 429 with Retry-After), and serves the
  customers the jobs read as JSON lines.

It then applies the manifests of `data/demo/demo.yaml` (an Authorization with its Secret and five
DestinationJobs, pointed at the receiver) and shows the jobs table live. Each demo job is built to end
in one state of the lifecycle; `--until-ready` exits once all of them are there (for tests and CI).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template
from types import FrameType
from typing import IO, Any

import httpx
import yaml

from destinations import API_VERSION

NAMESPACE = "demo"
MANIFESTS = Path(__file__).resolve().parent / "data" / "demo" / "demo.yaml"
CUSTOMER_COUNT = 120
API_KEY = "demo-api-key"
"""The key of the demo's Secret; the receiver refuses requests without it."""
RATE_LIMIT_SECONDS = 600
"""The receiver's Retry-After on its rate-limited path: long enough that the run ends rate limited."""

Json = dict[str, Any]


# ------------------------------------------------------------------------------------------- receiver


@dataclass(frozen=True)
class Behaviour:
    """How the receiver answers POSTs on one path."""

    status: int = 200
    retry_after: int | None = None

    @property
    def accepts(self) -> bool:
        return 200 <= self.status < 300


ACCEPT = Behaviour()
ALWAYS_FAIL = Behaviour(status=500)
RATE_LIMITED = Behaviour(status=429, retry_after=RATE_LIMIT_SECONDS)

DEMO_BEHAVIOURS: dict[str, Behaviour] = {
    "/newsletter": ACCEPT,
    "/backfill": ACCEPT,
    "/digest": ACCEPT,
    "/crm": ALWAYS_FAIL,
    "/ads": RATE_LIMITED,
}


@dataclass
class PathCounts:
    requests: int = 0
    records: int = 0
    """Records accepted on this path."""
    statuses: dict[int, int] = field(default_factory=dict)


def demo_customers(count: int = CUSTOMER_COUNT) -> list[Json]:
    """Deterministic, obviously fake customers."""
    first_names = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Linus", "Margaret", "Dennis")
    plans = ("free", "pro", "enterprise")
    return [
        {
            "email": f"customer{number:04d}@example.com",
            "first_name": first_names[number % len(first_names)],
            "plan": plans[number % len(plans)],
            "lifetime_value": round(number * 37.5 % 5000, 2),
        }
        for number in range(1, count + 1)
    ]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up (a worker stopped mid-request) is normal here, not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Receiver:
    """A local HTTP server standing in for a marketing tool (thread-based, standard library only).

    - `GET /`: the credential check; 200 with the right `X-API-Key`, else 401.
    - `GET /customers.jsonl`: the demo customers as JSON lines (a job source).
    - `POST <path>`: a batch `{"records": [...]}`, answered per `behaviours` (default: accept); accepted
      records are counted per path.
    """

    def __init__(
        self,
        behaviours: Mapping[str, Behaviour] | None = None,
        *,
        api_key: str = API_KEY,
        customers: Sequence[Json] | None = None,
    ) -> None:
        self.behaviours = dict(DEMO_BEHAVIOURS if behaviours is None else behaviours)
        self.api_key = api_key
        self.customers = list(demo_customers() if customers is None else customers)
        self._counts: dict[str, PathCounts] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the receiver is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def counts(self) -> dict[str, PathCounts]:
        with self._lock:
            return {
                path: PathCounts(count.requests, count.records, dict(count.statuses))
                for path, count in self._counts.items()
            }

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the demo shows counts, not an access log."""

            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/customers.jsonl":
                    body = "".join(json.dumps(record) + "\n" for record in receiver.customers)
                    self._answer(200, body.encode(), "application/x-ndjson")
                elif self.headers.get("X-API-Key") == receiver.api_key:
                    self._answer(200, b'{"status":"ok"}')
                else:
                    self._answer(401, b'{"error":"missing or wrong X-API-Key"}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                path = self.path.split("?")[0]
                if self.headers.get("X-API-Key") != receiver.api_key:
                    self._answer(401, b'{"error":"missing or wrong X-API-Key"}')
                    return
                behaviour = receiver.behaviours.get(path, ACCEPT)
                records = 0
                if behaviour.accepts:
                    try:
                        records = len(json.loads(body).get("records", []))
                    except (ValueError, AttributeError):
                        self._answer(400, b'{"error":"expected {\\"records\\": [...]}"}')
                        return
                receiver._count(path, behaviour.status, records)
                headers = {}
                if behaviour.retry_after is not None:
                    headers["Retry-After"] = str(behaviour.retry_after)
                message = {200: b'{"accepted":true}', 429: b'{"error":"rate limited"}'}
                self._answer(behaviour.status, message.get(behaviour.status, b'{"error":"boom"}'), **headers)

            def _answer(
                self, status: int, body: bytes, content_type: str = "application/json", **headers: str
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-receiver", daemon=True)
        self._thread.start()
        return self

    def _count(self, path: str, status: int, records: int) -> None:
        with self._lock:
            count = self._counts.setdefault(path, PathCounts())
            count.requests += 1
            count.records += records
            count.statuses[status] = count.statuses.get(status, 0) + 1

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
        self._server = None
        self._thread = None


# ---------------------------------------------------------------------------------------- the demo jobs


@dataclass(frozen=True)
class Expectation:
    """The state a demo job is built to reach, and what it shows."""

    job: str
    phase: str
    reason: str
    shows: str

    def met_by(self, job: Json) -> bool:
        status = job.get("status") or {}
        if status.get("phase") != self.phase or status.get("reason") != self.reason:
            return False
        if self.reason == "Scheduled":  # a real export: records arrived
            return bool(((status.get("lastRun") or {}).get("records") or {}).get("added"))
        return True


EXPECTATIONS: tuple[Expectation, ...] = (
    Expectation(
        "newsletter-export", "Sleeping", "Scheduled", "exported real records, sleeping until its next run"
    ),
    Expectation("crm-sync-failing", "Sleeping", "BackingOff", "its endpoint always answers 500: backing off"),
    Expectation("ads-audience-rate-limited", "Sleeping", "RateLimited", "429 with Retry-After: sleeping"),
    Expectation("weekly-digest-paused", "Paused", "PausedBySpec", "spec.paused: true"),
    Expectation("signups-backfill-once", "Completed", "RanOnce", "a once job that ran and completed"),
)


def demo_manifests(receiver_url: str) -> list[Json]:
    """The demo's objects: `data/demo/demo.yaml` pointed at the receiver."""
    text = Template(MANIFESTS.read_text(encoding="utf-8")).substitute(RECEIVER=receiver_url)
    return [document for document in yaml.safe_load_all(text) if isinstance(document, dict)]


# ----------------------------------------------------------------------------------------- the table

COLUMNS = ("NAME", "AUTHORIZATION", "PROVIDER", "TYPE", "STATUS", "AGE", "RECORDS", "MESSAGE")


def format_age(seconds: float) -> str:
    """kubectl's short ages: 42s, 5m10s, 3h, 2d."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    minutes, second = divmod(seconds, 60)
    if minutes < 10:
        return f"{minutes}m{second}s" if second else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    return f"{hours}h" if hours < 48 else f"{hours // 24}d"


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def describe_records(status: Mapping[str, Any]) -> str:
    """The last run's non-zero counts in a few words, e.g. `120 read, 120 added`."""
    records = (status.get("lastRun") or {}).get("records") or {}
    names = ("read", "added", "updated", "removed", "omitted", "failed")
    return ", ".join(f"{records[name]} {name}" for name in names if records.get(name)) or "-"


def render_table(jobs: Sequence[Json], now: datetime, width: int = 200) -> str:
    """The jobs as `kubectl get dj` shows them, plus the last run's records and the message."""
    rows: list[tuple[str, ...]] = [COLUMNS]
    for job in jobs:
        spec = job.get("spec") or {}
        status = job.get("status") or {}
        created = _parse_time((job.get("metadata") or {}).get("creationTimestamp"))
        age = format_age((now - created).total_seconds()) if created else "-"
        rows.append(
            (
                job["metadata"]["name"],
                (spec.get("authorizationRef") or {}).get("name", ""),
                spec.get("provider", ""),
                spec.get("type", ""),
                status.get("phase") or "-",
                age,
                describe_records(status),
                status.get("message") or "",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS) - 1)]
    lines = []
    for row in rows:
        line = "   ".join(cell.ljust(size) for cell, size in zip(row, widths, strict=False)) + "   " + row[-1]
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    return "\n".join(lines) + "\n"


def render_receiver(counts: Mapping[str, PathCounts]) -> str:
    """One line per path the receiver was called on."""
    if not counts:
        return "receiver: no requests yet\n"
    lines = ["receiver:"]
    for path, count in sorted(counts.items()):
        statuses = ", ".join(f"{number}x HTTP {status}" for status, number in sorted(count.statuses.items()))
        lines.append(
            f"  POST {path}: {count.records} records accepted ({count.requests} requests: {statuses})"
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- orchestration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DemoError(RuntimeError):
    """The demo could not start, or a job did not reach its state in time."""


class Demo:
    """The receiver, the sandbox and the operator, started together and stopped together.

    >>> with Demo(workdir) as demo:
    ...     demo.wait_until_ready(timeout=60)
    ...     print(demo.kubeconfig_path)

    Everything lives under `workdir` (the kubeconfig, the pods' files, the operator's log); `stop()`
    ends the operator, then the sandbox (which stops every sync pod process), then the receiver.
    """

    def __init__(
        self, workdir: Path, *, kubeconfig_path: Path | None = None, control_plane: str = "embedded"
    ) -> None:
        self.workdir = workdir
        self.control_plane = control_plane
        self.kubeconfig_path = kubeconfig_path or workdir / "kubeconfig"
        self.operator_log_path = workdir / "operator.log"
        self.receiver = Receiver()
        self._sandbox: Any = None
        self._operator: subprocess.Popen[bytes] | None = None
        self._operator_log: IO[bytes] | None = None
        self._client: httpx.Client | None = None

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> Demo:
        from destinations.sandbox import Sandbox  # imported here: the sandbox pulls in aiohttp and TLS

        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.receiver.start()
            self._sandbox = Sandbox(
                kubeconfig_path=self.kubeconfig_path,
                workdir=self.workdir / "sandbox",
                control_plane=self.control_plane,
            ).start()
            self._client = httpx.Client(
                base_url=self._sandbox.url,
                headers={"Authorization": f"Bearer {self._sandbox.token}"},
                verify=self._sandbox.ssl_context() or False,
                timeout=10,
            )
            self._sandbox.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
            for document in demo_manifests(self.receiver.url):
                self._sandbox.apply(document)
            self._start_operator()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_operator(self) -> None:
        self._operator_log = self.operator_log_path.open("ab")
        environment = {**os.environ, "KUBECONFIG": str(self.kubeconfig_path)}
        command = [
            sys.executable,
            "-m",
            "destinations",
            "operator",
            "--metrics-port",
            str(free_port()),
            "--liveness-port",
            str(free_port()),
        ]
        # A session of its own: Ctrl-C reaches the demo only, which then stops the operator first and
        # the sandbox after it, so no run is left half-recorded.
        self._operator = subprocess.Popen(
            command,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=self._operator_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        """Stop everything the demo started; safe to call twice and after a failed start."""
        if self._operator is not None:
            _terminate(self._operator)
            self._operator = None
        if self._operator_log is not None:
            self._operator_log.close()
            self._operator_log = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._sandbox is not None:
            self._sandbox.stop()
            self._sandbox = None
        self.receiver.stop()

    def __enter__(self) -> Demo:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- what is going on ------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        assert self._sandbox is not None, "the demo is not started"
        return str(self._sandbox.url)

    @property
    def operator_pid(self) -> int | None:
        return self._operator.pid if self._operator is not None else None

    def check_operator(self) -> None:
        """Raise `DemoError` with the end of its log when the operator process has exited."""
        if self._operator is not None and self._operator.poll() is not None:
            raise DemoError(
                f"the operator exited with code {self._operator.returncode}; the end of its log "
                f"({self.operator_log_path}):\n{_tail(self.operator_log_path)}"
            )

    def jobs(self, namespace: str = NAMESPACE) -> list[Json]:
        """The DestinationJobs of `namespace`, read through the API like kubectl does."""
        assert self._client is not None, "the demo is not started"
        response = self._client.get(f"/apis/{API_VERSION}/namespaces/{namespace}/destinationjobs")
        response.raise_for_status()
        items: list[Json] = response.json().get("items", [])
        return sorted(items, key=lambda job: str(job["metadata"]["name"]))

    def pending_expectations(self) -> list[Expectation]:
        """The demo jobs that are not in their expected state yet."""
        jobs = {job["metadata"]["name"]: job for job in self.jobs()}
        return [
            expectation
            for expectation in EXPECTATIONS
            if expectation.job not in jobs or not expectation.met_by(jobs[expectation.job])
        ]

    def wait_until_ready(
        self,
        timeout: float,
        *,
        on_progress: Callable[[Expectation], None] | None = None,
        poll_interval: float = 0.25,
    ) -> None:
        """Block until every demo job reached its expected state; `DemoError` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        reported: set[str] = set()
        while True:
            self.check_operator()
            pending = self.pending_expectations()
            if on_progress is not None:
                for expectation in EXPECTATIONS:
                    if expectation not in pending and expectation.job not in reported:
                        reported.add(expectation.job)
                        on_progress(expectation)
            if not pending:
                return
            if time.monotonic() > deadline:
                jobs = {job["metadata"]["name"]: job.get("status") or {} for job in self.jobs()}
                details = "\n".join(
                    f"  {e.job}: expected {e.phase}/{e.reason}, is "
                    f"{jobs.get(e.job, {}).get('phase', 'missing')}/{jobs.get(e.job, {}).get('reason', '-')}"
                    f" ({jobs.get(e.job, {}).get('message', '')})"
                    for e in pending
                )
                raise DemoError(
                    f"after {timeout:.0f}s, {len(pending)} demo job(s) had not reached their state:\n"
                    f"{details}\nthe operator's log: {self.operator_log_path}"
                )
            time.sleep(poll_interval)


def _terminate(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM the process group, then SIGKILL it if it outstays `grace` seconds."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Anything the process left in its group (it should leave nothing) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------------------- the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--until-ready",
        "--short",
        dest="until_ready",
        action="store_true",
        help="exit 0 once every demo job reached its expected state (non-zero on timeout); for tests and CI",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=90,
        help="seconds --until-ready waits for the demo jobs (default 90)",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help="where to write the sandbox's kubeconfig (default: in the demo's temporary directory)",
    )
    parser.add_argument(
        "--control-plane",
        choices=("embedded", "real"),
        default="embedded",
        help="embedded: the sandbox's API emulator, no binaries needed (default); real: etcd, "
        "kube-apiserver and kube-controller-manager built by `make test`/`bash scripts/setup.sh`",
    )
    parser.add_argument(
        "--refresh", type=float, default=1.0, help="seconds between refreshes of the live table (default 1)"
    )


def _introduction(demo: Demo) -> str:
    kubectl = f"kubectl --kubeconfig {demo.kubeconfig_path}"
    jobs = "\n".join(f"  {e.job:<28} {e.shows}" for e in EXPECTATIONS)
    return (
        f"Sandbox API server {demo.api_url}; the operator logs to {demo.operator_log_path}\n"
        f"Receiver (the stand-in marketing tool) at {demo.receiver.url}\n\n"
        f"Demo jobs (namespace {NAMESPACE}):\n{jobs}\n\n"
        f"Kubeconfig: {demo.kubeconfig_path}\n"
        f"Try, in another terminal:\n"
        f"  {kubectl} get dj -n {NAMESPACE} -o wide\n"
        f"  {kubectl} describe dj newsletter-export -n {NAMESPACE}\n"
        f"  {kubectl} get events -n {NAMESPACE}\n"
        f"  {kubectl} annotate dj crm-sync-failing -n {NAMESPACE} "
        "destinations.dev/requested-at=$(date -u +%FT%TZ) --overwrite\n"
        f"  {kubectl} patch dj weekly-digest-paused -n {NAMESPACE} --type merge "
        """-p '{"spec":{"paused":false}}'\n"""
    )


class _Stop(Exception):
    """SIGTERM arrived: leave the live view and clean up, as for Ctrl-C."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="destinations-demo-"))
    kubeconfig = args.kubeconfig.resolve() if args.kubeconfig else None
    previous_handler = signal.signal(signal.SIGTERM, _raise_stop)
    # Ctrl-C must stop the demo even when a shell started it in the background with SIGINT ignored.
    previous_interrupt = signal.signal(signal.SIGINT, signal.default_int_handler)
    demo = Demo(workdir, kubeconfig_path=kubeconfig, control_plane=args.control_plane)
    try:
        print("Starting the sandbox, the operator and the receiver…", flush=True)
        demo.start()
        print(_introduction(demo), flush=True)
        if args.until_ready:
            return _run_until_ready(demo, args.timeout)
        _show_live(demo, args.refresh)
        return 0
    except (KeyboardInterrupt, _Stop):
        return 0
    except DemoError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        # A second Ctrl-C (or SIGTERM) while stopping would leave processes behind: finish stopping first.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("Stopping the operator, the sandbox and the receiver…", flush=True)
        demo.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous_handler)
        signal.signal(signal.SIGINT, previous_interrupt)
        print("Stopped; nothing is left running.", flush=True)


def _run_until_ready(demo: Demo, timeout: float) -> int:
    def progress(expectation: Expectation) -> None:
        print(
            f"  ok  {expectation.job}: {expectation.phase} ({expectation.reason}), {expectation.shows}",
            flush=True,
        )

    demo.wait_until_ready(timeout, on_progress=progress)
    print(render_table(demo.jobs(), datetime.now(UTC)), flush=True)
    print(render_receiver(demo.receiver.counts()), flush=True)
    print("Every demo job reached its expected state.", flush=True)
    return 0


def _show_live(demo: Demo, refresh: float) -> None:
    interactive = sys.stdout.isatty()
    introduction = _introduction(demo)
    previous: list[tuple[str, Any]] = []
    for frame in _frames(demo, refresh):
        if interactive:
            width = shutil.get_terminal_size((160, 40)).columns
            table = render_table(frame.jobs, frame.now, width)
            sys.stdout.write("\x1b[H\x1b[2J" + introduction + "\n" + table + "\n")
            sys.stdout.write(render_receiver(frame.receiver) + "\n(Ctrl-C stops the demo)\n")
            sys.stdout.flush()
        else:
            # Not a terminal (a pipe, a log): print the table only when a job changed its state.
            state = [(job["metadata"]["name"], (job.get("status") or {}).get("reason")) for job in frame.jobs]
            if state != previous:
                previous = state
                print(render_table(frame.jobs, frame.now), flush=True)


@dataclass(frozen=True)
class _Frame:
    jobs: list[Json]
    receiver: dict[str, PathCounts]
    now: datetime


def _frames(demo: Demo, refresh: float) -> Iterator[_Frame]:
    while True:
        demo.check_operator()
        yield _Frame(demo.jobs(), demo.receiver.counts(), datetime.now(UTC))
        time.sleep(refresh)
