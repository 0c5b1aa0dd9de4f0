"""docs/reference.md is generated from the models and current."""

from __future__ import annotations

from pathlib import Path

from destinations.api import reference

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference.md"


def test_reference_doc_matches_what_the_models_generate() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == reference.render(), (
        "docs/reference.md is stale; run `python -m destinations.api.reference --write docs/reference.md`"
    )


def test_reference_lists_nested_fields_with_their_defaults() -> None:
    assert "| `spec.retry.initialBackoff` | duration | `1m` |" in reference.render()


def test_reference_marks_required_fields() -> None:
    assert "| `spec.provider` | string, **required** |" in reference.render()


def test_reference_write_option_writes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "docs" / "reference.md"
    assert reference.main(["--write", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == reference.render()
