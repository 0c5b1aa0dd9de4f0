"""`destinations providers`: the catalog as a table, or as YAML/JSON with config schemas."""

from __future__ import annotations

import json

import pytest
import yaml

from destinations.cli import main
from destinations.providers.catalog import load_catalog


def test_table_has_one_row_per_provider_under_the_catalog_columns(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "KEY",
        "NAME",
        "JOB",
        "TYPES",
        "AUTH",
        "METHODS",
        "MODES",
        "DEFAULT",
        "SCHEDULE",
    ]
    assert [row.split()[0] for row in rows] == list(load_catalog())


def test_table_shows_job_types_auth_methods_and_the_default_schedule(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["providers"])
    mailchimp = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("mailchimp"))
    assert "import,export" in mailchimp
    assert "apiKey,oauth2" in mailchimp
    assert "upsert,mirror,insert,update" in mailchimp
    assert mailchimp.endswith("every 6h")


def test_yaml_output_lists_each_providers_modes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers", "-o", "yaml"]) == 0
    entries = {entry["key"]: entry for entry in yaml.safe_load(capsys.readouterr().out)}
    assert entries["mailchimp"]["modes"] == ["upsert", "mirror", "insert", "update"]
    assert entries["salesforce"]["modes"] == ["upsert", "mirror", "insert", "update"]
    assert entries["google"]["modes"] == ["upsert", "mirror"]
    assert entries["facebook"]["modes"] == ["upsert", "mirror"]
    assert entries["webhook"]["modes"] == ["upsert"]


def test_yaml_output_carries_each_job_types_config_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers", "-o", "yaml"]) == 0
    entries = {entry["key"]: entry for entry in yaml.safe_load(capsys.readouterr().out)}
    assert set(entries["mailchimp"]["config"]) == {"import", "export"}
    assert "listId" in entries["mailchimp"]["config"]["export"]["properties"]


def test_json_output_is_the_same_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers", "-o", "json"]) == 0
    assert [entry["key"] for entry in json.loads(capsys.readouterr().out)] == list(load_catalog())
