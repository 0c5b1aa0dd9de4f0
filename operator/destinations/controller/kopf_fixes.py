"""A workaround for kopf's index readiness, whose cost grows with the square of the objects (issue 18).

kopf holds every handler until each index handler has seen every object listed at start-up. It does so
with one toggle per object in a `ToggleSet` (`kopf/_core/reactor/queueing.py`, `watcher()`, makes the
toggle; `kopf/_core/reactor/processing.py`, `process_resource_event()`, drops it once the object is
indexed, then waits with `operator_indexed.wait_for(True)`). Every `make_toggle()` and `drop_toggle()`
of `kopf/_cogs/aiokits/aiotoggles.py`, `ToggleSet`, calls `notify_all()` on the set's condition, which
wakes every worker already waiting, only for each to find the set still off and wait again. An
operator restarted under 10,000 jobs and their pods lists 20,000 objects: 40,000 notifications, each
waking up to 20,000 waiters, about 10^8 task wake-ups before the first job is handled.

The waiters only ever wait for the set's overall state, so a notification that does not change it
wakes them for nothing. `QuietToggleSet` notifies only when the overall state changes, which keeps
kopf's promise (no handler before every index is complete) at O(1) per object. The upstream fix is the
same three methods in `ToggleSet`; kopf's own toggles (`Toggle.turn_to`, used by peering) still notify
as before.

`install()` puts it in place of kopf's class before `kopf.operator()` builds its sets; it refuses
quietly (returns False, the operator then runs at kopf's own pace) on a kopf whose `ToggleSet` no
longer has the private parts it relies on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kopf._cogs.aiokits import aiotoggles

logger = logging.getLogger("destinations.operator")

_ORIGINAL = aiotoggles.ToggleSet


class QuietToggleSet(_ORIGINAL):
    """kopf's `ToggleSet`, waking its waiters only when its overall state (on/off) changes."""

    async def make_toggle(self, __val: bool = False, *, name: str | None = None) -> aiotoggles.Toggle:
        toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
        async with self._condition:
            before = self.is_on()
            self._toggles.add(toggle)
            if self.is_on() != before:
                self._condition.notify_all()
        return toggle

    async def drop_toggle(self, toggle: aiotoggles.Toggle) -> None:
        await self.drop_toggles([toggle])

    async def drop_toggles(self, toggles: Iterable[aiotoggles.Toggle]) -> None:
        async with self._condition:
            before = self.is_on()
            self._toggles.difference_update(toggles)
            if self.is_on() != before:
                self._condition.notify_all()


def install() -> bool:
    """Make kopf build `QuietToggleSet`s from now on; False if this kopf lacks what it relies on."""
    if aiotoggles.ToggleSet is QuietToggleSet:
        return True
    probe = _ORIGINAL(all)
    if not (hasattr(probe, "_condition") and isinstance(getattr(probe, "_toggles", None), set)):
        logger.warning("kopf's ToggleSet changed: index readiness left at kopf's own (quadratic) cost")
        return False
    aiotoggles.ToggleSet = QuietToggleSet  # type: ignore[misc]
    return True
