"""Bounded concurrency over an async stream: at most N requests in flight, and at most N items held."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import TypeVar

Item = TypeVar("Item")


async def for_each_concurrently(
    items: AsyncIterable[Item], limit: int, work: Callable[[Item], Awaitable[None]]
) -> None:
    """Run `work(item)` for each item with at most `limit` running at once.

    The next item is pulled from the stream only when a slot is free, so memory stays bounded by
    `limit` batches however long the stream is. The first failure cancels the rest and is raised.
    """
    running: set[asyncio.Task[None]] = set()
    try:
        async for item in items:
            while len(running) >= limit:
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            running.add(asyncio.ensure_future(work(item)))
        while running:
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
