"""The global cap on runs in flight (`--max-concurrent-runs`).

A cluster may hold thousands of jobs due at the same minute; the cap keeps the sync pods they start
within what the cluster and the providers can take. Jobs holding a slot are those with a run in flight
(`status.currentRun`); a job whose run is due while all slots are taken stays queued (the core's
`QueuedForCapacity`) and is woken as soon as a slot frees up.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable


class RunSlots:
    """Who holds a run slot. Not thread-safe: used from the operator's event loop only."""

    def __init__(self, limit: int, on_release: Callable[[], None] = lambda: None) -> None:
        self.limit = limit
        """0 means no cap."""
        self._holders: set[Hashable] = set()
        self._on_release = on_release

    @property
    def in_flight(self) -> int:
        return len(self._holders)

    def available_to(self, holder: Hashable) -> bool:
        """Whether `holder` may start a run now (a holder already in flight always may)."""
        return not self.limit or holder in self._holders or len(self._holders) < self.limit

    def update(self, holder: Hashable, running: bool) -> None:
        """Record whether `holder` has a run in flight; a freed slot wakes the queued jobs."""
        if running:
            self._holders.add(holder)
        elif holder in self._holders:
            self._holders.discard(holder)
            if self.limit:  # without a cap nobody queues
                self._on_release()
