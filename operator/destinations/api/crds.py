"""The CustomResourceDefinitions of `destinations.dev/v1`, generated from the pydantic models.

The models are the single source of truth; this module turns their JSON schema into the *structural*
OpenAPI v3 schema Kubernetes requires (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/
custom-resource-definitions/#specifying-a-structural-schema): a `type` at every level, `$ref`s inlined,
no `additionalProperties` next to `properties`, and `x-kubernetes-preserve-unknown-fields` only where a
field is deliberately free-form. Anything the conversion does not understand is an error rather than a
silently wrong schema, so a model change that Kubernetes could not express fails the tests.

`crds/` holds the output (`destinations crds --write crds/`); a test fails when it is stale.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from destinations.api.durations import format_duration
from destinations.api.models import (
    DNS_SUBDOMAIN_PATTERN,
    AuthorizationSpec,
    AuthorizationStatus,
    DestinationJobSpec,
    DestinationJobStatus,
)

GROUP = "destinations.dev"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "destinations"

#: DestinationJob names become label values (`destinations.dev/job`), which Kubernetes caps at 63 characters.
JOB_NAME_MAX_LENGTH = 63
OBJECT_NAME_MAX_LENGTH = 253

#: The only free-form fields, as paths inside the CRD schema. Everything else is fully typed.
PRESERVE_UNKNOWN_FIELDS = frozenset({"spec.config"})

#: JSON-schema keywords copied as they are (same meaning in OpenAPI v3 as used by Kubernetes).
_VALUE_KEYWORDS = (
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "format",
)
#: Keywords that carry no meaning for Kubernetes and are dropped.
_IGNORED_KEYWORDS = frozenset({"title", "$defs"})
_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_INT_OR_STRING = "x-kubernetes-int-or-string"
#: The only alternatives an int-or-string field may name (structural schema rules).
_INT_OR_STRING_TYPES = [{"type": "integer"}, {"type": "string"}]


class SchemaNotStructural(ValueError):
    """A model uses a JSON-schema construct that has no structural OpenAPI equivalent."""


class _DurationDefaults(GenerateJsonSchema):
    """Writes duration defaults the way users write them (`1m`, `90d`), not as ISO 8601 (`PT1M`)."""

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return _format_default_duration(dft)
        return super().encode_default(dft)


def _format_default_duration(value: timedelta) -> str:
    """Like `format_duration`, but a day or so reads better in hours: `24h`, as DESIGN.md writes it."""
    if timedelta(days=1) <= value < timedelta(days=2):
        hours, rest = divmod(value, timedelta(hours=1))
        return f"{hours}h" + (format_duration(rest) if rest else "")
    return format_duration(value)


def _one_line(text: str) -> str:
    """Docstrings wrap lines for the source; `kubectl explain` wraps for the terminal."""
    return re.sub(r"\s+", " ", text).strip()


def structural_schema(model: type[BaseModel], path: str, *, for_status: bool = False) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of `model`, placed at `path` (e.g. `spec`) of the object.

    For status, defaults and `required` are left out: status is written whole by the operator, and the
    API server must never invent or refuse parts of it.
    """
    raw = model.model_json_schema(by_alias=True, schema_generator=_DurationDefaults)
    return _Converter(raw.get("$defs", {}), for_status).convert(raw, path)


class _Converter:
    def __init__(self, definitions: Mapping[str, Any], for_status: bool) -> None:
        self.definitions = definitions
        self.for_status = for_status

    def _resolve(self, node: Mapping[str, Any]) -> dict[str, Any]:
        """Inline `$ref` and collapse `anyOf: [X, null]` / single `allOf` into X, keeping the outer keys."""
        node = dict(node)
        if "$ref" in node:
            target = self.definitions[str(node.pop("$ref")).rsplit("/", 1)[-1]]
            node = {**target, **node, "description": node.get("description", target.get("description"))}
        for combinator in ("anyOf", "allOf", "oneOf"):
            if combinator in node:
                options = [option for option in node.pop(combinator) if option != {"type": "null"}]
                if len(options) != 1:
                    raise SchemaNotStructural(f"{combinator} with {len(options)} non-null alternatives")
                inner = self._resolve(options[0])
                node = {**inner, **{k: v for k, v in node.items() if v is not None}}
                if "description" not in node and "description" in inner:
                    node["description"] = inner["description"]
        if node.get("description") is None:
            node.pop("description", None)
        return node

    def convert(self, node: Mapping[str, Any], path: str) -> dict[str, Any]:
        if node.get(_INT_OR_STRING):
            return self._int_or_string(node, path)
        node = self._resolve(node)
        unknown = set(node) - {
            "type",
            "description",
            "default",
            "properties",
            "required",
            "additionalProperties",
            "items",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "const",
            _PRESERVE,
            *_VALUE_KEYWORDS,
            *_IGNORED_KEYWORDS,
        }
        if unknown:
            raise SchemaNotStructural(f"{path}: unsupported keywords {sorted(unknown)}")
        if "type" not in node and "const" in node:
            node["type"] = _json_type(node["const"])
        if "type" not in node:
            raise SchemaNotStructural(f"{path}: no type")
        out: dict[str, Any] = {"type": node["type"]}
        if "description" in node:
            out["description"] = _one_line(node["description"])
        for keyword in _VALUE_KEYWORDS:
            if keyword in node:
                out[keyword] = node[keyword]
        if "const" in node:
            out["enum"] = [node["const"]]
        # JSON Schema 2020-12 writes exclusive bounds as numbers, OpenAPI v3.0 as flags on minimum/maximum.
        if "exclusiveMinimum" in node:
            out["minimum"], out["exclusiveMinimum"] = node["exclusiveMinimum"], True
        if "exclusiveMaximum" in node:
            out["maximum"], out["exclusiveMaximum"] = node["exclusiveMaximum"], True

        if node["type"] == "object":
            self._convert_object(node, path, out)
        elif node["type"] == "array":
            if "items" not in node:
                raise SchemaNotStructural(f"{path}: array without items")
            out["items"] = self.convert(node["items"], f"{path}[]")
        if "default" in node and not self.for_status:
            default = _crd_default(node["default"], out)
            if default is not None:
                out["default"] = default
        return out

    def _int_or_string(self, node: Mapping[str, Any], path: str) -> dict[str, Any]:
        """An `x-kubernetes-int-or-string` field (a quantity): no `type`, `anyOf` integer or string, as
        the structural-schema rules demand; a `pattern` applies to the string form only."""
        if node.get("anyOf") != _INT_OR_STRING_TYPES or set(node) - {
            "anyOf",
            _INT_OR_STRING,
            "pattern",
            "description",
        }:
            raise SchemaNotStructural(
                f"{path}: {_INT_OR_STRING} takes anyOf integer, string and a pattern only"
            )
        out: dict[str, Any] = {_INT_OR_STRING: True, "anyOf": list(_INT_OR_STRING_TYPES)}
        if "description" in node:
            out["description"] = _one_line(node["description"])
        if "pattern" in node:
            out["pattern"] = node["pattern"]
        return out

    def _convert_object(self, node: Mapping[str, Any], path: str, out: dict[str, Any]) -> None:
        properties = node.get("properties")
        additional = node.get("additionalProperties")
        if properties:
            out["properties"] = {
                name: self.convert(child, f"{path}.{name}") for name, child in properties.items()
            }
            required = node.get("required")
            if required and not self.for_status:
                out["required"] = list(required)
        elif isinstance(additional, Mapping):
            out["additionalProperties"] = self.convert(additional, f"{path}.*")
        elif path in PRESERVE_UNKNOWN_FIELDS:
            out[_PRESERVE] = True
        else:
            raise SchemaNotStructural(
                f"{path}: a free-form object; type it, or add it to PRESERVE_UNKNOWN_FIELDS on purpose"
            )
        if node.get(_PRESERVE) and path not in PRESERVE_UNKNOWN_FIELDS:
            raise SchemaNotStructural(f"{path}: {_PRESERVE} outside PRESERVE_UNKNOWN_FIELDS")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _crd_default(default: Any, schema: Mapping[str, Any]) -> Any:
    """The default the API server should apply, or None for none.

    An object whose fields have defaults defaults to `{}`, letting the nested defaults fill it in (one
    place per default). Empty lists and maps are left out: absent and empty mean the same, and the
    stored object stays as the user wrote it.
    """
    if isinstance(default, dict) and "properties" in schema:
        has_nested_defaults = any("default" in child for child in schema["properties"].values())
        return {} if has_nested_defaults else None
    if default in ({}, []) or default is None:
        return None
    return default


# ------------------------------------------------------------------------------------------ the CRDs


def _metadata_schema(max_name_length: int) -> dict[str, Any]:
    """Only `metadata.name` (and `generateName`) may be constrained in a CRD schema."""
    return {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": max_name_length, "pattern": DNS_SUBDOMAIN_PATTERN},
        },
    }


def _object_schema(
    kind_description: str,
    spec: type[BaseModel],
    status: type[BaseModel],
    max_name_length: int,
) -> dict[str, Any]:
    return {
        "type": "object",
        "description": kind_description,
        "properties": {
            "apiVersion": {"type": "string", "description": f"`{API_VERSION}`."},
            "kind": {"type": "string"},
            "metadata": _metadata_schema(max_name_length),
            "spec": structural_schema(spec, "spec"),
            "status": structural_schema(status, "status", for_status=True),
        },
        "required": ["spec"],
    }


def _column(name: str, json_path: str, column_type: str = "string", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": column_type, "jsonPath": json_path}
    if priority:
        column["priority"] = priority
    return column


_AGE = _column("Age", ".metadata.creationTimestamp", "date")


def _crd(
    kind: str,
    plural: str,
    short_names: list[str],
    schema: dict[str, Any],
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def authorization_crd() -> dict[str, Any]:
    schema = _object_schema(
        "Credentials for one provider, kept in a Secret of the same namespace and health-checked by the "
        "operator.",
        AuthorizationSpec,
        AuthorizationStatus,
        OBJECT_NAME_MAX_LENGTH,
    )
    columns = [
        _column("Provider", ".spec.provider"),
        _column("Method", ".spec.method"),
        _column("Health", ".status.health"),
        _column("Used-By", ".status.usedBy", "integer"),
        _AGE,
    ]
    return _crd("Authorization", "authorizations", ["dauth"], schema, columns)


def destination_job_crd() -> dict[str, Any]:
    schema = _object_schema(
        "A data-sync job between a source of customer data and a marketing tool, run by the operator in its "
        "own pods.",
        DestinationJobSpec,
        DestinationJobStatus,
        JOB_NAME_MAX_LENGTH,
    )
    columns = [
        _column("Authorization", ".spec.authorizationRef.name"),
        _column("Provider", ".spec.provider"),
        _column("Type", ".spec.type"),
        _column("Status", ".status.phase"),
        _AGE,
        _column("Last-Sync", ".status.lastRun.finishedAt", "date", priority=1),
        # A string, not a date: kubectl renders future dates as "<invalid>".
        _column("Next-Run", ".status.nextRunAt", priority=1),
        _column("Message", ".status.message", priority=1),
    ]
    return _crd("DestinationJob", "destinationjobs", ["dj", "djob"], schema, columns)


def all_crds() -> list[dict[str, Any]]:
    """Both CRDs, in a stable order."""
    return [authorization_crd(), destination_job_crd()]


HEADER = "# Generated from destinations.api.models by `destinations crds --write crds/`; do not edit.\n"


class _PlainDumper(yaml.SafeDumper):
    """Writes repeated values out in full: anchors and aliases (`&id001`) only puzzle readers of a CRD."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(crd: Mapping[str, Any]) -> str:
    """One CRD as a YAML document (keys sorted, as controller-gen writes them)."""
    return HEADER + yaml.dump(dict(crd), Dumper=_PlainDumper, sort_keys=True, width=120, allow_unicode=True)


def render_all() -> str:
    """Every CRD as one multi-document YAML stream."""
    return "---\n".join(render(crd) for crd in all_crds())


def file_name(crd: Mapping[str, Any]) -> str:
    return f"{crd['metadata']['name']}.yaml"


def write_all(directory: Path) -> list[Path]:
    """Write one file per CRD (`<plural>.<group>.yaml`) into `directory`; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for crd in all_crds():
        target = directory / file_name(crd)
        target.write_text(render(crd), encoding="utf-8")
        written.append(target)
    return written
