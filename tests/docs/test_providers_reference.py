"""docs/providers.md is generated from the provider plug-ins and current."""

from __future__ import annotations

from pathlib import Path

from destinations.api.models import JobType
from destinations.providers import load_catalog, reference
from tests.api.conftest import AcmeProvider

PROVIDERS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "providers.md"


def test_providers_page_matches_what_the_plug_ins_generate() -> None:
    assert PROVIDERS_PAGE.read_text(encoding="utf-8") == reference.render(), (
        "docs/providers.md is stale; run "
        "`python -m destinations.providers.reference --write docs/providers.md`"
    )


def test_every_provider_and_job_type_has_a_section() -> None:
    page = reference.render()
    for provider in load_catalog().values():
        assert f"(`{provider.key}`)" in page
        for job_type in provider.job_types:
            assert f"### `{job_type.value}` jobs" in page


def test_config_fields_show_type_default_and_description() -> None:
    assert "| `batchSize` | integer | `100` | Records per request. (1 to 10000) |" in reference.render()


def test_auth_methods_name_the_secret_keys_they_need() -> None:
    assert "| `basic` | `username`, `password` |  |" in reference.render()


def test_a_provider_without_an_example_file_gets_a_minimal_job() -> None:
    page = reference.render({"acme": AcmeProvider()})
    assert "Example (a minimal job)" in page
    assert "listId: REPLACE-ME" in page


def test_examples_are_found_by_provider_and_job_type() -> None:
    webhook = load_catalog()["webhook"]
    names = [path.name for path in reference.example_files(webhook, JobType.ENRICHMENT)]
    assert names == ["webhook-enrichment-backfill-once.yaml", "webhook-enrichment-from-url.yaml"]


def test_write_option_writes_the_page(tmp_path: Path) -> None:
    target = tmp_path / "providers.md"
    assert reference.main(["--write", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == reference.render()


def test_modes_show_with_the_reason_a_provider_lacks_some() -> None:
    page = reference.render()
    assert "- Sync modes (`spec.mode`, exports): upsert, mirror, insert, update\n" in page  # salesforce
    assert (
        "- Sync modes (`spec.mode`, exports): upsert, mirror. No insert or update: the Data Manager API "
        "ingests and removes members but cannot be asked who is on a list "
        "(<https://developers.google.com/data-manager/api/reference/rest/v1/audienceMembers>: no persistent "
        "data, methods ingest, remove, removeAll), so a run cannot leave existing members untouched or add "
        "nobody new.\n"
    ) in page
