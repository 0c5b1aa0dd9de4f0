"""Which jobs use which Authorization: usedBy and the deletion guard, kept per job event (issue 18)."""

from __future__ import annotations

from destinations.controller.usage import AuthorizationUsage

Heard = list[tuple[str, str, bool]]


def _usage() -> tuple[AuthorizationUsage, Heard]:
    heard: Heard = []
    usage = AuthorizationUsage()
    usage.subscribe(lambda namespace, name, count_changed: heard.append((namespace, name, count_changed)))
    return usage, heard


def test_a_new_job_counts_once_and_its_authorization_hears_the_count_change() -> None:
    usage, heard = _usage()
    usage.update("team", "export", "hook", None)
    usage.update("team", "export", "hook", None)
    assert usage.count("team", "hook") == 1
    assert heard == [("team", "hook", True)]


def test_a_phase_change_keeps_the_count_and_is_heard_as_a_phase_change() -> None:
    usage, heard = _usage()
    usage.update("team", "export", "hook", "Pending")
    usage.update("team", "export", "hook", "Sleeping")
    usage.update("team", "export", "hook", "Sleeping")
    assert usage.count("team", "hook") == 1
    assert heard == [("team", "hook", True), ("team", "hook", False)]


def test_pointing_a_job_at_another_authorization_moves_its_count() -> None:
    usage, heard = _usage()
    usage.update("team", "export", "old", "Sleeping")
    usage.update("team", "export", "new", "Sleeping")
    assert (usage.count("team", "old"), usage.count("team", "new")) == (0, 1)
    assert heard == [("team", "old", True), ("team", "old", True), ("team", "new", True)]


def test_a_job_without_a_reference_counts_nowhere() -> None:
    usage, heard = _usage()
    usage.update("team", "export", "hook", "Sleeping")
    usage.update("team", "export", None, "Sleeping")
    assert usage.count("team", "hook") == 0
    assert usage.users("team", "hook") == []
    assert heard == [("team", "hook", True), ("team", "hook", True)]


def test_a_forgotten_job_no_longer_counts() -> None:
    usage, heard = _usage()
    usage.update("team", "a", "hook", "Sleeping")
    usage.update("team", "b", "hook", "Sleeping")
    usage.forget("team", "a")
    usage.forget("team", "a")
    assert usage.count("team", "hook") == 1
    assert usage.users("team", "hook") == ["b"]
    assert len(heard) == 3


def test_namespaces_keep_their_own_counts() -> None:
    usage, _ = _usage()
    usage.update("team", "export", "hook", "Sleeping")
    usage.update("other", "export", "hook", "Sleeping")
    usage.update("other", "import", "hook", "Sleeping")
    assert (usage.count("team", "hook"), usage.count("other", "hook")) == (1, 2)


def test_only_active_or_undecided_jobs_block_a_deletion() -> None:
    usage, _ = _usage()
    for job, phase in [
        ("pending", "Pending"),
        ("running", "Running"),
        ("sleeping", "Sleeping"),
        ("paused", "Paused"),
        ("new", None),
        ("failed", "Failed"),
        ("completed", "Completed"),
    ]:
        usage.update("team", job, "hook", phase)
    assert usage.blocking("team", "hook") == ["new", "paused", "pending", "running", "sleeping"]
    assert usage.count("team", "hook") == 7
