"""The Dockerfile, parsed (no Docker engine here): non-root numeric user, entrypoint, OCI labels."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

import pytest

from destinations import DEFAULT_IMAGE
from tests.shipping.rendering import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with line continuations joined and comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    )
    parsed = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            parsed.append(Instruction(keyword.upper(), arguments.strip()))
    return parsed


def final_stage() -> list[Instruction]:
    parsed = instructions(DOCKERFILE.read_text(encoding="utf-8"))
    last_from = max(index for index, instruction in enumerate(parsed) if instruction.keyword == "FROM")
    return parsed[last_from:]


def last(keyword: str) -> str:
    found = [instruction.arguments for instruction in final_stage() if instruction.keyword == keyword]
    assert found, f"the final stage has no {keyword}"
    return found[-1]


def labels() -> dict[str, str]:
    pairs: dict[str, str] = {}
    for instruction in final_stage():
        if instruction.keyword == "LABEL":
            for token in shlex.split(instruction.arguments):
                key, _, value = token.partition("=")
                pairs[key] = value
    return pairs


def environment() -> dict[str, str]:
    pairs: dict[str, str] = {}
    for instruction in final_stage():
        if instruction.keyword == "ENV":
            for token in shlex.split(instruction.arguments):
                key, _, value = token.partition("=")
                pairs[key] = value
    return pairs


def test_dockerfile_is_multi_stage_on_python_3_11_slim() -> None:
    parsed = instructions(DOCKERFILE.read_text(encoding="utf-8"))
    assert len([i for i in parsed if i.keyword == "FROM"]) >= 2
    assert "PYTHON_IMAGE=python:3.11-slim" in [i.arguments for i in parsed if i.keyword == "ARG"]


def test_final_stage_runs_as_a_numeric_non_root_user() -> None:
    user, _, group = last("USER").partition(":")
    assert user.isdigit() and int(user) != 0
    assert not group or (group.isdigit() and int(group) != 0)


def test_final_stage_user_matches_the_pods_run_as_user() -> None:
    assert last("USER").partition(":")[0] == "65532"


def test_entrypoint_is_the_destinations_command_and_defaults_to_the_operator() -> None:
    assert json.loads(last("ENTRYPOINT")) == ["destinations"]
    assert json.loads(last("CMD")) == ["operator"]


def test_image_works_with_a_read_only_root_filesystem() -> None:
    env = environment()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == "/tmp"
    assert env["TMPDIR"] == "/tmp"


@pytest.mark.parametrize(
    "label",
    [
        "org.opencontainers.image.title",
        "org.opencontainers.image.description",
        "org.opencontainers.image.source",
        "org.opencontainers.image.version",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.created",
        "org.opencontainers.image.licenses",
    ],
)
def test_final_stage_has_the_oci_label(label: str) -> None:
    assert labels().get(label)


def test_image_version_label_defaults_to_the_package_version() -> None:
    version_arg = next(
        i.arguments for i in final_stage() if i.keyword == "ARG" and i.arguments.startswith("VERSION=")
    )
    assert DEFAULT_IMAGE.endswith(":" + version_arg.partition("=")[2])


def test_dockerignore_keeps_the_build_context_to_what_the_image_needs() -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert lines[lines.index("*") :].count("*") == 1
    assert {"!pyproject.toml", "!README.md", "!operator/"} <= set(lines)
