"""Sources: where an export's or an enrichment's records come from, streamed in batches.

Every source is an async iterator of batches (lists of dicts) so that the worker holds at most a few
batches whatever the source's size: PostgreSQL through a server-side cursor, JSON lines over HTTP
read line by line from the response stream, files read line by line.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from pydantic_core import from_json

from destinations.api.models import DataEndpoint, FileEndpoint, FileFormat, UrlEndpoint, WarehouseEndpoint
from destinations.providers._http import RetryPolicy, redact_url
from destinations.providers.base import Record, RecordBatches, RecordCounter
from destinations.providers.errors import (
    AuthenticationFailed,
    ConfigurationError,
    EndpointUnreachable,
    ProviderError,
    SyncError,
)
from destinations.worker.mounts import Mounts

if TYPE_CHECKING:
    from psycopg import sql

# psycopg is imported where a warehouse is read: a run from a file or a URL does not pay for it.

CURSOR_NAME = "destinations_source"
DEFAULT_POLICY = RetryPolicy()


def open_source(
    endpoint: DataEndpoint,
    mounts: Mounts,
    counts: RecordCounter,
    *,
    batch_size: int,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> RecordBatches:
    """The batches of a job's source; `counts.read` and `counts.failed` are kept up to date."""
    if endpoint.warehouse is not None:
        conninfo = mounts.secret_key(
            endpoint.warehouse.connection_secret_ref.name, endpoint.warehouse.connection_secret_ref.key
        )
        return warehouse_batches(endpoint.warehouse, conninfo, counts, batch_size=batch_size)
    if endpoint.url is not None:
        headers = (
            mounts.secret(endpoint.url.headers_secret_ref.name) if endpoint.url.headers_secret_ref else {}
        )
        return url_batches(endpoint.url, headers, counts, batch_size=batch_size, policy=policy)
    assert endpoint.file is not None
    return file_batches(
        endpoint.file, mounts.data_file("source", endpoint.file.path), counts, batch_size=batch_size
    )


# ------------------------------------------------------------------------------------------ warehouse


def source_query(endpoint: WarehouseEndpoint) -> sql.Composed | sql.SQL:
    from psycopg import sql

    from destinations.worker.postgres import table_identifier

    if endpoint.table is not None:
        return sql.SQL("SELECT * FROM {}").format(table_identifier(endpoint.table))
    assert endpoint.query is not None
    # The user's own SELECT, run with the login they gave: no injection boundary to defend here.
    return sql.SQL(endpoint.query)


async def warehouse_batches(
    endpoint: WarehouseEndpoint, conninfo: str, counts: RecordCounter, *, batch_size: int
) -> RecordBatches:
    """Rows through a server-side cursor: PostgreSQL sends `batch_size` rows at a time."""
    import psycopg
    from psycopg.rows import dict_row

    from destinations.worker.postgres import connect

    connection = await connect(conninfo, role="source")
    try:
        async with connection.cursor(name=CURSOR_NAME, row_factory=dict_row) as cursor:
            try:
                await cursor.execute(source_query(endpoint))
            except psycopg.errors.UndefinedTable:
                raise ConfigurationError(
                    f"source table {endpoint.table!r} does not exist in the source database"
                ) from None
            except psycopg.Error as error:
                raise ConfigurationError(f"the source query failed: {_first_line(error)}") from None
            while True:
                rows = await cursor.fetchmany(batch_size)
                if not rows:
                    break
                counts.read += len(rows)
                yield [dict(row) for row in rows]
    finally:
        await connection.close()


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


# ---------------------------------------------------------------------------------------------- url


async def url_batches(
    endpoint: UrlEndpoint,
    headers: dict[str, str],
    counts: RecordCounter,
    *,
    batch_size: int,
    policy: RetryPolicy = DEFAULT_POLICY,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RecordBatches:
    """JSON lines, page after page (RFC 8288 `Link: rel="next"`, or a cursor header fed back as a param)."""
    pagination = endpoint.pagination
    url: str | None = endpoint.url
    params: dict[str, str] = {}
    pages = 0
    async with httpx.AsyncClient(
        headers=headers, timeout=httpx.Timeout(60.0, connect=10.0), transport=transport, follow_redirects=True
    ) as client:
        while url is not None and pages < pagination.max_pages:
            pages += 1
            batch: list[Record] = []
            async with _open_page(client, url, params, policy) as response:
                line_number = 0
                async for line in response.aiter_lines():
                    line_number += 1
                    record = _parse_line(line)
                    if isinstance(record, dict):
                        batch.append(record)
                        if len(batch) == batch_size:
                            counts.read += len(batch)
                            yield batch
                            batch = []
                    elif record is not None:
                        counts.fail(1, f"{redact_url(url)} page {pages} line {line_number} {record}")
                next_url, params = _next_page(
                    response,
                    pagination.next_link_header,
                    pagination.cursor_param,
                    pagination.next_cursor_header,
                    endpoint.url,
                )
            if batch:
                counts.read += len(batch)
                yield batch
            url = next_url
    if counts.read == 0 and counts.failed > 0:
        raise ProviderError(f"the source {redact_url(endpoint.url)} serves no JSON objects, one per line")


class _open_page:
    """GET one page as a stream, retrying connection failures and 5xx before the body is read."""

    def __init__(
        self, client: httpx.AsyncClient, url: str, params: dict[str, str], policy: RetryPolicy
    ) -> None:
        self._client = client
        self._url = url
        self._params = params
        self._policy = policy
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        import asyncio

        where = redact_url(self._url)
        for attempt in range(1, self._policy.attempts + 1):
            try:
                request = self._client.build_request("GET", self._url, params=self._params or None)
                response = await self._client.send(request, stream=True)
            except httpx.TransportError as error:
                if attempt == self._policy.attempts:
                    raise EndpointUnreachable(
                        f"no answer from the source {where} after {attempt} attempts ({type(error).__name__})"
                    ) from None
                await asyncio.sleep(self._policy.backoff(attempt))
                continue
            if response.status_code in (401, 403):
                await response.aclose()
                raise AuthenticationFailed(
                    f"the source {where} refused the request (HTTP {response.status_code}); "
                    "check the headers Secret"
                )
            if response.status_code >= 500 or response.status_code == 429:
                await response.aclose()
                if attempt == self._policy.attempts:
                    raise ProviderError(
                        f"the source {where} answered HTTP {response.status_code} {attempt} times"
                    )
                await asyncio.sleep(self._policy.backoff(attempt))
                continue
            if not response.is_success:
                await response.aclose()
                raise ConfigurationError(
                    f"the source {where} answered HTTP {response.status_code}; check source.url"
                )
            self._response = response
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            await self._response.aclose()


def _next_page(
    response: httpx.Response,
    follow_link: bool,
    cursor_param: str | None,
    cursor_header: str | None,
    first_url: str,
) -> tuple[str | None, dict[str, str]]:
    if cursor_header is not None and cursor_param is not None:
        cursor = response.headers.get(cursor_header)
        return (first_url, {cursor_param: cursor}) if cursor else (None, {})
    if follow_link:
        link = response.links.get("next")
        if link and link.get("url"):
            return str(response.url.join(link["url"])), {}
    return None, {}


def _parse_line(line: str) -> Record | str | None:
    """One JSON line: its object, None for a blank line, or what is wrong with it (`is not JSON`).

    The per-line work of every JSON-lines source, so it does nothing else for a good line (where a
    line failed is worked out by the caller, only then). pydantic-core's parser reads a line about
    three times faster than the standard library's; like `json.loads` it takes NaN and Infinity, big
    integers, and the last of duplicate keys.
    """
    try:
        value: Any = from_json(line)
    except ValueError:
        return "is not JSON" if line.strip() else None
    return value if isinstance(value, dict) else "is not a JSON object"


# --------------------------------------------------------------------------------------------- file


async def file_batches(
    endpoint: FileEndpoint, path: Path, counts: RecordCounter, *, batch_size: int
) -> RecordBatches:
    """A JSONL or CSV file, read line by line."""
    if not path.is_file():
        raise ConfigurationError(f"source file {endpoint.path!r} is not on the source volume")
    batch: list[Record] = []
    with path.open(encoding="utf-8", newline="") as stream:
        if endpoint.format == FileFormat.CSV:
            reader = csv.DictReader(stream)
            if reader.fieldnames is None:
                return
            for row in reader:
                batch.append({key: (value if value != "" else None) for key, value in row.items()})
                if len(batch) == batch_size:
                    counts.read += len(batch)
                    yield batch
                    batch = []
        else:
            for number, line in enumerate(stream, start=1):
                parsed = _parse_line(line)
                if isinstance(parsed, dict):
                    batch.append(parsed)
                    if len(batch) == batch_size:
                        counts.read += len(batch)
                        yield batch
                        batch = []
                elif parsed is not None:
                    counts.fail(1, f"{endpoint.path} line {number} {parsed}")
    if batch:
        counts.read += len(batch)
        yield batch


__all__ = ["SyncError", "file_batches", "open_source", "url_batches", "warehouse_batches"]
