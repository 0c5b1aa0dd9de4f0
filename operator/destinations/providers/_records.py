"""Small helpers for reading fields out of records and provider answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from destinations.providers.errors import MalformedResponse


def dumps(value: Any) -> bytes:
    """Compact JSON; values JSON lacks (datetimes, decimals, UUIDs) are sent as their text."""
    return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False).encode()


def json_object(response: httpx.Response, name: str) -> dict[str, Any]:
    """The response body as a JSON object, or `MalformedResponse` naming what came instead."""
    try:
        body = response.json()
    except ValueError:
        snippet = " ".join(response.text.split())[:120]
        raise MalformedResponse(
            f"{name} answered HTTP {response.status_code} with a body that is not JSON: {snippet!r}"
        ) from None
    if not isinstance(body, dict):
        raise MalformedResponse(f"{name} answered with JSON that is not an object: {type(body).__name__}")
    return body


def dig(value: Any, path: str) -> Any:
    """The value at a dotted path (`data.company.name`; list indexes allowed), or None."""
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def text_field(record: dict[str, Any], field: str) -> str | None:
    """A record field as stripped text; None when missing or blank."""
    value = record.get(field)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


async def rebatch(batches: AsyncIterator[list[Any]], size: int) -> AsyncIterator[list[Any]]:
    """Re-cut a stream of batches into batches of `size` (the last may be shorter)."""
    chunk: list[Any] = []
    async for batch in batches:
        for item in batch:
            chunk.append(item)
            if len(chunk) == size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk
