"""The HTTP face of the sandbox: Kubernetes API routing, content negotiation, watch streams.

One catch-all aiohttp route parses the path itself (`/api/v1/namespaces/{ns}/pods/{name}/log`,
`/apis/{group}/{version}/...`), which keeps routing to a few dictionary look-ups however many CRDs
are installed. Each request is authenticated by its bearer token, passed through fault injection
(never for `/sandbox/*`), carried out by the `Cluster`, and recorded in the request log.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from aiohttp import web

from . import _discovery
from ._cluster import Caller, Cluster, ListResult, Options
from ._errors import ApiError, bad_request, method_not_allowed, status_object
from ._faults import Faults
from ._protobuf import ProtobufError, decode_object
from ._requestlog import RequestLog, RequestRecord
from ._resources import ResourceType
from ._selectors import parse_field_selector, parse_label_selector
from ._store import Change, Watcher
from ._tables import to_table

Json = dict[str, Any]

#: Reads a pod's log: (namespace, pod name, query parameters) → chunks of the log.
LogReader = Callable[[str, str, dict[str, str]], Awaitable[AsyncIterator[bytes]]]
#: Evicts a pod the way the node would (test helper endpoint).
Evictor = Callable[[str, str], Awaitable[None]]

_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def _json_response(payload: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    response = web.Response(body=_DUMPS(payload).encode(), status=status, content_type="application/json")
    for warning in warnings or ():
        response.headers.add("Warning", '299 - "' + warning.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return response


def _error_response(error: ApiError) -> web.Response:
    return _json_response(error.status(), error.code)


#: kube-apiserver serves its version at both; the official Python client asks for `/version/`.
VERSION_PATHS = frozenset({"/version", "/version/"})


@dataclass
class Route:
    """A parsed API path."""

    kind: str  # "resource" or a discovery document name
    group: str = ""
    version: str = ""
    plural: str = ""
    namespace: str | None = None
    name: str = ""
    subresource: str = ""


def parse_path(path: str) -> Route | None:
    parts = [part for part in path.split("/") if part]
    if not parts:
        return Route("root")
    if parts[0] == "api":
        if len(parts) == 1:
            return Route("api")
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis":
        if len(parts) == 1:
            return Route("apis")
        if len(parts) == 2:
            return Route("group", group=parts[1])
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return Route("resources", group=group, version=version)
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and not (group == "" and rest[2] in ("status", "finalize")):
        namespace, rest = rest[1], rest[2:]
    route = Route("resource", group=group, version=version, plural=rest[0], namespace=namespace)
    if len(rest) >= 2:
        route.name = rest[1]
    if len(rest) >= 3:
        route.subresource = rest[2]
    if len(rest) > 3:
        return None
    return route


def _wants_table(accept: str) -> bool:
    return "as=Table" in accept


def _bool(value: str | None) -> bool:
    return value in ("true", "1", "True")


class ApiServer:
    """Serves one `Cluster` over HTTP."""

    def __init__(
        self,
        cluster: Cluster,
        request_log: RequestLog,
        faults: Faults,
        tokens: dict[str, Caller],
        *,
        bookmark_interval: float = 60.0,
    ) -> None:
        self.cluster = cluster
        self.request_log = request_log
        self.faults = faults
        self.tokens = tokens
        self.bookmark_interval = bookmark_interval
        self.server_address = "127.0.0.1:0"
        self.log_reader: LogReader | None = None
        self.evictor: Evictor | None = None
        self._watch_tasks: set[asyncio.Task[Any]] = set()
        self._closing = asyncio.Event()

    def application(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def close_watches(self) -> None:
        self._closing.set()

    # --- entry point -------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/sandbox/"):
            return await self._sandbox_endpoint(request)
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        started = time.time()
        route = parse_path(path)
        verb = self._verb(request, route)
        record: dict[str, Any] = {
            "user": "",
            "verb": verb,
            "api_group": route.group if route else "",
            "api_version": route.version if route else "",
            "resource": route.plural if route and route.kind == "resource" else "",
            "subresource": route.subresource if route else "",
            "namespace": (route.namespace or "") if route else "",
            "name": route.name if route else "",
        }
        code = 500
        try:
            caller = self._authenticate(request)
            record["user"] = caller.username
            await self._inject_faults(verb, caller)
            response = await self._dispatch(request, route, verb, caller)
            code = response.status
            return response
        except ApiError as error:
            code = error.code
            return _error_response(error)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            code = 200
            raise
        finally:
            self.request_log.append(
                RequestRecord(
                    time=datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    code=code,
                    path=path,
                    **record,
                )
            )

    def _verb(self, request: web.Request, route: Route | None) -> str:
        method = request.method
        has_name = bool(route and route.name)
        if method == "GET":
            if route is None or route.kind != "resource":
                return "get"
            if _bool(request.query.get("watch")):
                return "watch"
            return "get" if has_name else "list"
        return {
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if has_name else "deletecollection",
        }.get(method, method.lower())

    def _authenticate(self, request: web.Request) -> Caller:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            caller = self.tokens.get(header[7:].strip())
            if caller is not None:
                return caller
        if request.path in VERSION_PATHS:
            return Caller("system:anonymous", ("system:unauthenticated",))
        raise ApiError(401, "Unauthorized", "Unauthorized")

    async def _inject_faults(self, verb: str, caller: Caller) -> None:
        faults = self.faults
        if not faults.applies_to(caller.username):
            return
        if faults.roll(faults.latency_rate):
            await asyncio.sleep(faults.latency_seconds)
        if faults.roll(faults.error):
            raise ApiError(
                500, "InternalError", "Internal error occurred: injected by the sandbox (--faults error)"
            )
        if verb in _WRITE_VERBS and faults.roll(faults.conflict):
            raise ApiError(
                409,
                "Conflict",
                "Operation cannot be fulfilled: the object has been modified; please apply your "
                "changes to the "
                "latest version and try again (injected by the sandbox --faults conflict)",
            )

    # --- dispatch ----------------------------------------------------------------------------

    async def _dispatch(
        self, request: web.Request, route: Route | None, verb: str, caller: Caller
    ) -> web.StreamResponse:
        registry = self.cluster.registry
        if route is None:
            if request.path in VERSION_PATHS:
                return _json_response(_discovery.KUBERNETES_VERSION)
            if request.path.startswith("/openapi/"):
                return self._openapi(request.path)
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if route.kind != "resource":
            if request.method != "GET":
                raise method_not_allowed()
            document: Json | None
            if route.kind == "root":
                document = {"paths": ["/api", "/api/v1", "/apis", "/openapi/v3", "/version", "/healthz"]}
            elif route.kind == "api":
                document = _discovery.api_versions(self.server_address)
            elif route.kind == "apis":
                document = _discovery.api_group_list(registry)
            elif route.kind == "group":
                document = _discovery.api_group(registry, route.group)
            else:
                document = _discovery.api_resource_list(registry, route.group, route.version)
            if document is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json_response(document)
        resource_type = registry.lookup(route.group, route.version, route.plural)
        if resource_type is None or (route.namespace is not None and not resource_type.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace = route.namespace if resource_type.namespaced else ""
        if route.subresource and route.subresource not in resource_type.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        query = request.query
        options = Options(
            caller=caller,
            dry_run=query.get("dryRun") == "All",
            field_validation=query.get("fieldValidation", "Warn") or "Warn",
            field_manager=query.get("fieldManager", ""),
        )
        if options.field_validation not in ("Ignore", "Warn", "Strict"):
            raise bad_request(f"fieldValidation: {options.field_validation} is not a valid value")
        cluster = self.cluster
        if route.subresource == "log":
            return await self._logs(request, namespace or "", route.name)
        if route.subresource == "eviction":
            if request.method != "POST":
                raise method_not_allowed()
            body = await self._body(request)
            await cluster.delete(
                resource_type, namespace or "", route.name, body.get("deleteOptions"), options
            )
            return _json_response(status_object(201, "", "", None) | {"status": "Success"}, 201)
        if verb == "watch":
            drop_watch = self.faults.drop_watch if self.faults.applies_to(caller.username) else 0.0
            return await self._watch(request, resource_type, route, drop_watch)
        if verb == "list":
            if route.namespace is None and resource_type.namespaced:
                scope: str | None = None
            else:
                scope = namespace
            result = cluster.list(
                resource_type,
                scope,
                label_selector=query.get("labelSelector"),
                field_selector=query.get("fieldSelector"),
                limit=int(query.get("limit", "0") or 0),
                continue_token=query.get("continue"),
            )
            return self._list_response(request, resource_type, result)
        if verb == "get":
            obj = cluster.get(resource_type, namespace or "", route.name)
            if _wants_table(request.headers.get("Accept", "")):
                return _json_response(
                    to_table(
                        resource_type,
                        [obj],
                        {"resourceVersion": obj["metadata"]["resourceVersion"]},
                        query.get("includeObject", "Metadata"),
                    )
                )
            return _json_response(obj)
        if verb == "create":
            if route.name:
                raise method_not_allowed()
            obj = await cluster.create(resource_type, namespace or "", await self._body(request), options)
            return _json_response(obj, 201, options.warnings)
        if verb == "update":
            obj = await cluster.update(
                resource_type,
                namespace or "",
                route.name,
                await self._body(request),
                options,
                subresource=route.subresource,
            )
            return _json_response(obj, 200, options.warnings)
        if verb == "patch":
            obj = await cluster.patch(
                resource_type,
                namespace or "",
                route.name,
                request.headers.get("Content-Type", "application/merge-patch+json"),
                await request.read(),
                options,
                subresource=route.subresource,
                force=_bool(query.get("force")),
            )
            return _json_response(obj, 200, options.warnings)
        if verb == "delete":
            delete_options = await self._delete_options(request)
            obj = await cluster.delete(resource_type, namespace or "", route.name, delete_options, options)
            return _json_response(obj, 200, options.warnings)
        if verb == "deletecollection":
            delete_options = await self._delete_options(request)
            scope = None if route.namespace is None and resource_type.namespaced else namespace
            deleted = await cluster.delete_collection(
                resource_type,
                scope,
                label_selector=query.get("labelSelector"),
                field_selector=query.get("fieldSelector"),
                delete_options=delete_options,
                options=options,
            )
            return _json_response(
                {
                    "kind": resource_type.list_kind,
                    "apiVersion": resource_type.api_version,
                    "metadata": {},
                    "items": deleted,
                }
            )
        raise method_not_allowed()

    async def _body(self, request: web.Request) -> Json:
        raw = await request.read()
        if "protobuf" in request.headers.get("Content-Type", ""):
            try:
                return decode_object(raw)
            except ProtobufError as error:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"application/json, application/yaml ({error})",
                ) from None
        if not raw:
            return {}
        try:
            if "yaml" in request.headers.get("Content-Type", ""):
                body = yaml.safe_load(raw.decode())
            else:
                body = json.loads(raw)
        except (ValueError, yaml.YAMLError) as error:
            raise bad_request(f"the body of the request could not be decoded: {error}") from None
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be an object")
        return body

    async def _delete_options(self, request: web.Request) -> Json:
        options = await self._body(request) if request.can_read_body else {}
        query = request.query
        if "gracePeriodSeconds" in query:
            options["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
        if "propagationPolicy" in query:
            options["propagationPolicy"] = query["propagationPolicy"]
        if "orphanDependents" in query:
            options["orphanDependents"] = _bool(query["orphanDependents"])
        return options

    def _list_response(
        self, request: web.Request, resource_type: ResourceType, result: ListResult
    ) -> web.Response:
        list_meta: Json = {"resourceVersion": str(result.resource_version)}
        if result.continue_token:
            list_meta["continue"] = result.continue_token
        if result.remaining is not None:
            list_meta["remainingItemCount"] = result.remaining
        if _wants_table(request.headers.get("Accept", "")):
            return _json_response(
                to_table(
                    resource_type, result.items, list_meta, request.query.get("includeObject", "Metadata")
                )
            )
        return _json_response(
            {
                "kind": resource_type.list_kind,
                "apiVersion": resource_type.api_version,
                "metadata": list_meta,
                "items": result.items,
            }
        )

    def _openapi(self, path: str) -> web.Response:
        registry = self.cluster.registry
        if path in ("/openapi/v3", "/openapi/v3/"):
            return _json_response(_discovery.openapi_v3_root(registry))
        parts = [part for part in path.split("/") if part][2:]
        document: Json | None = None
        if parts[:1] == ["api"] and len(parts) == 2:
            document = _discovery.openapi_v3_group_version(registry, "", parts[1])
        elif parts[:1] == ["apis"] and len(parts) == 3:
            document = _discovery.openapi_v3_group_version(registry, parts[1], parts[2])
        if document is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return _json_response(document)

    # --- logs --------------------------------------------------------------------------------

    async def _logs(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        self.cluster.get(self.cluster.registry.lookup("", "v1", "pods"), namespace, name)  # type: ignore[arg-type]
        if self.log_reader is None:
            raise bad_request("the sandbox runs without a kubelet: no logs")
        chunks = await self.log_reader(namespace, name, dict(request.query))
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        return response

    # --- watch -------------------------------------------------------------------------------

    async def _watch(
        self, request: web.Request, resource_type: ResourceType, route: Route, drop_watch: float
    ) -> web.StreamResponse:
        query = request.query
        store = self.cluster.store
        key = resource_type.storage_key
        namespace = route.namespace if resource_type.namespaced else None
        field_text = query.get("fieldSelector") or ""
        if route.name:
            field_text = ",".join(filter(None, [field_text, f"metadata.name={route.name}"]))
        watcher = Watcher(
            key,
            namespace,
            parse_label_selector(query.get("labelSelector")),
            parse_field_selector(field_text, key, custom=resource_type.custom),
        )
        table = _wants_table(request.headers.get("Accept", ""))
        include_object = query.get("includeObject", "Metadata")
        bookmarks = _bool(query.get("allowWatchBookmarks"))
        send_initial = _bool(query.get("sendInitialEvents"))
        timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
        version_text = query.get("resourceVersion", "")

        def render(change_type: str, obj: Json) -> bytes:
            if obj.get("apiVersion") != resource_type.api_version and change_type != "BOOKMARK":
                obj = {**obj, "apiVersion": resource_type.api_version}
            if table and change_type != "BOOKMARK" and change_type != "ERROR":
                obj = to_table(
                    resource_type,
                    [obj],
                    {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                    include_object,
                )
            return _DUMPS({"type": change_type, "object": obj}).encode() + b"\n"

        def bookmark(initial_end: bool = False) -> bytes:
            meta: Json = {"resourceVersion": str(store.resource_version)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return render(
                "BOOKMARK",
                {"kind": resource_type.kind, "apiVersion": resource_type.api_version, "metadata": meta},
            )

        # Subscribing and reading the history happen without awaiting in between: no gaps, no duplicates.
        initial: list[bytes] = []
        expired = False
        store.subscribe(watcher)
        if version_text in ("", "0") or send_initial:
            for obj in store.sorted_objects(key, namespace):
                if watcher.matches(obj):
                    initial.append(render("ADDED", obj))
            if send_initial:
                initial.append(bookmark(initial_end=True))
        else:
            try:
                since = int(version_text)
            except ValueError:
                store.unsubscribe(watcher)
                raise bad_request(f"invalid resource version: {version_text}") from None
            if since < store.oldest_resumable(key):
                expired = True
            else:
                for change in store.changes_since(key, since):
                    translated = watcher.translate(change)
                    if translated is not None:
                        initial.append(render(translated.type, translated.obj))
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        )
        try:
            await response.prepare(request)
            if expired:
                oldest = store.oldest_resumable(key)
                error = status_object(
                    410, "Expired", f"too old resource version: {version_text} ({oldest + 1})"
                )
                await response.write(_DUMPS({"type": "ERROR", "object": error}).encode() + b"\n")
                return response
            for line in initial:
                if self.faults.roll(drop_watch):
                    return response
                await response.write(line)
            await self._stream(
                response, watcher, render, bookmark if bookmarks else None, timeout, drop_watch
            )
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            store.unsubscribe(watcher)
        return response

    async def _stream(
        self,
        response: web.StreamResponse,
        watcher: Watcher,
        render: Callable[[str, Json], bytes],
        bookmark: Callable[[], bytes] | None,
        timeout: float | None,
        drop_watch: float,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout is not None else None
        next_bookmark = loop.time() + self.bookmark_interval
        while not self._closing.is_set():
            now = loop.time()
            wait = 1.0
            if deadline is not None:
                wait = min(wait, deadline - now)
            if bookmark is not None:
                wait = min(wait, next_bookmark - now)
            if wait <= 0:
                if deadline is not None and now >= deadline:
                    return
                if bookmark is not None and now >= next_bookmark:
                    await response.write(bookmark())
                    next_bookmark = now + self.bookmark_interval
                continue
            try:
                change: Change | None = await asyncio.wait_for(watcher.queue.get(), wait)
            except TimeoutError:
                if self.faults.roll(drop_watch):
                    return
                continue
            if change is None:
                return  # the resource went away (its CRD was deleted)
            if self.faults.roll(drop_watch):
                return
            await response.write(render(change.type, change.obj))

    # --- sandbox endpoints -------------------------------------------------------------------

    async def _sandbox_endpoint(self, request: web.Request) -> web.Response:
        path = request.path.rstrip("/")
        if path == "/sandbox/v1/requests":
            if request.method == "DELETE":
                self.request_log.clear()
                return _json_response({"cleared": True})
            return _json_response({"items": [record.to_json() for record in self.request_log.records()]})
        if path == "/sandbox/v1/faults":
            if request.method in ("PUT", "POST"):
                try:
                    self.faults = Faults.parse((await request.text()).strip())
                except ValueError as error:
                    return _json_response(bad_request(str(error)).status(), 400)
            return _json_response({"faults": self.faults.describe()})
        if path == "/sandbox/v1/evictions" and request.method == "POST":
            body = await request.json()
            if self.evictor is None:
                return _json_response(bad_request("the sandbox runs without a kubelet").status(), 400)
            try:
                await self.evictor(body["namespace"], body["name"])
            except ApiError as error:
                return _error_response(error)
            return _json_response({"evicted": True})
        if path == "/sandbox/v1/stats":
            store = self.cluster.store
            return _json_response({"objects": store.count(), "resourceVersion": store.resource_version})
        return _json_response(ApiError(404, "NotFound", "no such sandbox endpoint").status(), 404)
