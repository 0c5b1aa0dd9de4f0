"""A real Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager.

This is the test bed of record (DESIGN.md §7): the project's claims about Kubernetes (schema
validation, pruning, defaulting, printer columns, admission, RBAC, garbage collection, watches, pod
validation) are checked against the real API server, not only against the embedded emulator.

It follows controller-runtime's envtest: one object with `start()`/`stop()`, binaries found through
`KUBEBUILDER_ASSETS` (or the project's build of them, `hack/controlplane/build.sh`), every port and
directory its own, nothing left behind. Differences from envtest, each for a reason:

- Users authenticate with bearer tokens from a static token file (`--token-auth-file`), so the same
  kubeconfigs and HTTP clients serve both backends; the admin is in `system:masters`.
- An audit log (every request at ResponseComplete, level Metadata) stands in for the emulator's
  request log: tests count an operator's writes and check its RBAC from it.
- kube-controller-manager runs the garbage collector, namespace, service-account, token and
  root-CA publisher controllers, which the project's behaviour depends on (ownerReferences,
  namespace deletion, the `default` ServiceAccount every pod needs). There is no scheduler: the
  project's kubelet binds unscheduled pods to its node itself.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from destinations.certificates import ServingCertificate, make_serving_certificate

from ._requestlog import RequestRecord

Json = dict[str, Any]

#: The folder, relative to a checkout, where `scripts/setup.sh` links the built binaries.
REPO_TOOLS_LINK = Path(__file__).resolve().parents[3] / ".tools" / "control-plane"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
ADMIN_USER = "sandbox-admin"
#: kube-controller-manager's own user (in system:masters): its requests are never taken for the admin's.
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
_CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
)
_AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted"],
    "rules": [{"level": "Metadata"}],
}


class ControlPlaneError(RuntimeError):
    """The control plane's binaries are missing, or a component failed to start (its log attached)."""


def find_binaries(environment: Mapping[str, str] | None = None) -> Path:
    """The folder holding etcd, kube-apiserver and kube-controller-manager.

    Looked up in order: `KUBEBUILDER_ASSETS` (the envtest convention; `setup-envtest use` prints it)
    when it holds all three; the link `.tools/control-plane` that `scripts/setup.sh` makes to its build
    (`hack/controlplane/build.sh`, which also completes envtest assets lacking a controller manager).

    Raises ControlPlaneError naming what is missing and how to get it.
    """
    environment = os.environ if environment is None else environment
    candidates: list[Path] = []
    assets = environment.get("KUBEBUILDER_ASSETS")
    if assets:
        candidates.append(Path(assets))
    candidates.append(REPO_TOOLS_LINK)
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in BINARIES):
            return folder.resolve()
    looked = ", ".join(str(folder) for folder in candidates)
    raise ControlPlaneError(
        f"no control-plane binaries ({', '.join(BINARIES)}) in {looked}; run `bash scripts/setup.sh` "
        "(it builds them from Go modules with hack/controlplane/build.sh), or point KUBEBUILDER_ASSETS "
        "at a folder holding them"
    )


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: be killed when the thread that started us ends (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class _Process:
    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            # A session of its own: stop() signals the whole group. And killed with the thread that
            # started it (Linux PR_SET_PDEATHSIG), so a test run that is itself killed leaves no
            # control plane behind.
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise ControlPlaneError(
                f"{self.name} exited with code {self.process.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-size:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGKILL: a throw-away component holds nothing worth a graceful shutdown (kube-apiserver's
        takes seconds), and its directory is removed next."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@dataclass
class ControlPlane:
    """etcd, kube-apiserver and kube-controller-manager on free loopback ports.

    >>> with ControlPlane(users={"operator": "token-1"}) as plane:
    ...     plane.write_kubeconfig(path)            # admin
    ...     plane.write_kubeconfig(other, "operator")

    `users` maps user names to bearer tokens (all in `system:authenticated`; RBAC decides the rest);
    `groups` adds groups per user. `extra_apiserver_args` are appended to kube-apiserver's command line
    (e.g. `--enable-admission-plugins=OwnerReferencesPermissionEnforcement`).
    """

    users: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    binaries: Path | None = None
    workdir: Path | None = None
    extra_apiserver_args: tuple[str, ...] = ()
    controller_manager: bool = True
    start_timeout: float = 90.0

    admin_token: str = field(init=False, default="")
    port: int = field(init=False, default=0)
    certificate: ServingCertificate | None = field(init=False, default=None)
    _processes: list[_Process] = field(init=False, default_factory=list)
    _own_workdir: bool = field(init=False, default=False)
    _audit_offset: int = field(init=False, default=0)
    _audit_records: list[RequestRecord] = field(init=False, default_factory=list)
    _audit_handle: IO[bytes] | None = field(init=False, default=None)
    _audit_partial: bytes = field(init=False, default=b"")
    _etcd_url: str = field(init=False, default="")
    _checkpoint: dict[str, str] | None = field(init=False, default=None)
    _controller_manager_token: str = field(init=False, default="")

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        binaries = self.binaries or find_binaries()
        missing = [name for name in BINARIES if not os.access(binaries / name, os.X_OK)]
        if missing:
            raise ControlPlaneError(
                f"{binaries} lacks {', '.join(missing)}; point KUBEBUILDER_ASSETS at a folder holding "
                f"{', '.join(BINARIES)}, or run `bash scripts/setup.sh` to build them"
            )
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="destinations-control-plane-"))
            self._own_workdir = True
        work = self.workdir
        work.mkdir(parents=True, exist_ok=True)
        try:
            self._start(binaries, work)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, binaries: Path, work: Path) -> None:
        self.admin_token = base64.b32encode(os.urandom(20)).decode().lower()
        self.certificate = make_serving_certificate(
            ["kube-apiserver", "localhost", "127.0.0.1", "kubernetes.default.svc"],
            ca_name="destinations-test-bed-ca",
        )
        cert, key, ca = self.certificate.write(work / "pki")
        service_account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (work / "pki" / "sa.key").write_bytes(
            service_account_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        (work / "pki" / "sa.pub").write_bytes(
            service_account_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        self._controller_manager_token = base64.b32encode(os.urandom(20)).decode().lower()
        token_lines = [
            f'{self.admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"',
            f'{self._controller_manager_token},{CONTROLLER_MANAGER_USER},{CONTROLLER_MANAGER_USER},"system:masters"',
        ]
        for index, (user, token) in enumerate(self.users.items()):
            groups = ",".join(self.groups.get(user, ()))
            token_lines.append(f"{token},{user},uid-{index}" + (f',"{groups}"' if groups else ""))
        tokens = work / "tokens.csv"
        tokens.write_text("\n".join(token_lines) + "\n", encoding="utf-8")
        tokens.chmod(0o600)
        audit_policy = work / "audit-policy.yaml"
        audit_policy.write_text(yaml.safe_dump(_AUDIT_POLICY), encoding="utf-8")
        (work / "logs").mkdir(exist_ok=True)

        etcd_port, etcd_peer_port = free_port(), free_port()
        self._etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd = _Process(
            "etcd",
            [
                str(binaries / "etcd"),
                "--data-dir", str(work / "etcd"),
                "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
                "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
                "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer_port}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer_port}",
                "--initial-cluster", f"default=http://127.0.0.1:{etcd_peer_port}",
                "--unsafe-no-fsync",  # a throw-away store: durability only costs time here
                # One member on loopback: it elects itself after one election timeout (1 s by default).
                "--heartbeat-interval", "10",
                "--election-timeout", "100",
                "--log-level", "warn",
            ],
            work / "logs" / "etcd.log",
        )  # fmt: skip
        self._processes.append(etcd)
        etcd.start()
        self._wait(lambda: _http_ok(f"http://127.0.0.1:{etcd_port}/health"), etcd, "etcd")

        self.port = free_port()
        apiserver = _Process(
            "kube-apiserver",
            [
                str(binaries / "kube-apiserver"),
                "--etcd-servers", f"http://127.0.0.1:{etcd_port}",
                "--bind-address", "127.0.0.1",
                "--advertise-address", "127.0.0.1",
                "--secure-port", str(self.port),
                "--tls-cert-file", str(cert),
                "--tls-private-key-file", str(key),
                "--client-ca-file", str(ca),
                "--token-auth-file", str(tokens),
                "--authorization-mode", "RBAC",
                "--service-cluster-ip-range", "10.0.0.0/24",
                "--service-account-issuer", f"https://127.0.0.1:{self.port}",
                "--service-account-key-file", str(work / "pki" / "sa.pub"),
                "--service-account-signing-key-file", str(work / "pki" / "sa.key"),
                "--allow-privileged=true",
                "--audit-policy-file", str(audit_policy),
                "--audit-log-path", str(work / "audit.log"),
                "--audit-log-format", "json",
                "--audit-log-mode", "blocking",
                "--kubelet-preferred-address-types", "InternalIP",
                "--endpoint-reconciler-type", "none",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--v", "1",
                *self.extra_apiserver_args,
            ],
            work / "logs" / "kube-apiserver.log",
        )  # fmt: skip
        self._processes.append(apiserver)
        apiserver.start()
        self._wait(lambda: self._ready(), apiserver, "kube-apiserver")

        if self.controller_manager:
            kubeconfig = self.write_kubeconfig(
                work / "controller-manager.kubeconfig", CONTROLLER_MANAGER_USER
            )
            controller_manager = _Process(
                "kube-controller-manager",
                [
                    str(binaries / "kube-controller-manager"),
                    "--kubeconfig", str(kubeconfig),
                    "--controllers", ",".join(_CONTROLLERS),
                    "--service-account-private-key-file", str(work / "pki" / "sa.key"),
                    "--root-ca-file", str(ca),
                    "--leader-elect=false",
                    "--secure-port", "0",
                    "--concurrent-gc-syncs", "5",
                    "--v", "1",
                ],
                work / "logs" / "kube-controller-manager.log",
            )  # fmt: skip
            self._processes.append(controller_manager)
            controller_manager.start()
            # Pods need their namespace's `default` ServiceAccount; its controller making the first
            # one says the controller manager is up.
            self._wait(
                lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
                controller_manager,
                "kube-controller-manager",
            )

    def _wait(self, ready: Any, process: _Process, what: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            process.check_alive()
            with contextlib.suppress(OSError, ValueError):
                if ready():
                    return
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"{what} was not ready after {self.start_timeout:.0f} s:\n{process.log_tail()}"
                )
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            return self._request("GET", "/readyz") is not None
        except urllib.error.HTTPError:
            return False

    def stop(self) -> None:
        """Stop every process (the API server first, etcd last) and remove the working directory."""
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()
        if self._audit_handle is not None:
            self._audit_handle.close()
            self._audit_handle = None
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- access ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_pem(self) -> bytes:
        assert self.certificate is not None, "the control plane is not started"
        return self.certificate.ca_pem

    def ssl_context(self) -> ssl.SSLContext:
        assert self.certificate is not None, "the control plane is not started"
        return self.certificate.client_context()

    def token_for(self, user: str) -> str:
        if user == ADMIN_USER:
            return self.admin_token
        if user == CONTROLLER_MANAGER_USER:
            return self._controller_manager_token
        if user not in self.users:
            raise KeyError(f"no such test-bed user: {user}")
        return self.users[user]

    def write_kubeconfig(self, path: Path, user: str = ADMIN_USER, namespace: str = "default") -> Path:
        from ._sandbox import render_kubeconfig

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            render_kubeconfig(self.url, user, self.token_for(user), self.ca_pem, namespace), encoding="utf-8"
        )
        path.chmod(0o600)
        return path

    def logs(self) -> dict[str, str]:
        """Each component's log (tail), for failure messages."""
        return {process.name: process.log_tail() for process in self._processes}

    def _request(self, method: str, path: str, body: Json | None = None) -> Json | None:
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.admin_token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=self.ssl_context(), timeout=10) as response:
            text = response.read().decode()
        try:
            result: Json = json.loads(text)
            return result
        except ValueError:
            return {"text": text}

    def _get(self, path: str) -> Json | None:
        try:
            return self._request("GET", path)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    # --- rewinding to a checkpoint -------------------------------------------------------------

    def checkpoint(self) -> None:
        """Remember the cluster's objects as they are now, for `rewind()`."""
        self._checkpoint = self._etcd_objects()

    def rewind(self) -> None:
        """Put every object back as it was at `checkpoint()`: what was created since is gone at once
        (no finalizers, no graceful deletion) and what was changed or deleted is restored. Leases
        are left as they are (the components renew them); so is the request log.

        It works on etcd's key space under kube-apiserver (through etcd's JSON gateway), as `etcdctl`
        would; kube-apiserver and kube-controller-manager see the changes through their watches like
        any other. Raises `ControlPlaneError` without a checkpoint or when etcd refuses.
        """
        if self._checkpoint is None:
            raise ControlPlaneError("rewind() needs a checkpoint() first")
        saved = self._checkpoint
        current = self._etcd_objects()
        operations: list[Json] = [
            {"request_delete_range": {"key": key}} for key in current.keys() - saved.keys()
        ]
        operations += [
            {"request_put": {"key": key, "value": value}}
            for key, value in saved.items()
            if current.get(key) != value
        ]
        for start in range(0, len(operations), 100):  # etcd's default --max-txn-ops is 128
            self._etcd("/v3/kv/txn", {"success": operations[start : start + 100]})
        if operations:
            # A consistent list waits for kube-apiserver's watch cache to reach etcd's revision.
            self._request("GET", "/api/v1/namespaces")

    _REWIND_SKIPS = ("/registry/leases/", "/registry/masterleases/")

    def _etcd_objects(self) -> dict[str, str]:
        """{key: value} of every object under /registry/ but leases, base64-encoded as etcd gives them."""
        prefix = "/registry/"
        answer = self._etcd(
            "/v3/kv/range",
            {"key": _b64(prefix), "range_end": _b64(prefix[:-1] + chr(ord(prefix[-1]) + 1))},
        )
        return {
            kv["key"]: kv.get("value", "")
            for kv in answer.get("kvs") or []
            if not base64.b64decode(kv["key"]).decode(errors="replace").startswith(self._REWIND_SKIPS)
        }

    def _etcd(self, path: str, body: Json) -> Json:
        request = urllib.request.Request(
            self._etcd_url + path,
            method="POST",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                result: Json = json.loads(response.read())
        except (OSError, ValueError) as error:
            raise ControlPlaneError(f"etcd {path}: {error}") from error
        return result

    # --- the audit log as a request log ------------------------------------------------------

    def request_records(self) -> list[RequestRecord]:
        """Every request the API server has answered so far, oldest first (from its audit log)."""
        assert self.workdir is not None
        path = self.workdir / "audit.log"
        if self._audit_handle is None:
            if not path.exists():
                return list(self._audit_records)
            self._audit_handle = path.open("rb")
        data = self._audit_partial + self._audit_handle.read()
        lines = data.split(b"\n")
        self._audit_partial = lines.pop()
        self._audit_records.extend(record for line in lines if line for record in _audit_record(line))
        return list(self._audit_records)

    def reset_request_records(self) -> None:
        self.request_records()
        self._audit_records.clear()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _audit_record(line: bytes) -> Iterator[RequestRecord]:
    event = json.loads(line)
    if event.get("stage") != "ResponseComplete":
        return
    target = event.get("objectRef") or {}
    verb, subresource = str(event.get("verb", "")), str(target.get("subresource", ""))
    # The audit log names the object a create makes; the authorizer (and the emulator's request log)
    # sees a create of a collection, without a name.
    name = "" if verb == "create" and not subresource else str(target.get("name", ""))
    yield RequestRecord(
        time=str(event.get("stageTimestamp", "")),
        user=str((event.get("user") or {}).get("username", "")),
        verb=verb,
        api_group=str(target.get("apiGroup", "")),
        api_version=str(target.get("apiVersion", "")),
        resource=str(target.get("resource", "")),
        subresource=subresource,
        namespace=str(target.get("namespace", "")),
        name=name,
        code=int((event.get("responseStatus") or {}).get("code", 0)),
        path=str(event.get("requestURI", "")).split("?", 1)[0],
    )


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return int(response.status) == 200
