"""Label and field selectors, parsed once per request and matched per object.

The grammar follows the Kubernetes "Labels and Selectors" and "Field Selectors" concept pages:
equality (`=`, `==`, `!=`) and set-based (`in`, `notin`, `key`, `!key`) requirements joined by commas.
Unsupported field labels are refused with 400, as the real server does, so a typo in the operator's
selector fails loudly here instead of silently matching everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._errors import ApiError, bad_request

Json = dict[str, Any]

_LABEL_REQUIREMENT = re.compile(
    r"""^\s*(?P<not>!)?\s*(?P<key>[A-Za-z0-9._/-]+)\s*
        (?:(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9._-]*)
          |\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\)
        )?\s*$""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class LabelRequirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str]

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        if self.operator in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" also match objects without the label, per the selector semantics.
        return not present or labels[self.key] not in self.values


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside an `in (...)` value list."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def parse_label_selector(text: str | None) -> tuple[LabelRequirement, ...]:
    if not text:
        return ()
    requirements = []
    for part in _split_top_level(text):
        match = _LABEL_REQUIREMENT.match(part)
        if not match:
            raise bad_request(
                f"unable to parse requirement: found '{part.strip()}', expected: valid label selector"
            )
        key = match["key"]
        if match["not"]:
            if match["op"] or match["setop"]:
                raise bad_request(f"unable to parse requirement: {part.strip()}")
            requirements.append(LabelRequirement(key, "!exists", frozenset()))
        elif match["op"]:
            operator = "!=" if match["op"] == "!=" else "="
            requirements.append(LabelRequirement(key, operator, frozenset([match["value"]])))
        elif match["setop"]:
            values = frozenset(value.strip() for value in match["values"].split(",") if value.strip())
            requirements.append(LabelRequirement(key, match["setop"], values))
        else:
            requirements.append(LabelRequirement(key, "exists", frozenset()))
    return tuple(requirements)


def labels_match(requirements: tuple[LabelRequirement, ...], obj: Json) -> bool:
    if not requirements:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(requirement.matches(labels) for requirement in requirements)


def _path_getter(*path: str) -> Callable[[Json], str]:
    def get(obj: Json) -> str:
        value: Any = obj
        for step in path:
            if not isinstance(value, dict):
                return ""
            value = value.get(step)
        return "" if value is None else str(value)

    return get


_COMMON_FIELDS: dict[str, Callable[[Json], str]] = {
    "metadata.name": _path_getter("metadata", "name"),
    "metadata.namespace": _path_getter("metadata", "namespace"),
}

#: Field labels each built-in resource supports beyond metadata.name and metadata.namespace.
_RESOURCE_FIELDS: dict[tuple[str, str], dict[str, Callable[[Json], str]]] = {
    ("", "events"): {
        **{
            f"involvedObject.{name}": _path_getter("involvedObject", name)
            for name in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
        },
        "reason": _path_getter("reason"),
        "reportingComponent": _path_getter("reportingComponent"),
        "source": _path_getter("source", "component"),
        "type": _path_getter("type"),
    },
    ("events.k8s.io", "events"): {
        **{
            f"regarding.{name}": _path_getter("regarding", name)
            for name in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
        },
        "reason": _path_getter("reason"),
        "type": _path_getter("type"),
    },
    ("", "pods"): {
        "spec.nodeName": _path_getter("spec", "nodeName"),
        "spec.restartPolicy": _path_getter("spec", "restartPolicy"),
        "spec.schedulerName": _path_getter("spec", "schedulerName"),
        "spec.serviceAccountName": _path_getter("spec", "serviceAccountName"),
        "status.phase": _path_getter("status", "phase"),
        "status.podIP": _path_getter("status", "podIP"),
        "status.nominatedNodeName": _path_getter("status", "nominatedNodeName"),
    },
    ("", "secrets"): {"type": _path_getter("type")},
    ("", "namespaces"): {"status.phase": _path_getter("status", "phase")},
}


@dataclass(frozen=True)
class FieldRequirement:
    getter: Callable[[Json], str]
    negate: bool
    value: str

    def matches(self, obj: Json) -> bool:
        return (self.getter(obj) == self.value) != self.negate


#: Kinds with a field-label conversion of their own in the API server, which words a refusal as
#: "field label not supported: X" (as custom resources do); the others get the generic
#: metav1 conversion's message. Reference: k8s.io/kubernetes/pkg/apis/core/v1/conversion.go.
_OWN_CONVERSIONS = frozenset(
    {
        ("", "pods"),
        ("", "nodes"),
        ("", "replicationcontrollers"),
        ("", "events"),
        ("", "namespaces"),
        ("", "secrets"),
        ("", "services"),
        ("events.k8s.io", "events"),
    }
)


def _unsupported_field(label: str, storage_key: tuple[str, str], custom: bool) -> ApiError:
    if custom or storage_key in _OWN_CONVERSIONS:
        return bad_request(f"field label not supported: {label}")
    return bad_request(f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"')


def parse_field_selector(
    text: str | None, storage_key: tuple[str, str], *, custom: bool = False
) -> tuple[FieldRequirement, ...]:
    """Parse `fieldSelector`; an unknown field is 400 worded as the server words it for that kind."""
    if not text:
        return ()
    supported = {**_COMMON_FIELDS, **_RESOURCE_FIELDS.get(storage_key, {})}
    requirements = []
    for part in re.split(r"(?<!\\),", text):
        if not part.strip():
            continue
        match = re.match(r"^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not match:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        label, operator, value = match.groups()
        getter = supported.get(label)
        if getter is None:
            raise _unsupported_field(label, storage_key, custom)
        requirements.append(FieldRequirement(getter, operator == "!=", value.replace("\\,", ",")))
    return tuple(requirements)


def fields_match(requirements: tuple[FieldRequirement, ...], obj: Json) -> bool:
    return all(requirement.matches(obj) for requirement in requirements)


def exact_name(requirements_text: str | None) -> str | None:
    """The name a `metadata.name=X` field selector pins, to answer with one dictionary look-up."""
    if not requirements_text:
        return None
    for part in requirements_text.split(","):
        match = re.match(r"^\s*metadata\.name\s*==?\s*(.+?)\s*$", part)
        if match:
            return match.group(1)
    return None
