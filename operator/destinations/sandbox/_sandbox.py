"""Assembling and running a sandbox: in the current event loop, or in a background thread for tests.

`SandboxServer` wires the store, the API semantics, the controllers, the kubelet and the HTTP server
together and runs them in the caller's event loop (the `destinations sandbox` command does that).
`Sandbox` runs a `SandboxServer` in a thread with its own loop, so synchronous tests and scripts can
start one in a line, point kubectl, kopf or the operator at its kubeconfig, and inspect it.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import secrets
import shutil
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from destinations import DEFAULT_IMAGE

from ._cluster import CRD_KEY, AdmissionHook, Caller, Cluster, Options
from ._controllers import Controllers
from ._controlplane import ControlPlane
from ._faults import Faults
from ._kubelet import Kubelet
from ._node import EmbeddedNode
from ._real import RealSandboxServer
from ._requestlog import RequestLog, RequestRecord
from ._resources import Registry
from ._server import ApiServer
from ._store import Store
from ._tls import certificates

Json = dict[str, Any]
T = TypeVar("T")

ADMIN_USER = "sandbox-admin"
#: The repository's `crds/` directory, when running from a checkout.
REPO_CRDS = Path(__file__).resolve().parents[3] / "crds"


class EmbeddedOnly(RuntimeError):
    """A sandbox feature that only the embedded emulator has (fault injection, reading its store…)."""


def default_crds_dir() -> Path | None:
    return REPO_CRDS if REPO_CRDS.is_dir() else None


@dataclass
class SandboxConfig:
    """How to run a sandbox; every field has a default good for tests."""

    port: int = 0
    kubeconfig_path: Path | None = None
    #: CRD manifests installed at start-up; None: the repository's `crds/` if present.
    crds_dir: Path | None = None
    install_repo_crds: bool = True
    faults: str | None = None
    image: str = DEFAULT_IMAGE
    request_log_path: Path | None = None
    #: Where pods' files and logs live; None: a temporary directory removed on stop.
    workdir: Path | None = None
    kubelet: bool = True
    bookmark_interval: float = 60.0
    #: Changes kept per resource for watch resumption; older resourceVersions get 410 Gone.
    history_size: int = 5000
    #: Extra users as {username: token}; the admin user `sandbox-admin` always exists.
    users: Mapping[str, str] = field(default_factory=dict)
    #: Environment variables added to every pod's processes (e.g. fake provider endpoints in tests).
    pod_env: Mapping[str, str] = field(default_factory=dict)
    #: Start pod processes with this process' environment (off: a clean, container-like environment).
    pod_inherit_env: bool = False
    #: Serve HTTPS (kubectl only sends credentials over TLS); plain http is for benchmarks and curl.
    tls: bool = True
    #: Where admission webhooks' Services listen locally: {"<namespace>/<name>": "127.0.0.1:9443"}
    #: (service references cannot resolve outside a cluster; see `_webhooks`).
    webhook_services: Mapping[str, str] = field(default_factory=dict)
    #: `embedded`: the in-process API emulator; `real`: etcd, kube-apiserver and
    #: kube-controller-manager built from Go modules (see `_controlplane`), the test bed of record.
    control_plane: str = "embedded"
    #: Extra kube-apiserver arguments (real control plane only).
    apiserver_args: tuple[str, ...] = ()
    #: Groups of the `users` (real control plane only: the emulator authorizes every authenticated
    #: user, a real API server asks RBAC, so e.g. {"alice": ("system:masters",)}).
    user_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: A real control plane already started (`new_control_plane(config)` then `.start()`), used
    #: instead of starting one (real control plane only). It stays the caller's: the sandbox leaves
    #: it running. Its components die with the thread that started them (see `_controlplane`).
    real_control_plane: ControlPlane | None = None


def render_kubeconfig(
    url: str, user: str, token: str, ca_pem: bytes | None, namespace: str = "default"
) -> str:
    cluster: Json = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": "sandbox", "context": {"cluster": "sandbox", "user": user, "namespace": namespace}}
        ],
        "current-context": "sandbox",
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


#: libyaml's parser where PyYAML was built with it (4x faster on the CRDs), else the Python one.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_manifests_read: dict[tuple[tuple[str, int, int], ...], list[Json]] = {}


def load_manifests(directory: Path) -> list[Json]:
    """Every mapping document of the YAML and JSON files under `directory`, in path order.

    Every sandbox installs the repository's CRDs when it starts; they are parsed once per process
    while the files stay unchanged (path, size and modification time), and each caller gets its copy.
    """
    paths = sorted([*directory.rglob("*.yaml"), *directory.rglob("*.yml"), *directory.rglob("*.json")])
    key = tuple((str(path), (stat := path.stat()).st_mtime_ns, stat.st_size) for path in paths)
    if key not in _manifests_read:
        documents: list[Json] = []
        for path in paths:
            for document in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER):
                if isinstance(document, dict):
                    documents.append(document)
        if len(_manifests_read) > 8:
            _manifests_read.clear()
        _manifests_read[key] = documents
    return copy.deepcopy(_manifests_read[key])


class SandboxServer:
    """A sandbox cluster running in the current event loop."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.store = Store(history_size=self.config.history_size)
        self.registry = Registry()
        self.cluster = Cluster(self.store, self.registry)
        self.controllers = Controllers(self.cluster)
        self.cluster.webhooks.service_addresses.update(self.config.webhook_services)
        self.request_log = RequestLog(path=self.config.request_log_path)
        self.admin_token = f"sandbox-{secrets.token_hex(16)}"
        self.tokens: dict[str, Caller] = {
            self.admin_token: Caller(ADMIN_USER, ("system:masters", "system:authenticated"))
        }
        for username, token in self.config.users.items():
            self.tokens[token] = Caller(username, ("system:authenticated",))
        self.api = ApiServer(
            self.cluster,
            self.request_log,
            Faults.parse(self.config.faults),
            self.tokens,
            bookmark_interval=self.config.bookmark_interval,
        )
        self.kubelet: Kubelet | None = None
        self._runner: web.AppRunner | None = None
        self._temporary_workdir: Path | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.config.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_pem(self) -> bytes | None:
        return certificates().ca_pem if self.config.tls else None

    def ssl_context(self) -> ssl.SSLContext | None:
        return certificates().client_context() if self.config.tls else None

    async def start(self) -> None:
        await self.cluster.bootstrap()
        crds_dir = self.config.crds_dir or (default_crds_dir() if self.config.install_repo_crds else None)
        if crds_dir is not None:
            await self.install_manifests(load_manifests(crds_dir), kinds={"CustomResourceDefinition"})
        self._runner = web.AppRunner(self.api.application(), access_log=None, handle_signals=False)
        await self._runner.setup()
        ssl_context = certificates().server_context() if self.config.tls else None
        site = web.TCPSite(
            self._runner, "127.0.0.1", self.config.port, reuse_address=True, ssl_context=ssl_context
        )
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.config.port
        self.api.server_address = f"127.0.0.1:{self.port}"
        if self.config.kubelet:
            workdir = self.config.workdir
            if workdir is None:
                workdir = self._temporary_workdir = Path(tempfile.mkdtemp(prefix="destinations-sandbox-"))
            self.kubelet = Kubelet(
                EmbeddedNode(self.cluster),
                image=self.config.image,
                workdir=workdir,
                extra_env=dict(self.config.pod_env),
                inherit_env=self.config.pod_inherit_env,
                api_port=self.port,
            )
            self.api.log_reader = self.kubelet.logs
            self.api.evictor = self.kubelet.evict
            await self.kubelet.start()
        if self.config.kubeconfig_path is not None:
            self.write_kubeconfig(self.config.kubeconfig_path)

    def write_kubeconfig(self, path: Path, user: str = ADMIN_USER) -> Path:
        token = next((t for t, caller in self.tokens.items() if caller.username == user), None)
        if token is None:
            raise KeyError(f"no such sandbox user: {user}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_kubeconfig(self.url, user, token, self.ca_pem), encoding="utf-8")
        path.chmod(0o600)
        return path

    async def install_manifests(self, documents: list[Json], kinds: set[str] | None = None) -> None:
        """Create (or replace) objects as the system would, e.g. the CRDs of `crds/` at start-up."""
        for document in documents:
            if kinds is not None and document.get("kind") not in kinds:
                continue
            await self.apply(document)

    async def apply(self, document: Json) -> Json:
        """Create an object, or update it when it exists; a small server-side stand-in for `kubectl apply`."""
        api_version = str(document.get("apiVersion", ""))
        group, _, version = api_version.rpartition("/")
        resource_type = next(
            (
                rt
                for rt in self.registry
                if rt.group == group and rt.version == version and rt.kind == document.get("kind")
            ),
            None,
        )
        if resource_type is None:
            raise LookupError(f"no resource for {api_version} {document.get('kind')}")
        meta = document.get("metadata") or {}
        namespace = meta.get("namespace", "default") if resource_type.namespaced else ""
        existing = self.store.get(resource_type.storage_key, namespace, meta.get("name", ""))
        if existing is None:
            return await self.cluster.create(resource_type, namespace, document, Options())
        merged = {
            **document,
            "metadata": {**meta, "resourceVersion": existing["metadata"]["resourceVersion"]},
        }
        if resource_type.storage_key == CRD_KEY or resource_type.unconditional_update or resource_type.custom:
            return await self.cluster.update(resource_type, namespace, meta["name"], merged, Options())
        return existing

    async def stop(self) -> None:
        self.api.close_watches()
        if self.kubelet is not None:
            await self.kubelet.stop()
        await self.controllers.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        self.request_log.close()
        if self._temporary_workdir is not None:
            shutil.rmtree(self._temporary_workdir, ignore_errors=True)


class Sandbox:
    """A sandbox running in a background thread: the entry point for tests and scripts.

    >>> with Sandbox(kubeconfig_path=tmp / "kubeconfig") as sandbox:
    ...     subprocess.run(["kubectl", "--kubeconfig", str(sandbox.kubeconfig_path), "get", "ns"])
    """

    def __init__(self, config: SandboxConfig | None = None, **overrides: Any) -> None:
        config = config or SandboxConfig()
        for name, value in overrides.items():
            if not hasattr(config, name):
                raise TypeError(f"unknown sandbox option {name!r}")
            setattr(
                config,
                name,
                Path(value) if name.endswith(("_path", "_dir", "workdir")) and value is not None else value,
            )
        self.config = config
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: SandboxServer | RealSandboxServer | None = None
        self._own_kubeconfig_dir: Path | None = None

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self.config.kubeconfig_path is None:
            self._own_kubeconfig_dir = Path(tempfile.mkdtemp(prefix="sandbox-kubeconfig-"))
            self.config.kubeconfig_path = self._own_kubeconfig_dir / "kubeconfig"
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._server = (
                    RealSandboxServer(self.config)
                    if self.config.control_plane == "real"
                    else SandboxServer(self.config)
                )
                self._loop.run_until_complete(self._server.start())
            except BaseException as error:  # reported to the starting thread
                failure.append(error)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="sandbox", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._server is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop).result(30)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()
        self._loop = None
        if self._own_kubeconfig_dir is not None:
            shutil.rmtree(self._own_kubeconfig_dir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- access ------------------------------------------------------------------------------

    @property
    def server(self) -> SandboxServer | RealSandboxServer:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return self._server

    @property
    def control_plane(self) -> str:
        """`embedded` (the API emulator) or `real` (kube-apiserver built from Go modules)."""
        return self.config.control_plane

    def _embedded(self, what: str) -> SandboxServer:
        server = self.server
        if not isinstance(server, SandboxServer):
            raise EmbeddedOnly(f"{what} needs the embedded control plane (this sandbox runs a real one)")
        return server

    def call(
        self, function: Callable[[], Coroutine[Any, Any, T]] | Coroutine[Any, Any, T], timeout: float = 60
    ) -> T:
        """Run a coroutine in the sandbox's loop (where all its state lives) and return its result."""
        assert self._loop is not None
        coroutine = function() if callable(function) else function
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _in_loop(self, function: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return function()

        return self.call(wrapper)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def kubeconfig_path(self) -> Path:
        assert self.config.kubeconfig_path is not None
        return self.config.kubeconfig_path

    @property
    def token(self) -> str:
        return self.server.admin_token

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client SSL context trusting the sandbox's CA (None when serving plain http)."""
        return self.server.ssl_context()

    @property
    def ca_path(self) -> Path | None:
        """The CA certificate (PEM) that verifies the sandbox's HTTPS certificate, for non-kubectl clients."""
        ca_pem = self.server.ca_pem
        if ca_pem is None:
            return None
        path = self.kubeconfig_path.with_name(self.kubeconfig_path.name + ".ca.crt")
        if not path.exists():
            path.write_bytes(ca_pem)
        return path

    def kubeconfig_for(self, user: str, path: Path) -> Path:
        """Write a kubeconfig authenticating as another configured user (see `users`)."""
        return self.server.write_kubeconfig(path, user)

    @property
    def request_log(self) -> list[RequestRecord]:
        return self.server.request_log.records()

    def reset_request_log(self) -> None:
        self.server.request_log.clear()

    def set_faults(self, spec: str | None) -> None:
        """Change fault injection while running (`None` or "" switches it off)."""
        faults = Faults.parse(spec)
        server = self._embedded("fault injection")
        self._in_loop(lambda: setattr(server.api, "faults", faults))

    def evict_pod(
        self, namespace: str, name: str, message: str = "The node was low on resource: memory. "
    ) -> None:
        """Kill a running pod and mark it Failed with reason Evicted, as node-pressure eviction does."""
        kubelet = self.server.kubelet
        if kubelet is None:
            raise RuntimeError("the sandbox runs without a kubelet")
        self.call(kubelet.evict(namespace, name, message))

    def add_admission_hook(self, hook: AdmissionHook) -> None:
        """Run `hook` on every create, update and delete (it runs in the sandbox's loop)."""
        server = self._embedded("in-process admission hooks")
        self._in_loop(lambda: server.cluster.admission_hooks.append(hook))

    def set_webhook_service(self, namespace: str, name: str, address: str | None) -> None:
        """Send webhook calls for Service `namespace/name` to `address` ("host:port"); None forgets it.

        The TLS server name checked stays `<name>.<namespace>.svc`, as kube-apiserver checks it.
        """
        if isinstance(self.server, RealSandboxServer):
            self.call(self.server.route_service(namespace, name, address))
            return
        server = self._embedded("webhook service addresses")

        def change() -> None:
            addresses = server.cluster.webhooks.service_addresses
            if address is None:
                addresses.pop(f"{namespace}/{name}", None)
            else:
                addresses[f"{namespace}/{name}"] = address

        self._in_loop(change)

    def apply(self, document: Json) -> Json:
        """Create or update an object directly (no HTTP, not in the request log)."""
        return self.call(self.server.apply(document))

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> Json | None:
        """Read an object directly from the store (over HTTP on a real control plane), or None."""
        if isinstance(self.server, RealSandboxServer):
            return self.call(self.server.get(api_version, kind, name, namespace))
        server = self._embedded("reading the store")
        group, _, version = api_version.rpartition("/")

        def read() -> Json | None:
            for resource_type in server.registry:
                if (
                    resource_type.group == group
                    and resource_type.version == version
                    and resource_type.kind == kind
                ):
                    return server.store.get(
                        resource_type.storage_key, namespace if resource_type.namespaced else "", name
                    )
            return None

        return self._in_loop(read)

    def object_count(self) -> int:
        return self._in_loop(self._embedded("counting stored objects").store.count)

    def settle(self) -> None:
        """Wait until the garbage collector and namespace cleanup have nothing in flight."""
        self.call(self._embedded("settling the controllers").controllers.idle())


def run_coroutine(awaitable: Awaitable[T]) -> T:  # pragma: no cover - convenience for scripts
    async def wrapper() -> T:
        return await awaitable

    return asyncio.run(wrapper())
