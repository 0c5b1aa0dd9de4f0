"""What the sandbox kubelet needs from an API server, for both backends.

The kubelet (`_kubelet`) plays a node against either the embedded emulator (`EmbeddedNode`: direct
calls into the in-process `Cluster`) or any real kube-apiserver (`RemoteNode`: the HTTP API, as a
real kubelet uses it). Both offer the same small surface:

- `pod(namespace, name)`: the current pod from a local cache (a real kubelet reads its pod manager,
  fed by a watch; the emulator's store is that cache);
- `bind`, `put_status`, `create_event`, `delete_now`: the node's writes;
- `lookup(namespace)`: Secrets and ConfigMaps for volumes and environment variables;
- `subscribe(on_change, on_graceful_delete)`: pod changes (ADDED/MODIFIED/DELETED) and graceful
  deletions (a pod bound to a node gets a deletionTimestamp; the kubelet stops it, then deletes it).

`RemoteNode` also registers the Node object and serves the kubelet endpoint the API server proxies
`kubectl logs` to (`GET /containerLogs/{namespace}/{pod}/{container}`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from destinations.certificates import make_serving_certificate

from . import _objects
from ._cluster import POD_KEY, Cluster, Options
from ._errors import ApiError
from ._store import Change

Json = dict[str, Any]
Lookup = Callable[[str, str], Json | None]
ChangeHandler = Callable[[str, Json], None]
DeleteHandler = Callable[[Json], None]
LogReader = Callable[[str, str, dict[str, str]], Awaitable[AsyncIterator[bytes]]]

logger = logging.getLogger(__name__)


class NodeApi(Protocol):
    def pod(self, namespace: str, name: str) -> Json | None: ...

    async def bind(self, namespace: str, name: str, uid: str, node_name: str) -> bool: ...

    async def put_status(self, namespace: str, name: str, pod: Json) -> None: ...

    async def create_event(self, namespace: str, event: Json) -> None: ...

    async def delete_now(self, namespace: str, name: str, uid: str) -> None: ...

    async def lookup(self, namespace: str) -> Lookup: ...

    def subscribe(self, on_change: ChangeHandler, on_graceful_delete: DeleteHandler) -> None: ...

    async def start(self, node_name: str, log_reader: LogReader) -> None: ...

    async def stop(self) -> None: ...


class EmbeddedNode:
    """The embedded emulator: the kubelet calls the in-process cluster directly."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        pods = cluster.registry.lookup("", "v1", "pods")
        events = cluster.registry.lookup("", "v1", "events")
        assert pods is not None and events is not None
        self._pods, self._events = pods, events

    def pod(self, namespace: str, name: str) -> Json | None:
        return self.cluster.store.get(POD_KEY, namespace, name)

    async def bind(self, namespace: str, name: str, uid: str, node_name: str) -> bool:
        pod = self.pod(namespace, name)
        if pod is None or pod["metadata"].get("uid") != uid:
            return False
        bound = {**pod, "spec": {**pod["spec"], "nodeName": node_name}}
        try:
            await self.cluster.update(self._pods, namespace, name, bound)
        except ApiError:
            return False
        return True

    async def put_status(self, namespace: str, name: str, pod: Json) -> None:
        await self.cluster.update(self._pods, namespace, name, pod, subresource="status")

    async def create_event(self, namespace: str, event: Json) -> None:
        with contextlib.suppress(ApiError):  # the namespace is going away: events do not matter any more
            await self.cluster.create(self._events, namespace, event)

    async def delete_now(self, namespace: str, name: str, uid: str) -> None:
        with contextlib.suppress(ApiError):
            await self.cluster.delete(
                self._pods,
                namespace,
                name,
                {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}},
                Options(),
            )

    async def lookup(self, namespace: str) -> Lookup:
        def lookup(plural: str, name: str) -> Json | None:
            return self.cluster.store.get(("", plural), namespace, name)

        return lookup

    def subscribe(self, on_change: ChangeHandler, on_graceful_delete: DeleteHandler) -> None:
        def listener(change: Change) -> None:
            if change.key == POD_KEY:
                on_change(change.type, change.obj)

        self.cluster.store.add_listener(listener)
        self.cluster.pod_kill_requested = on_graceful_delete

    async def start(self, node_name: str, log_reader: LogReader) -> None:
        return None  # the emulator serves logs itself (ApiServer.log_reader)

    async def stop(self) -> None:
        return None


class RemoteNode:
    """A real API server, over HTTP: list+watch of pods into a cache, writes as a kubelet makes them.

    Authenticates with a bearer token of a user allowed to bind pods, write pod status, create
    Events, delete pods and read Secrets and ConfigMaps (the test bed's admin).
    """

    def __init__(self, url: str, token: str, ssl_context: ssl.SSLContext | None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.ssl_context = ssl_context
        self._pods: dict[tuple[str, str], Json] = {}
        self._on_change: ChangeHandler | None = None
        self._on_graceful_delete: DeleteHandler | None = None
        self._session: aiohttp.ClientSession | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._node_name = ""
        self.kubelet_port = 0

    # --- HTTP --------------------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self.token}"},
                connector=aiohttp.TCPConnector(ssl=self.ssl_context if self.ssl_context else False),
            )
        return self._session

    async def _call(self, method: str, path: str, body: Json | None = None) -> Json:
        async with self.session.request(
            method,
            self.url + path,
            data=None if body is None else json.dumps(body),
            headers={"Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response:
            text = await response.text()
            if response.status >= 300:
                try:
                    status = json.loads(text)
                except ValueError:
                    status = {"message": text}
                raise ApiError(
                    response.status, str(status.get("reason", "")), str(status.get("message", text))
                )
            result: Json = json.loads(text) if text else {}
            return result

    # --- NodeApi -----------------------------------------------------------------------------

    def pod(self, namespace: str, name: str) -> Json | None:
        return self._pods.get((namespace, name))

    async def bind(self, namespace: str, name: str, uid: str, node_name: str) -> bool:
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        try:
            await self._call("POST", f"/api/v1/namespaces/{namespace}/pods/{name}/binding", binding)
        except ApiError as error:
            logger.info("binding %s/%s failed: %s", namespace, name, error)
            return False
        return True

    async def put_status(self, namespace: str, name: str, pod: Json) -> None:
        updated = await self._call("PUT", f"/api/v1/namespaces/{namespace}/pods/{name}/status", pod)
        self._remember("MODIFIED", updated, notify=False)

    async def create_event(self, namespace: str, event: Json) -> None:
        with contextlib.suppress(ApiError, aiohttp.ClientError):
            await self._call("POST", f"/api/v1/namespaces/{namespace}/events", event)

    async def delete_now(self, namespace: str, name: str, uid: str) -> None:
        with contextlib.suppress(ApiError, aiohttp.ClientError):
            await self._call(
                "DELETE",
                f"/api/v1/namespaces/{namespace}/pods/{name}",
                {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}},
            )

    async def lookup(self, namespace: str) -> Lookup:
        """Secrets and ConfigMaps of the namespace, read now (a kubelet reads them at mount time)."""
        found: dict[tuple[str, str], Json] = {}
        for plural in ("secrets", "configmaps"):
            with contextlib.suppress(ApiError, aiohttp.ClientError):
                listing = await self._call("GET", f"/api/v1/namespaces/{namespace}/{plural}")
                for item in listing.get("items") or []:
                    found[(plural, item["metadata"]["name"])] = item

        def lookup(plural: str, name: str) -> Json | None:
            return found.get((plural, name))

        return lookup

    def subscribe(self, on_change: ChangeHandler, on_graceful_delete: DeleteHandler) -> None:
        self._on_change, self._on_graceful_delete = on_change, on_graceful_delete

    # --- watching pods -----------------------------------------------------------------------

    def _remember(self, kind: str, pod: Json, notify: bool = True) -> None:
        meta = pod.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        previous = self._pods.get(key)
        if kind == "DELETED":
            if previous is not None and previous["metadata"].get("uid") == meta.get("uid"):
                del self._pods[key]
        else:
            if previous is not None and int(previous["metadata"].get("resourceVersion", "0")) > int(
                meta.get("resourceVersion", "0")
            ):
                return  # an older copy than the one we hold (our own write raced the watch)
            self._pods[key] = pod
        if not notify:
            return
        if self._on_change is not None:
            self._on_change(kind, pod)
        deleting = meta.get("deletionTimestamp") and not (previous or {}).get("metadata", {}).get(
            "deletionTimestamp"
        )
        if kind == "MODIFIED" and deleting and self._on_graceful_delete is not None:
            self._on_graceful_delete(pod)

    async def _watch(self) -> None:
        """List then watch every pod, re-listing after 410 Gone or a dropped stream."""
        while True:
            try:
                listing = await self._call("GET", "/api/v1/pods")
                seen = {
                    (item["metadata"]["namespace"], item["metadata"]["name"]) for item in listing["items"]
                }
                for key in [key for key in self._pods if key not in seen]:
                    self._remember("DELETED", self._pods[key])
                for item in listing["items"]:
                    known = self._pods.get((item["metadata"]["namespace"], item["metadata"]["name"]))
                    self._remember("MODIFIED" if known else "ADDED", item)
                self._synced.set()
                version = listing["metadata"]["resourceVersion"]
                async with self.session.get(
                    f"{self.url}/api/v1/pods",
                    params={
                        "watch": "true",
                        "resourceVersion": version,
                        "allowWatchBookmarks": "true",
                        "timeoutSeconds": "300",
                    },
                    timeout=aiohttp.ClientTimeout(total=None, sock_read=330),
                ) as response:
                    if response.status != 200:
                        await asyncio.sleep(0.5)
                        continue
                    async for line in response.content:
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        if event.get("type") == "ERROR":
                            break  # 410 Gone and friends: list again
                        if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                            self._remember(event["type"], event["object"])
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a dropped connection: list and watch again
                logger.info("pod watch interrupted (%s); listing again", error)
                await asyncio.sleep(0.5)

    # --- the node and its endpoint -------------------------------------------------------------

    async def start(self, node_name: str, log_reader: LogReader) -> None:
        self._node_name = node_name
        await self._serve_kubelet_endpoint(log_reader)
        await self._register_node()
        self._watch_task = asyncio.get_running_loop().create_task(self._watch())
        await asyncio.wait_for(self._synced.wait(), 30)

    async def _serve_kubelet_endpoint(self, log_reader: LogReader) -> None:
        async def container_logs(request: web.Request) -> web.StreamResponse:
            query = dict(request.query)
            query["container"] = request.match_info["container"]
            try:
                chunks = await log_reader(request.match_info["namespace"], request.match_info["pod"], query)
            except ApiError as error:
                return web.Response(status=error.code, text=error.message)
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(request)
            async for chunk in chunks:
                await response.write(chunk)
            await response.write_eof()
            return response

        application = web.Application()
        application.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_logs)
        application.router.add_get("/healthz", lambda request: _ok())
        self._runner = web.AppRunner(application, access_log=None, handle_signals=False)
        await self._runner.setup()
        serving = make_serving_certificate(["127.0.0.1", "localhost"], ca_name="sandbox-kubelet-ca")
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=serving.server_context())
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.kubelet_port = int(sockets[0].getsockname()[1])

    async def _register_node(self) -> None:
        now = _objects.now()
        node: Json = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self._node_name,
                "labels": {
                    "kubernetes.io/hostname": self._node_name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "destinations.dev/sandbox": "true",
                },
            },
            "spec": {},
        }
        with contextlib.suppress(ApiError):
            await self._call("DELETE", f"/api/v1/nodes/{self._node_name}")
        created = await self._call("POST", "/api/v1/nodes", node)
        created["status"] = {
            "capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "the sandbox kubelet is posting ready status",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self._node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {
                "machineID": "sandbox",
                "systemUUID": "sandbox",
                "bootID": "sandbox",
                "kernelVersion": "",
                "osImage": "destinations sandbox",
                "containerRuntimeVersion": "sandbox://1",
                "kubeletVersion": "sandbox",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
        await self._call("PUT", f"/api/v1/nodes/{self._node_name}/status", created)

    async def stop(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()


async def _ok() -> web.Response:
    return web.Response(text="ok")
