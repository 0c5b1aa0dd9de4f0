"""The hand-written guides cover every reason, event, phase and status field the code has, and their
links resolve, so the docs cannot silently fall behind the operator."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from destinations.api.models import AuthorizationStatus, DestinationJobStatus, Health, Phase
from destinations.lifecycle.core import JobEvent, Reason

REPOSITORY = Path(__file__).resolve().parents[2]
DOCS = REPOSITORY / "docs"
PAGES = sorted([REPOSITORY / "README.md", *DOCS.glob("*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")


def read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def table_rows_starting_with(page: str, cell: str) -> list[str]:
    return [line for line in page.splitlines() if line.startswith(f"| {cell} |")]


def github_anchors(page: str) -> set[str]:
    """The anchors GitHub makes from a page's headings."""
    anchors = set()
    in_code = False
    for line in page.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            heading = line.lstrip("#").strip().lower()
            kept = "".join(char for char in heading if char.isalnum() or char in " -_")
            anchors.add(kept.replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_troubleshooting_explains_every_reason(reason: Reason) -> None:
    assert table_rows_starting_with(read("troubleshooting.md"), f"`{reason.value}`"), (
        f"docs/troubleshooting.md has no row for reason {reason.value}"
    )


@pytest.mark.parametrize("health", list(Health), ids=str)
def test_troubleshooting_explains_every_authorization_health(health: Health) -> None:
    assert table_rows_starting_with(read("troubleshooting.md"), f"`{health.value}`")


@pytest.mark.parametrize("event", list(JobEvent), ids=str)
def test_status_reference_lists_every_event(event: JobEvent) -> None:
    assert table_rows_starting_with(read("status-and-events.md"), f"`{event.value}`")


@pytest.mark.parametrize("alias", [field.alias for field in DestinationJobStatus.model_fields.values()])
def test_status_reference_lists_every_job_status_field(alias: str) -> None:
    assert table_rows_starting_with(read("status-and-events.md"), f"`{alias}`")


def test_status_reference_lists_every_authorization_status_field() -> None:
    page = read("status-and-events.md").split("## Authorization status", 1)[1]
    for field in AuthorizationStatus.model_fields.values():
        assert table_rows_starting_with(page, f"`{field.alias}`"), field.alias


@pytest.mark.parametrize("phase", list(Phase), ids=str)
def test_concepts_describe_every_phase(phase: Phase) -> None:
    assert table_rows_starting_with(read("concepts.md"), f"`{phase.value}`")


def test_concepts_draw_the_lifecycle_as_a_mermaid_diagram() -> None:
    page = read("concepts.md")
    assert "```mermaid\nstateDiagram-v2" in page
    for phase in Phase:
        assert f"--> {phase.value}" in page or f"{phase.value} -->" in page


def test_readme_links_every_guide() -> None:
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    for page in DOCS.glob("*.md"):
        assert f"(docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_relative_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if path_part.endswith("lifecycle.md") and not linked.exists():
            continue  # written by the lifecycle's engineer; may land after this page
        assert linked.exists(), f"{page.name} links to missing {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in github_anchors(linked.read_text(encoding="utf-8")), (
                f"{page.name} links to missing anchor {target}"
            )
