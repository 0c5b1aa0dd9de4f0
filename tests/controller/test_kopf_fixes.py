"""kopf's index readiness at O(1) per object: waiters are woken when the set turns on, not per toggle.

See `destinations.controller.kopf_fixes` for the kopf functions this works around (issue 18).
"""

from __future__ import annotations

import asyncio

from kopf._cogs.aiokits import aiotoggles

from destinations.controller import kopf_fixes
from destinations.controller.kopf_fixes import QuietToggleSet


def _count_notifications(toggles: aiotoggles.ToggleSet) -> list[int]:
    calls = [0]
    condition = toggles._condition
    original = condition.notify_all

    def counting() -> None:
        calls[0] += 1
        original()

    condition.notify_all = counting  # type: ignore[method-assign]
    return calls


async def _index_like_kopf(toggles: aiotoggles.ToggleSet, objects: int) -> tuple[int, list[bool]]:
    """One toggle per object, each dropped once 'indexed' while every worker waits for the whole set."""
    blocker = await toggles.make_toggle(name="listing")
    per_object = [await toggles.make_toggle(name=f"object {index}") for index in range(objects)]
    calls = _count_notifications(toggles)
    done: list[bool] = []

    async def worker(toggle: aiotoggles.Toggle) -> None:
        await toggles.drop_toggle(toggle)
        await toggles.wait_for(True)
        done.append(True)

    workers = [asyncio.create_task(worker(toggle)) for toggle in per_object]
    await asyncio.sleep(0.01)
    assert done == []  # the listing still holds every handler
    await toggles.drop_toggle(blocker)
    await asyncio.wait_for(asyncio.gather(*workers), 5)
    return calls[0], done


def test_waiters_are_woken_once_when_the_last_object_is_indexed() -> None:
    notifications, done = asyncio.run(_index_like_kopf(QuietToggleSet(all), 200))
    assert len(done) == 200
    assert notifications == 1


def test_the_set_turning_off_again_wakes_those_waiting_for_off() -> None:
    async def scenario() -> bool:
        toggles = QuietToggleSet(all)
        waiter = asyncio.create_task(toggles.wait_for(False))
        await asyncio.sleep(0)
        await toggles.make_toggle(name="new object")
        await asyncio.wait_for(waiter, 5)
        return toggles.is_off()

    assert asyncio.run(scenario())


def test_a_member_toggle_turned_on_still_wakes_waiters() -> None:
    async def scenario() -> bool:
        toggles = QuietToggleSet(any)
        toggle = await toggles.make_toggle(False, name="peering")
        waiter = asyncio.create_task(toggles.wait_for(True))
        await asyncio.sleep(0)
        await toggle.turn_to(True)
        await asyncio.wait_for(waiter, 5)
        return toggles.is_on()

    assert asyncio.run(scenario())


def test_install_makes_kopf_build_the_quiet_set() -> None:
    assert kopf_fixes.install()
    assert aiotoggles.ToggleSet is QuietToggleSet
    assert isinstance(aiotoggles.ToggleSet(all), QuietToggleSet)
