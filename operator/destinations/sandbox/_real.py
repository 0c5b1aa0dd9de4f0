"""The sandbox on a real control plane: etcd, kube-apiserver and kube-controller-manager, plus the
project's kubelet (`RemoteNode`) running sync pods as local processes.

`RealSandboxServer` offers what `SandboxServer` offers to `Sandbox` and `destinations sandbox` (URL,
tokens, kubeconfigs, the request log, the kubelet, applying manifests), so a test or the demo chooses
its backend with one option (`SandboxConfig.control_plane`). The request log comes from the API
server's audit log. What only the emulator can do (fault injection, in-process admission hooks,
webhook service addresses, reading its store) raises `EmbeddedOnly` naming the feature.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import socket
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from ._controlplane import ADMIN_USER, ControlPlane, ControlPlaneError
from ._errors import ApiError
from ._kubelet import Kubelet
from ._node import RemoteNode
from ._requestlog import RequestRecord

Json = dict[str, Any]
NODE_NAME = "sandbox-node"
KUBELET_USER = f"system:node:{NODE_NAME}"


def host_address() -> str:
    """This machine's own IPv4 address (not loopback): where a route to the outside would leave from."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent for a UDP connect
            address = str(probe.getsockname()[0])
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        raise ControlPlaneError(
            "the real control plane routes webhook Services to this machine's own address, and it has "
            "none but loopback"
        )
    return address


class AuditRequestLog:
    """The request log of a real API server, read from its audit log (same records as the emulator's)."""

    def __init__(self, control_plane: ControlPlane) -> None:
        self._control_plane = control_plane

    def records(self) -> list[RequestRecord]:
        return self._control_plane.request_records()

    def clear(self) -> None:
        self._control_plane.reset_request_records()

    def close(self) -> None:
        return None


def new_control_plane(config: Any, workdir: Path | None = None) -> ControlPlane:
    """The control plane, not started, that a real sandbox with `config` (a `SandboxConfig`) runs.

    It has the config's users and their groups, the kubelet's own identity (a random token), and the
    API server arguments the sandbox needs plus the config's. Start it once (`ControlPlane.start`) and
    hand it to sandboxes one after another as `SandboxConfig.real_control_plane` (with
    `ControlPlane.checkpoint()`/`rewind()` in between, each starts from the same cluster).
    """
    return ControlPlane(
        # The kubelet has an identity of its own, as a real one (system:node:<name>), so the request
        # log tells its calls apart from the tests' and the operator's.
        users={**config.users, KUBELET_USER: secrets.token_hex(16)},
        workdir=workdir,
        groups={
            **{user: tuple(groups) for user, groups in config.user_groups.items()},
            KUBELET_USER: ("system:nodes", "system:masters"),
        },
        extra_apiserver_args=("--enable-aggregator-routing=true", *config.apiserver_args),
    )


class RealSandboxServer:
    """A real control plane and the sandbox kubelet, in the caller's event loop.

    With `config.real_control_plane` (a started `new_control_plane(config)`), that one is used instead
    of starting one; it stays the caller's: stopping the sandbox leaves it running.
    """

    def __init__(self, config: Any) -> None:
        self.config = config
        self.workdir_root = Path(tempfile.mkdtemp(prefix="destinations-real-sandbox-"))
        given: ControlPlane | None = config.real_control_plane
        self._start_control_plane = given is None
        self.control_plane = given or new_control_plane(config, self.workdir_root / "control-plane")
        self.kubelet_token = self.control_plane.token_for(KUBELET_USER)
        self.request_log = AuditRequestLog(self.control_plane)
        self.kubelet: Kubelet | None = None
        self._session: aiohttp.ClientSession | None = None

    # --- what Sandbox and the command use ------------------------------------------------------

    @property
    def url(self) -> str:
        return self.control_plane.url

    @property
    def port(self) -> int:
        return self.control_plane.port

    @property
    def ca_pem(self) -> bytes | None:
        return self.control_plane.ca_pem

    @property
    def admin_token(self) -> str:
        return self.control_plane.admin_token

    def ssl_context(self) -> ssl.SSLContext | None:
        return self.control_plane.ssl_context()

    async def start(self) -> None:
        # Started from this (the sandbox's) thread, not an executor's: the components die with the
        # thread that started them (see _controlplane), and this one lives as long as the sandbox.
        if self._start_control_plane:
            self.control_plane.start()
        try:
            await self._start_on_control_plane()
        except BaseException:
            await self.stop()
            raise

    async def _start_on_control_plane(self) -> None:
        from ._sandbox import default_crds_dir, load_manifests

        crds_dir = self.config.crds_dir or (default_crds_dir() if self.config.install_repo_crds else None)
        if crds_dir is not None:
            await self.install_manifests(load_manifests(crds_dir), kinds={"CustomResourceDefinition"})
        if self.config.kubelet:
            workdir = self.config.workdir or self.workdir_root / "kubelet"
            self.kubelet = Kubelet(
                RemoteNode(self.url, self.kubelet_token, self.ssl_context()),
                node_name=NODE_NAME,
                image=self.config.image,
                workdir=Path(workdir),
                extra_env=dict(self.config.pod_env),
                inherit_env=self.config.pod_inherit_env,
                api_port=self.port,
            )
            await self.kubelet.start()
        if self.config.kubeconfig_path is not None:
            self.write_kubeconfig(self.config.kubeconfig_path)

    def write_kubeconfig(self, path: Path, user: str = ADMIN_USER) -> Path:
        return self.control_plane.write_kubeconfig(path, user)

    async def stop(self) -> None:
        if self.kubelet is not None:
            await self.kubelet.stop()
        if self._session is not None:
            await self._session.close()
        if self._start_control_plane:
            await asyncio.get_running_loop().run_in_executor(None, self.control_plane.stop)
        shutil.rmtree(self.workdir_root, ignore_errors=True)

    # --- applying manifests over HTTP ----------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self.admin_token}"},
                connector=aiohttp.TCPConnector(ssl=self.ssl_context() or False),
            )
        return self._session

    async def request(self, method: str, path: str, body: Json | None = None) -> Json:
        async with self.session.request(
            method,
            self.url + path,
            data=None if body is None else json.dumps(body),
            headers={"Content-Type": "application/json"},
        ) as response:
            text = await response.text()
            payload: Json = json.loads(text) if text else {}
            if response.status >= 300:
                raise ApiError(response.status, str(payload.get("reason", "")), str(payload.get("message")))
            return payload

    async def _resource_path(self, document: Json) -> tuple[str, bool]:
        """The collection path of a manifest's kind, from discovery (`/api/v1`, `/apis/<g>/<v>`)."""
        api_version = str(document.get("apiVersion", ""))
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        listing = await self.request("GET", base)
        for resource in listing.get("resources") or []:
            if resource.get("kind") == document.get("kind") and "/" not in resource["name"]:
                return f"{base}/{resource['name']}", bool(resource.get("namespaced"))
        raise LookupError(f"no resource for {api_version} {document.get('kind')}")

    async def apply(self, document: Json) -> Json:
        """Create an object, or replace it when it exists (a small stand-in for `kubectl apply`)."""
        collection, namespaced = await self._resource_path(document)
        meta = document.get("metadata") or {}
        if namespaced:
            namespace = meta.get("namespace", "default")
            prefix, _, plural = collection.rpartition("/")
            collection = f"{prefix}/namespaces/{namespace}/{plural}"
        try:
            return await self.request("POST", collection, document)
        except ApiError as error:
            if error.code != 409:
                raise
        existing = await self.request("GET", f"{collection}/{meta['name']}")
        merged = {
            **document,
            "metadata": {**meta, "resourceVersion": existing["metadata"]["resourceVersion"]},
        }
        return await self.request("PUT", f"{collection}/{meta['name']}", merged)

    async def install_manifests(self, documents: list[Json], kinds: set[str] | None = None) -> None:
        for document in documents:
            if kinds is None or document.get("kind") in kinds:
                await self.apply(document)
        for document in documents:
            if document.get("kind") == "CustomResourceDefinition" and (
                kinds is None or "CustomResourceDefinition" in kinds
            ):
                await self._wait_established(document["metadata"]["name"])

    async def _wait_established(self, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            crd = await self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conditions = (crd.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"CustomResourceDefinition {name} was not Established after {timeout} s")
            await asyncio.sleep(0.1)

    async def route_service(self, namespace: str, name: str, address: str | None) -> None:
        """Make Service `namespace/name` (port 443, as webhook configurations use) lead to `address`.

        kube-apiserver reaches webhooks through their Service; with `--enable-aggregator-routing` it
        picks an endpoint of the Service instead of its cluster IP, which nothing routes here. Endpoint
        addresses may not be loopback ones, so the endpoint is this machine's own address on the port
        of `address` (servers listening on all interfaces, as the operator's webhook server does).
        `None` removes the endpoints.
        """
        await self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        port = int(address.rsplit(":", 1)[1]) if address else 9443
        await self.apply(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port, "protocol": "TCP"}]},
            }
        )
        addresses = [host_address()] if address else []
        await self.apply(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-sandbox",
                    "namespace": namespace,
                    "labels": {"kubernetes.io/service-name": name},
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": addresses, "conditions": {"ready": True}}] if addresses else [],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            }
        )

    async def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> Json | None:
        collection, namespaced = await self._resource_path({"apiVersion": api_version, "kind": kind})
        if namespaced:
            prefix, _, plural = collection.rpartition("/")
            collection = f"{prefix}/namespaces/{namespace}/{plural}"
        try:
            return await self.request("GET", f"{collection}/{name}")
        except ApiError as error:
            if error.code == 404:
                return None
            raise
