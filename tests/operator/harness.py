"""The operator's integration harness: a sandbox, the real operator as a subprocess, a fake provider.

`OperatorCluster` starts a sandbox with a user of its own for the operator (so the request log tells
the operator's calls apart from the test's), then `destinations operator` against that user's
kubeconfig; the sandbox kubelet runs the real worker for each sync pod. `FakeProvider` is a local HTTP
server that serves source records as JSON lines and receives the webhook provider's batches.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import yaml

from destinations.sandbox import RequestRecord, Sandbox, render_kubeconfig
from tests.fixtures.rbac import load_operator_rbac, record_operator_requests
from tests.fixtures.sandbox import SandboxApi, real_control_plane, wait_until

OPERATOR_NAMESPACE = "destinations-system"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:destinations-operator"
MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "base"
JOBS = "/apis/destinations.dev/v1/namespaces/{namespace}/destinationjobs"
AUTHORIZATIONS = "/apis/destinations.dev/v1/namespaces/{namespace}/authorizations"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
CANARY = "canary-5f3c9a71-never-show-me"
HOLD_CEILING = 300.0
"""Seconds a held answer waits at most when a test never releases it (the server must not hang)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ------------------------------------------------------------------------------------ the provider


@dataclass
class Behaviour:
    """How the fake provider answers one namespace's webhook: `ok`, `fail` (401) or `ratelimit` (429)."""

    mode: str = "ok"
    retry_after: int = 120
    delay: float = 0.0
    """Seconds the records endpoint waits before answering: keeps a run in flight."""


class FakeProvider:
    """A JSON-lines source (`/records/<ns>`) and a webhook sink (`/hook/<ns>`) on one local port."""

    def __init__(self) -> None:
        self.received: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.headers: list[dict[str, str]] = []
        self.behaviours: dict[str, Behaviour] = defaultdict(Behaviour)
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.record_requests: dict[str, int] = defaultdict(int)
        self._gates: dict[str, threading.Event] = {}
        self._waiting: dict[str, threading.Event] = defaultdict(threading.Event)
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                namespace = url.path.rsplit("/", 1)[-1]
                provider.record_requests[namespace] += 1
                delay = (
                    float(parse_qs(url.query).get("delay", ["0"])[0]) or provider.behaviours[namespace].delay
                )
                if delay:
                    time.sleep(delay)
                gate = provider._gates.get(namespace)
                if gate is not None:
                    provider._waiting[namespace].set()
                    gate.wait(HOLD_CEILING)
                rows = provider.records.get(namespace, [{"email": f"user{i}@example.com"} for i in range(3)])
                body = "".join(json.dumps(row) + "\n" for row in rows).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                namespace = urlparse(self.path).path.rsplit("/", 1)[-1]
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                provider.headers.append(dict(self.headers))
                behaviour = provider.behaviours[namespace]
                if behaviour.mode == "fail":
                    self._answer(401, {"error": "bad key"})
                elif behaviour.mode == "ratelimit":
                    self._answer(429, {"error": "slow down"}, {"Retry-After": str(behaviour.retry_after)})
                else:
                    provider.received[namespace].extend(payload.get("records", []))
                    self._answer(200, {"ok": True})

            def _answer(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def hold(self, namespace: str) -> None:
        """Hold every answer of `/records/<namespace>` until `release`: the run reading it stays in
        flight for exactly as long as the test needs, however loaded the machine is."""
        self._waiting[namespace].clear()
        self._gates[namespace] = threading.Event()

    def wait_held(self, namespace: str, timeout: float = 40) -> None:
        """Block until a run is waiting on the held records of `namespace` (its sync pod is running)."""
        wait_until(self._waiting[namespace].is_set, timeout=timeout, message=f"a held request of {namespace}")

    def release(self, namespace: str) -> None:
        """Let the held answers (and every later one) of `namespace` go."""
        gate = self._gates.pop(namespace, None)
        if gate is not None:
            gate.set()

    def url(self, kind: str, namespace: str, **query: Any) -> str:
        suffix = ("?" + "&".join(f"{k}={v}" for k, v in query.items())) if query else ""
        return f"http://127.0.0.1:{self.port}/{kind}/{namespace}{suffix}"

    def close(self) -> None:
        for gate in self._gates.values():
            gate.set()
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------------- the cluster


@dataclass
class OperatorProcess:
    """`destinations operator` as a subprocess, logging to a file."""

    kubeconfig: Path
    log_path: Path
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    metrics_port: int = field(default_factory=free_port)
    liveness_port: int = field(default_factory=free_port)

    def start(self) -> None:
        environment = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "destinations", "operator",
                "--metrics-port", str(self.metrics_port),
                "--liveness-port", str(self.liveness_port),
                *self.extra_args,
            ],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()

    def wait_ready(self, timeout: float = 120) -> None:
        """Until the operator answers its liveness probe (it is up and watching). Its start-up (imports,
        kopf's scan of the API) is not what the tests time: a loaded CI machine took over 40 s."""

        def answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the operator exited with {self.process.returncode}:\n{self.log[-3000:]}"
                )
            try:
                url = f"http://127.0.0.1:{self.liveness_port}/healthz"
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(answers, timeout=timeout, message="the operator's /healthz")
        except AssertionError as error:
            raise AssertionError(f"{error}; operator log tail:\n{self.log[-3000:]}") from None

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


class OperatorCluster:
    """A sandbox plus the operator plus the fake provider, and the helpers tests speak in."""

    def __init__(self, workdir: Path, *operator_args: str, control_plane: str = "embedded") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.operator_token = f"operator-{os.getpid()}-{time.monotonic_ns()}"
        self._plane = contextlib.ExitStack()
        plane = self._plane.enter_context(real_control_plane(control_plane))
        try:
            self.sandbox = Sandbox(
                kubeconfig_path=workdir / "kubeconfig",
                workdir=workdir / "sandbox",
                bookmark_interval=1.0,
                users={OPERATOR_USER: self.operator_token} if control_plane == "embedded" else {},
                control_plane=control_plane,
                real_control_plane=plane,
                install_repo_crds=plane is None,
            ).start()
        except BaseException:
            self._plane.close()
            raise
        self.api = SandboxApi(self.sandbox)
        self.provider = FakeProvider()
        kubeconfig = operator_kubeconfig(self.sandbox, self.api, workdir / "operator-kubeconfig")
        self.operator = OperatorProcess(kubeconfig, workdir / "operator.log", tuple(operator_args))
        self.operator.start()
        self.operator.wait_ready()

    def close(self) -> None:
        self.operator.stop()
        self.provider.close()
        self.api.close()
        self.sandbox.stop()
        self._plane.close()

    # --- objects -----------------------------------------------------------------------------

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.api.post(path, body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def namespace(self, name: str) -> str:
        self.create(
            "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )
        return name

    def secret(self, namespace: str, name: str = "credentials", values: dict[str, str] | None = None) -> None:
        data = {k: base64.b64encode(v.encode()).decode() for k, v in (values or {"apiKey": CANARY}).items()}
        self.create(
            f"/api/v1/namespaces/{namespace}/secrets",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data},
        )

    def authorization(self, namespace: str, name: str = "hook", secret: str = "credentials") -> None:
        self.create(
            AUTHORIZATIONS.format(namespace=namespace),
            {
                "apiVersion": "destinations.dev/v1",
                "kind": "Authorization",
                "metadata": {"name": name},
                "spec": {"provider": "webhook", "method": "apiKey", "secretRef": {"name": secret}},
            },
        )

    def job_manifest(self, namespace: str, name: str = "export", **spec: Any) -> dict[str, Any]:
        source_query = spec.pop("source_query", {})
        body_spec: dict[str, Any] = {
            "displayName": "Export of test users",
            "provider": "webhook",
            "type": "export",
            "authorizationRef": {"name": "hook"},
            "config": {"url": self.provider.url("hook", namespace)},
            "source": {"url": {"url": self.provider.url("records", namespace, **source_query)}},
            "schedule": {"every": "2s"},
            **spec,
        }
        return {
            "apiVersion": "destinations.dev/v1",
            "kind": "DestinationJob",
            "metadata": {"name": name},
            "spec": body_spec,
        }

    def job(self, namespace: str, name: str = "export", **spec: Any) -> dict[str, Any]:
        return self.create(JOBS.format(namespace=namespace), self.job_manifest(namespace, name, **spec))

    def setup(self, namespace: str, **spec: Any) -> str:
        """A namespace with a Secret, an Authorization and one job named `export`."""
        self.namespace(namespace)
        self.secret(namespace)
        self.authorization(namespace)
        self.job(namespace, **spec)
        return namespace

    def get_job(self, namespace: str, name: str = "export") -> dict[str, Any] | None:
        response = self.api.get(f"{JOBS.format(namespace=namespace)}/{name}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def status(self, namespace: str, name: str = "export") -> dict[str, Any]:
        job = self.get_job(namespace, name)
        return (job or {}).get("status") or {}

    def patch_job(self, namespace: str, body: dict[str, Any], name: str = "export") -> None:
        response = self.api.patch(f"{JOBS.format(namespace=namespace)}/{name}", body)
        assert response.status_code == 200, response.text

    def run_now(self, namespace: str, name: str = "export") -> str:
        value = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + f"-{time.monotonic_ns()}"
        self.patch_job(
            namespace, {"metadata": {"annotations": {"destinations.dev/requested-at": value}}}, name
        )
        return value

    def pods(self, namespace: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/api/v1/namespaces/{namespace}/pods")
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def events(self, namespace: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.api.get(f"/api/v1/namespaces/{namespace}/events").json()["items"]
        return items

    def event_reasons(self, namespace: str) -> list[str]:
        return [event["reason"] for event in self.events(namespace)]

    def wait_for_events(self, namespace: str, *reasons: str, timeout: float = 20) -> list[str]:
        """Wait until Events with all `reasons` exist (they are posted just after the status is written)."""
        wait_until(
            lambda: set(reasons) <= set(self.event_reasons(namespace)),
            timeout=timeout,
            message=f"events {', '.join(reasons)} in {namespace}",
        )
        return self.event_reasons(namespace)

    def wait_for(
        self,
        namespace: str,
        condition: Callable[[dict[str, Any]], Any],
        message: str,
        name: str = "export",
        timeout: float = 40,
    ) -> dict[str, Any]:
        """Poll the job's status until `condition(status)` holds; the failure shows the last status."""
        last: dict[str, Any] = {}

        def check() -> Any:
            nonlocal last
            last = self.status(namespace, name)
            return condition(last)

        try:
            wait_until(check, timeout=timeout, message=message)
        except AssertionError:
            raise AssertionError(
                f"timed out waiting for {message}; last status: {json.dumps(last, indent=1)}\n"
                f"operator log tail:\n{self.operator.log[-3000:]}"
            ) from None
        return last

    def wait_for_phase(
        self, namespace: str, phase: str, name: str = "export", timeout: float = 40
    ) -> dict[str, Any]:
        return self.wait_for(namespace, lambda s: s.get("phase") == phase, f"phase {phase}", name, timeout)

    def operator_requests(self, namespace: str | None = None) -> list[RequestRecord]:
        return [
            record
            for record in self.sandbox.request_log
            if record.user == OPERATOR_USER and (namespace is None or record.namespace == namespace)
        ]


def operator_kubeconfig(sandbox: Sandbox, api: SandboxApi, path: Path) -> Path:
    """A kubeconfig for the operator: as OPERATOR_USER on the emulator (a `users` entry), and on a real
    control plane with a token the API server issues for the shipped ServiceAccount, bound to the
    shipped ClusterRole, so the real RBAC authorizer enforces exactly what manifests/ grants.
    """
    if sandbox.control_plane != "real":
        return sandbox.kubeconfig_for(OPERATOR_USER, path)
    for manifest in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
        for document in yaml.safe_load_all((MANIFESTS / manifest).read_text(encoding="utf-8")):
            if document:
                document.setdefault("metadata", {}).setdefault("namespace", OPERATOR_NAMESPACE)
                sandbox.apply(document)
    response = api.post(
        f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/serviceaccounts/destinations-operator/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    assert response.status_code == 201, response.text
    token = response.json()["status"]["token"]
    path.write_text(
        render_kubeconfig(sandbox.url, OPERATOR_USER, token, sandbox.server.ca_pem), encoding="utf-8"
    )
    return path


def operator_cluster(
    workdir: Path, *operator_args: str, control_plane: str = "embedded"
) -> Iterator[OperatorCluster]:
    """Start a cluster; on teardown, check every resource request its operator made against the RBAC."""
    cluster = OperatorCluster(workdir, *operator_args, control_plane=control_plane)
    try:
        yield cluster
    finally:
        cluster.close()
    # After close: the operator has stopped, so its watches have ended and are in the request log too.
    # Discovery (GET /api, /apis/...) is granted to all authenticated users by system:discovery.
    requests = [record for record in cluster.operator_requests() if record.resource]
    refused = load_operator_rbac().refused(requests)
    assert refused == [], f"requests the ClusterRole in manifests/ does not allow: {refused}"
    record_operator_requests(requests)
