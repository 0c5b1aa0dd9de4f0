"""Shared pytest configuration. Fixtures live in tests/fixtures/, one module per concern."""

pytest_plugins = [
    "tests.fixtures.tools",
    "tests.fixtures.sandbox",
    "tests.fixtures.postgres",
    "tests.fixtures.rbac",
]
