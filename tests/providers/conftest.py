"""Helpers shared by the provider contract tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import pytest

from destinations.api.models import AuthMethod, JobType, SyncMode
from destinations.providers._http import HttpClientFactory, RetryPolicy
from destinations.providers.base import Credentials, Provider, Record, SyncContext

T = TypeVar("T")


class RecordingSleep:
    """Stands in for asyncio.sleep: remembers the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def http(sleeps: RecordingSleep) -> HttpClientFactory:
    """Real HTTP, but backoffs are recorded, not slept, and a few attempts suffice."""
    return HttpClientFactory(policy=RetryPolicy(attempts=3, max_short_wait=60.0), sleep=sleeps)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def batches_of(records: list[Record], size: int = 500) -> AsyncIterator[list[Record]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]


def make_context(
    provider: Provider,
    job_type: JobType,
    config: dict[str, Any],
    *,
    method: AuthMethod,
    values: dict[str, str],
    endpoint: str | None,
    http: HttpClientFactory,
    mode: SyncMode = SyncMode.UPSERT,
) -> SyncContext:
    return SyncContext(
        job_type=job_type,
        config=provider.parse_config(job_type, config),
        credentials=Credentials(method=method, values=values, endpoint=endpoint),
        mode=mode,
        http=http,
    )
