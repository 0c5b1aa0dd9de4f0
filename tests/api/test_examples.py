"""Every example in examples/ is valid, and together they cover what the docs promise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from destinations.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FILES = sorted(EXAMPLES.rglob("*.yaml"))


def _objects(kind: str) -> list[dict[str, Any]]:
    found = []
    for path in FILES:
        found += [
            d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d and d.get("kind") == kind
        ]
    return found


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(EXAMPLES)) for p in FILES])
def test_example_passes_destinations_validate(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(path)]) == 0, capsys.readouterr().out


def test_examples_validate_together_so_every_job_matches_its_authorizations_provider(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", *map(str, FILES)]) == 0, capsys.readouterr().out


def test_there_is_an_example_job_for_every_job_type() -> None:
    assert {job["spec"]["type"] for job in _objects("DestinationJob")} == {"import", "export", "enrichment"}


def test_there_is_an_authorization_example_for_every_provider() -> None:
    assert {a["spec"]["provider"] for a in _objects("Authorization")} == {
        "webhook",
        "mailchimp",
        "facebook",
        "google",
        "salesforce",
    }


@pytest.mark.parametrize(
    "feature",
    ["once", "cron-with-timezone", "paused", "mirror"],
)
def test_the_examples_show(feature: str) -> None:
    specs = [job["spec"] for job in _objects("DestinationJob")]
    shown = {
        "once": any(s.get("schedule", {}).get("once") for s in specs),
        "cron-with-timezone": any(s.get("schedule", {}).get("timezone") for s in specs),
        "paused": any(s.get("paused") for s in specs),
        "mirror": any(s.get("mode") == "mirror" for s in specs),
    }
    assert shown[feature]


def test_example_secrets_hold_only_marked_placeholders() -> None:
    for secret in _objects("Secret"):
        for key, value in secret.get("stringData", {}).items():
            assert "REPLACE-ME" in value, f"{secret['metadata']['name']}.{key} must be a marked placeholder"
