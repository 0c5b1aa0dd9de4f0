"""The field reference of both kinds (docs/reference.md), generated from the same schemas as the CRDs.

Regenerate with `python -m destinations.api.reference --write docs/reference.md`; a test fails when the
file is stale, so the docs cannot drift from the models.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

from destinations.api import crds
from destinations.api.durations import DURATION_PATTERN
from destinations.api.generated_docs import print_or_write

INTRODUCTION = """\
# API reference: `destinations.dev/v1`

Generated from `destinations.api.models` by `python -m destinations.api.reference --write docs/reference.md`;
do not edit. The same models generate the CRDs in `crds/` and drive `destinations validate` and the
admission checks. Design decisions and extensions to the product contract are in
[api-notes.md](api-notes.md); `kubectl explain destinationjob.spec.retry` shows the same descriptions.

Durations are Go-style (`90s`, `15m`, `1h30m`, `10h`), plus `d` for days (`90d`).
"""


def _type_of(schema: Mapping[str, Any]) -> str:
    if schema.get("x-kubernetes-int-or-string"):
        return "quantity (string or integer)"
    kind = schema["type"]
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return "object (free-form)"
    if kind == "string" and schema.get("pattern", "").endswith(DURATION_PATTERN[1:]):
        return "duration or `never`" if "never" in schema["pattern"] else "duration"
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        return f"map[string]{_type_of(schema['additionalProperties'])}"
    if kind == "array":
        return f"[]{_type_of(schema['items'])}"
    return str(kind)


def _default_of(schema: Mapping[str, Any]) -> str:
    if "default" not in schema or schema["default"] == {}:
        return ""
    default = schema["default"]
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, list):
        return "`[" + ", ".join(map(str, default)) + "]`"
    return f"`{default}`"


def _rows(schema: Mapping[str, Any], path: str) -> Iterator[tuple[str, str, str, str]]:
    required = set(schema.get("required", ()))
    for name, child in schema.get("properties", {}).items():
        child_path = f"{path}.{name}"
        child_type = _type_of(child)
        if name in required:
            child_type += ", **required**"
        description = child.get("description", "").replace("|", "\\|")
        yield f"`{child_path}`", child_type, _default_of(child), description
        is_array = child.get("type") == "array"
        nested = child.get("items", child) if is_array else child
        yield from _rows(nested, f"{child_path}[]" if is_array else child_path)


def _table(schema: Mapping[str, Any], path: str) -> str:
    lines = ["| field | type | default | description |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(schema, path)]
    return "\n".join(lines) + "\n"


def render() -> str:
    """The whole reference as Markdown."""
    parts = [INTRODUCTION]
    for crd in crds.all_crds():
        names = crd["spec"]["names"]
        version = crd["spec"]["versions"][0]
        root = version["schema"]["openAPIV3Schema"]
        columns = ", ".join(
            column["name"].upper() + (" (wide)" if column.get("priority") else "")
            for column in version["additionalPrinterColumns"]
        )
        short_names = ", ".join(f"`{name}`" for name in names["shortNames"])
        category = names["categories"][0]
        max_name_length = root["properties"]["metadata"]["properties"]["name"]["maxLength"]
        parts.append(
            f"\n## {names['kind']}\n\n{root['description']}\n\n"
            f"- `kubectl get {names['plural']}` (short names {short_names}; category `{category}`)\n"
            f"- Columns: NAME, {columns}\n"
            f"- Names: at most {max_name_length} characters, lower-case letters, digits, `-` and `.`\n"
        )
        for part in ("spec", "status"):
            schema = root["properties"][part]
            written_by = "written by users" if part == "spec" else "written by the operator only"
            parts.append(f"\n### {names['kind']} `{part}` ({written_by})\n\n{schema['description']}\n\n")
            parts.append(_table(schema, part))
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    return print_or_write(render, argv, prog="python -m destinations.api.reference", description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
