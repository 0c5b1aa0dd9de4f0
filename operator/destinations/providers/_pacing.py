"""Client-side pacing: at most N requests in any sliding window, for quotas counted per minute.

A provider whose quota is per project and per minute (Google's Data Manager API: 300 requests a
minute, https://developers.google.com/data-manager/api/limits) is better served by a worker that
never exceeds it than by one that trips it and backs off.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable


class RequestPacer:
    """`await pacer.wait()` before each request: returns at once while the window has room."""

    def __init__(
        self,
        limit: int,
        period: float,
        *,
        sleep: Callable[[float], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or period <= 0:
            raise ValueError(f"a pace needs limit >= 1 and period > 0, not {limit} per {period}s")
        self._limit = limit
        self._period = period
        self._sleep = sleep
        self._clock = clock
        self._sent: collections.deque[float] = collections.deque()

    async def wait(self) -> None:
        now = self._clock()
        while self._sent and self._sent[0] <= now - self._period:
            self._sent.popleft()
        if len(self._sent) >= self._limit:
            await self._sleep(self._sent[0] + self._period - now)
            self._sent.popleft()
            now = max(now, self._clock())
        self._sent.append(now)
