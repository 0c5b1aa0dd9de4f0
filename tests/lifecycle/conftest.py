"""Fixtures of the lifecycle tests: a job harness with a hand-moved clock."""

from __future__ import annotations

import pytest

from tests.lifecycle.harness import JobHarness


@pytest.fixture
def job() -> JobHarness:
    """A fresh `every: 1h` export job, not yet observed by the operator."""
    return JobHarness()
