"""The CRDs in crds/ are generated from the models, current, and structural."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from destinations.api import crds
from destinations.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
CRDS_DIR = REPO_ROOT / "crds"


def _schemas() -> Iterator[tuple[str, dict[str, Any]]]:
    for crd in crds.all_crds():
        yield crd["spec"]["names"]["kind"], crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}" if path else name)
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}.*")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")


ALL_NODES = [(kind, path, node) for kind, schema in _schemas() for path, node in _walk(schema, "")]


@pytest.mark.parametrize("crd", crds.all_crds(), ids=crds.file_name)
def test_crds_directory_matches_what_the_models_generate(crd: dict[str, Any]) -> None:
    stored = CRDS_DIR / crds.file_name(crd)
    assert stored.read_text(encoding="utf-8") == crds.render(crd), (
        f"{stored} is stale; run `destinations crds --write crds/`"
    )


def test_crds_directory_holds_no_other_files() -> None:
    assert sorted(p.name for p in CRDS_DIR.iterdir()) == sorted(crds.file_name(c) for c in crds.all_crds())


def test_crds_command_prints_every_crd_as_one_yaml_stream(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds"]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert documents == crds.all_crds()


def test_crds_command_writes_one_file_per_crd(tmp_path: Path) -> None:
    assert main(["crds", "--write", str(tmp_path)]) == 0
    for crd in crds.all_crds():
        assert (tmp_path / crds.file_name(crd)).read_text(encoding="utf-8") == crds.render(crd)


NODE_IDS = [f"{kind}:{path or '<root>'}" for kind, path, _ in ALL_NODES]


@pytest.mark.parametrize(("kind", "path", "node"), ALL_NODES, ids=NODE_IDS)
def test_every_schema_node_has_a_type(kind: str, path: str, node: dict[str, Any]) -> None:
    if node.get("x-kubernetes-int-or-string"):
        # The one structural form of int-or-string: no type, anyOf integer or string.
        assert "type" not in node and node["anyOf"] == [{"type": "integer"}, {"type": "string"}]
        return
    assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}


def test_no_schema_node_has_additional_properties_beside_properties() -> None:
    offenders = [f"{k}:{p}" for k, p, n in ALL_NODES if "properties" in n and "additionalProperties" in n]
    assert offenders == []


def test_unknown_fields_are_preserved_only_in_config() -> None:
    preserving = {p for k, p, n in ALL_NODES if n.get("x-kubernetes-preserve-unknown-fields")}
    assert preserving == {"spec.config"}


def test_quantities_are_int_or_string_like_a_pods() -> None:
    int_or_string = {p for k, p, n in ALL_NODES if n.get("x-kubernetes-int-or-string")}
    assert int_or_string == {"spec.podTemplate.resources.requests.*", "spec.podTemplate.resources.limits.*"}
    resources = dict(_schemas())["DestinationJob"]["properties"]["spec"]["properties"]["podTemplate"]
    quantity = resources["properties"]["resources"]["properties"]["limits"]["additionalProperties"]
    assert quantity == {
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
        r"(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$",
    }


def test_no_schema_node_uses_json_schema_only_keywords() -> None:
    allowed = {
        "type", "description", "default", "properties", "required", "additionalProperties", "items",
        "enum", "pattern", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "minItems", "maxItems", "minProperties", "maxProperties", "format",
        "x-kubernetes-preserve-unknown-fields",
    }  # fmt: skip
    int_or_string = {"anyOf", "x-kubernetes-int-or-string"}  # the structural int-or-string form only
    offenders = {
        f"{k}:{p}": sorted(
            set(n) - allowed - (int_or_string if n.get("x-kubernetes-int-or-string") else set())
        )
        for k, p, n in ALL_NODES
        if set(n) - allowed - (int_or_string if n.get("x-kubernetes-int-or-string") else set())
    }
    assert offenders == {}


def test_durations_default_the_way_users_write_them() -> None:
    job = dict(_schemas())["DestinationJob"]["properties"]["spec"]["properties"]
    assert job["retry"]["properties"]["initialBackoff"]["default"] == "1m"
    assert job["purgeAfter"]["default"] == "90d"
    authorization = dict(_schemas())["Authorization"]["properties"]["spec"]["properties"]
    assert authorization["checkInterval"]["default"] == "24h"


def test_status_schemas_carry_no_defaults_or_required_fields() -> None:
    status_nodes = [n for k, p, n in ALL_NODES if p.startswith("status")]
    assert status_nodes
    assert not [n for n in status_nodes if "default" in n or "required" in n]


def test_field_docstrings_become_descriptions() -> None:
    retry = dict(_schemas())["DestinationJob"]["properties"]["spec"]["properties"]["retry"]
    assert retry["description"] == "Backoff after errors and when to give up."
    assert "doubles" in retry["properties"]["initialBackoff"]["description"]


def test_destination_job_names_fit_in_a_label_value() -> None:
    metadata = dict(_schemas())["DestinationJob"]["properties"]["metadata"]
    assert metadata["properties"]["name"]["maxLength"] == 63


def test_destination_job_printer_columns_follow_the_design() -> None:
    columns = crds.destination_job_crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    default = [(c["name"].upper(), c["jsonPath"]) for c in columns if not c.get("priority")]
    wide = [(c["name"].upper(), c["jsonPath"], c["type"]) for c in columns if c.get("priority") == 1]
    assert default == [
        ("AUTHORIZATION", ".spec.authorizationRef.name"),
        ("PROVIDER", ".spec.provider"),
        ("TYPE", ".spec.type"),
        ("STATUS", ".status.phase"),
        ("AGE", ".metadata.creationTimestamp"),
    ]
    assert wide == [
        ("LAST-SYNC", ".status.lastRun.finishedAt", "date"),
        ("NEXT-RUN", ".status.nextRunAt", "string"),
        ("MESSAGE", ".status.message", "string"),
    ]


def test_authorization_printer_columns_follow_the_design() -> None:
    columns = crds.authorization_crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"].upper(), c["jsonPath"], c["type"]) for c in columns] == [
        ("PROVIDER", ".spec.provider", "string"),
        ("METHOD", ".spec.method", "string"),
        ("HEALTH", ".status.health", "string"),
        ("USED-BY", ".status.usedBy", "integer"),
        ("AGE", ".metadata.creationTimestamp", "date"),
    ]


@pytest.mark.parametrize(
    ("kind", "short_names"), [("Authorization", ["dauth"]), ("DestinationJob", ["dj", "djob"])]
)
def test_crd_names_short_names_and_category(kind: str, short_names: list[str]) -> None:
    crd = next(c for c in crds.all_crds() if c["spec"]["names"]["kind"] == kind)
    assert crd["spec"]["group"] == "destinations.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["shortNames"] == short_names
    assert crd["spec"]["names"]["categories"] == ["destinations"]
    version = crd["spec"]["versions"][0]
    assert (version["name"], version["served"], version["storage"]) == ("v1", True, True)
    assert version["subresources"] == {"status": {}}


def test_a_free_form_field_that_is_not_declared_is_refused() -> None:
    from pydantic import BaseModel

    class Loose(BaseModel):
        anything: dict[str, object] = {}

    with pytest.raises(crds.SchemaNotStructural, match="free-form"):
        crds.structural_schema(Loose, "spec")
