"""Fixtures of the operator's integration tests: one sandbox and operator per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.operator.harness import OperatorCluster, operator_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, control_plane: str) -> Iterator[OperatorCluster]:
    """A sandbox, the operator and the fake provider, shared by a module's tests (a namespace each)."""
    yield from operator_cluster(tmp_path_factory.mktemp("cluster"), control_plane=control_plane)
