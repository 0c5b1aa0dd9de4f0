"""A thin asynchronous Kubernetes client: exactly the calls the operator makes, over one aiohttp session.

kopf watches; this client writes. Keeping the writes here, few and explicit, is what lets the tests
count them: a status merge patch, a pod create or delete, an Event, a finalizer patch, a purge.
It authenticates with the same `kopf.ConnectionInfo` kopf logged in with (kubeconfig or in-cluster),
over aiohttp like kopf itself: with 1,000 jobs the client's own overhead is most of the operator's CPU
time, and aiohttp's is a fraction of httpx's.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import kopf

from destinations import API_VERSION

Json = dict[str, Any]
GROUP, VERSION = API_VERSION.split("/")
MERGE_PATCH = "application/merge-patch+json"
REPORTING_COMPONENT = "destinations-operator"
#: Items per page of a list (`limit`): kube-apiserver's own clients (reflectors) ask for 500.
LIST_PAGE_SIZE = 500
#: Concurrent connections to the API server (the client's requests in flight at most).
CONNECTIONS = 100


class KubeError(Exception):
    """An API call failed; `status` is the HTTP status (0 when the server could not be reached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if info.insecure:
        return False
    context = ssl.create_default_context()
    if info.ca_path:
        context.load_verify_locations(cafile=str(info.ca_path))
    elif info.ca_data:
        data = info.ca_data if isinstance(info.ca_data, bytes) else info.ca_data.encode()
        context.load_verify_locations(cadata=base64.b64decode(data).decode())
    if info.certificate_path and info.private_key_path:
        context.load_cert_chain(str(info.certificate_path), str(info.private_key_path))
    return context


def custom_path(plural: str, namespace: str, name: str = "", subresource: str = "") -> str:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}"
    return "/".join(part for part in (path, name, subresource) if part)


def core_path(plural: str, namespace: str, name: str = "") -> str:
    path = f"/api/v1/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


def collection_path(plural: str, namespace: str | None, *, core: bool = False) -> str:
    """A collection in one namespace, or in every namespace (`namespace=None`)."""
    if namespace is not None:
        return core_path(plural, namespace) if core else custom_path(plural, namespace)
    return f"/api/v1/{plural}" if core else f"/apis/{GROUP}/{VERSION}/{plural}"


class KubeClient:
    """The operator's API calls; every method raises `KubeError` on failure."""

    def __init__(self, info: kopf.ConnectionInfo, *, timeout: float = 30) -> None:
        self._server = info.server.rstrip("/")
        self._headers = {"User-Agent": "destinations-operator"}
        if info.token:
            self._headers["Authorization"] = f"Bearer {info.token}"
        self._auth = aiohttp.BasicAuth(info.username, info.password or "") if info.username else None
        self._ssl = _ssl_context(info)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running loop (aiohttp binds a session to its loop). At most
        # CONNECTIONS requests in flight: kopf's own session has the same (aiohttp's default); with 32,
        # 1,000 jobs applied at once reached their pods ~8 % slower on kube-apiserver (issue 18).
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                auth=self._auth,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=CONNECTIONS),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Json:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        try:
            async with self._client().request(
                method, self._server + path, data=data, headers=headers
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise KubeError(0, f"{method} {path}: {error!r}") from None
        if status >= 400:
            try:
                message = str(json.loads(text).get("message") or text)
            except (ValueError, AttributeError):
                message = text
            raise KubeError(status, f"{method} {path}: {message}")
        try:
            result = json.loads(text) if text else {}
        except ValueError:
            result = None
        if not isinstance(result, dict):  # a proxy's page, a truncated body: no API object
            raise KubeError(status, f"{method} {path}: the answer is no JSON object: {text[:200]!r}")
        return result

    async def list_pages(
        self, path: str, params: Mapping[str, str] | None = None, *, limit: int = LIST_PAGE_SIZE
    ) -> AsyncIterator[list[Json]]:
        """Every item under `path` (a collection), yielded a page of at most `limit` items at a time.

        Follows `metadata.continue` until it is empty, as the API conventions ask of large lists
        (https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks),
        so at most one page is held at once. Raises `KubeError` (410 when a continue token expired
        mid-way: the caller lists again from the start).
        """
        query = {**(params or {}), "limit": str(limit)}
        while True:
            page = await self._request("GET", f"{path}?{urlencode(query)}")
            yield list(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return
            query["continue"] = str(token)

    # --- custom resources ----------------------------------------------------------------------

    async def patch_status(self, plural: str, namespace: str, name: str, patch: Json) -> Json:
        """A JSON merge patch of `.status` (the status subresource: never bumps the generation)."""
        return await self._request(
            "PATCH", custom_path(plural, namespace, name, "status"), {"status": patch}, MERGE_PATCH
        )

    async def patch_object(self, plural: str, namespace: str, name: str, patch: Json) -> Json:
        return await self._request("PATCH", custom_path(plural, namespace, name), patch, MERGE_PATCH)

    async def delete_object(self, plural: str, namespace: str, name: str, uid: str | None = None) -> None:
        """Delete a custom object (background propagation: its pods follow via ownerReferences)."""
        options: Json = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if uid:
            options["preconditions"] = {"uid": uid}
        await self._request("DELETE", custom_path(plural, namespace, name), options)

    # --- pods and secrets ----------------------------------------------------------------------

    async def create_pod(self, namespace: str, pod: Json) -> Json:
        return await self._request("POST", core_path("pods", namespace), pod)

    async def get_pod(self, namespace: str, name: str) -> Json:
        return await self._request("GET", core_path("pods", namespace, name))

    async def delete_pod(self, namespace: str, name: str) -> None:
        """Delete a pod; a pod that is already gone is not an error."""
        try:
            await self._request("DELETE", core_path("pods", namespace, name))
        except KubeError as error:
            if error.status != 404:
                raise

    async def get_secret(self, namespace: str, name: str) -> Json:
        return await self._request("GET", core_path("secrets", namespace, name))

    async def patch_secret(self, namespace: str, name: str, patch: Json) -> Json:
        """A JSON merge patch of a Secret; put `metadata.resourceVersion` in it to fail (409) on a race."""
        return await self._request("PATCH", core_path("secrets", namespace, name), patch, MERGE_PATCH)

    # --- events --------------------------------------------------------------------------------

    async def post_event(
        self,
        involved: Json,
        reason: str,
        message: str,
        event_type: str = "Normal",
        now: datetime | None = None,
    ) -> None:
        """A core/v1 Event on `involved` ({kind, name, namespace, uid, apiVersion}): one create."""
        moment = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        namespace = involved["namespace"]
        suffix = f"{datetime.now(UTC).timestamp():.6f}".replace(".", "")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{involved['name']}.{suffix}"[:253], "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message[:1024],
            "type": event_type,
            "source": {"component": REPORTING_COMPONENT},
            "reportingComponent": REPORTING_COMPONENT,
            "reportingInstance": REPORTING_COMPONENT,
            "firstTimestamp": moment,
            "lastTimestamp": moment,
            "count": 1,
        }
        await self._request("POST", core_path("events", namespace), event)
