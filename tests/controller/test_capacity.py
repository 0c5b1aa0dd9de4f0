"""The global cap on runs in flight."""

from __future__ import annotations

from destinations.controller.capacity import RunSlots


def test_no_cap_always_has_room() -> None:
    slots = RunSlots(0)
    for job in range(100):
        slots.update(job, True)
    assert slots.available_to("another")


def test_a_full_cap_queues_new_runs_but_not_the_holders() -> None:
    slots = RunSlots(2)
    slots.update("a", True)
    slots.update("b", True)
    assert not slots.available_to("c")
    assert slots.available_to("a")


def test_a_freed_slot_wakes_the_queue_once() -> None:
    woken: list[int] = []
    slots = RunSlots(1, on_release=lambda: woken.append(1))
    slots.update("a", True)
    slots.update("a", False)
    slots.update("a", False)
    assert woken == [1]
    assert slots.available_to("b")


def test_without_a_cap_nobody_is_woken() -> None:
    woken: list[int] = []
    slots = RunSlots(0, on_release=lambda: woken.append(1))
    slots.update("a", True)
    slots.update("a", False)
    assert woken == []
