"""The status patches the operator sends: only what changed, nulls for what went away."""

from __future__ import annotations

from destinations.controller.patches import merge_patch


def test_unchanged_documents_need_no_patch() -> None:
    status = {"phase": "Sleeping", "runs": {"total": 2}}
    assert merge_patch(status, dict(status)) == {}


def test_changed_fields_are_sent_alone() -> None:
    before = {"phase": "Running", "runs": {"total": 2, "failed": 0}, "message": "x"}
    after = {"phase": "Sleeping", "runs": {"total": 2, "failed": 1}, "message": "x"}
    assert merge_patch(before, after) == {"phase": "Sleeping", "runs": {"failed": 1}}


def test_fields_that_went_away_are_removed_with_null() -> None:
    before = {"phase": "Running", "currentRun": {"number": 3, "pod": "job-run-3"}}
    assert merge_patch(before, {"phase": "Sleeping"}) == {"phase": "Sleeping", "currentRun": None}


def test_lists_are_replaced_whole() -> None:
    before = {"history": [{"event": "Started"}]}
    after = {"history": [{"event": "Started"}, {"event": "Synced"}]}
    assert merge_patch(before, after) == after
