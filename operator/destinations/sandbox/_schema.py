"""Custom resources against their CRD's structural `openAPIV3Schema`: prune, default, validate.

The order is the API server's: unknown fields are pruned (outside `x-kubernetes-preserve-unknown-fields`
subtrees) and nulls of non-nullable fields dropped, then `default`s are applied, then the result is
validated. Every violation becomes a cause with the field path (`spec.retry.initialBackoff`,
`spec.items[0].name`) and the message wording of the real server, so that a user's error reads the
same in the sandbox as on a cluster. CEL rules (`x-kubernetes-validations`) are not evaluated.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

Json = dict[str, Any]

_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


@dataclass
class SchemaOutcome:
    obj: Json
    causes: list[Json] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)


def _type_name(value: Any) -> str:
    return "null" if value is None else _TYPE_NAMES.get(type(value), type(value).__name__)


def _render(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _go_number(value: float) -> str:
    """A number as Go's `%v` prints it in the server's messages: an int64 in digits, a float64 in
    strconv's shortest `g` form, with an exponent from 1e6 and below 1e-4 (`2.5`, `1e+20`,
    `9.007199254740991e+15`, `-0.5`)."""
    if isinstance(value, int) or value == 0:
        return str(int(value))
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)  # a finite float
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent  # digits before the decimal point
    prefix = "-" if sign else ""
    if not -4 <= point - 1 < 6:
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if point - 1 < 0 else '+'}{abs(point - 1):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{prefix}{digits}{'0' * (point - len(digits))}"
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def _type_matches(value: Any, wanted: str) -> bool:
    if wanted == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer() and abs(value) <= _LARGEST_EXACT_FLOAT_INTEGER
        )
    if wanted == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if wanted == "boolean":
        return isinstance(value, bool)
    if wanted == "string":
        return isinstance(value, str)
    if wanted == "array":
        return isinstance(value, list)
    if wanted == "object":
        return isinstance(value, dict)
    return True


#: The API server decodes a JSON number as an int64 when it is one, else as a float64, which counts as
#: an integer only when whole and within 2^53 - 1 (kube-openapi's validation, go-openapi/swag
#: IsFloat64AJSONInteger); a client then reads such a float back as a whole number (`1.0` -> `1`).
_INT64_RANGE = (-(2**63), 2**63 - 1)
#: The `anyOf` a structural schema gives an int-or-string field (controller-gen writes it for quantities).
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]
_LARGEST_EXACT_FLOAT_INTEGER = 2**53 - 1


def _as_json_integer(value: Any) -> Any:
    """`value` as the API server holds it for an int-or-string field: an integer where it reads one.

    A whole float within 2^53 becomes that integer; an integer beyond int64 becomes a float (which is
    then refused, not being an integer or a string); everything else is returned as it is.
    """
    if isinstance(value, float) and value.is_integer() and abs(value) <= _LARGEST_EXACT_FLOAT_INTEGER:
        return int(value)
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not _INT64_RANGE[0] <= value <= _INT64_RANGE[1]
    ):
        return float(value)
    return value


#: Go's encoding/json writes a float64 below 1e21 in plain digits (`3.0` as `3`), so a client reads a
#: whole one back as an integer (strconv.FormatFloat 'f' format; larger ones get an exponent).
_GO_PLAIN_FLOAT_LIMIT = 1e21


def _as_decoded(value: Any) -> Any:
    """A JSON body's numbers as the API server decodes them: an integer beyond int64 is a float64."""
    if isinstance(value, dict):
        return {key: _as_decoded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_decoded(item) for item in value]
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not _INT64_RANGE[0] <= value <= _INT64_RANGE[1]
    ):
        return float(value)
    return value


def _as_encoded(value: Any) -> Any:
    """Numbers as a client reads the API server's answer back: a whole float below 1e21 is an integer."""
    if isinstance(value, dict):
        return {key: _as_encoded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_encoded(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < _GO_PLAIN_FLOAT_LIMIT:
        return int(value)
    return value


def _format_ok(value: str, fmt: str) -> bool:
    try:
        if fmt == "date-time":
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif fmt == "date":
            date.fromisoformat(value)
        elif fmt in ("int32", "int64"):
            int(value)
        elif fmt == "byte":
            import base64

            base64.b64decode(value, validate=True)
    except ValueError:
        return False
    return True


class _Walker:
    def __init__(self) -> None:
        self.causes: list[Json] = []
        self.unknown: list[str] = []

    def error(self, path: str, reason: str, message: str) -> None:
        self.causes.append({"reason": reason, "message": message, "field": path})

    def walk(self, value: Any, schema: Json, path: str) -> Any:
        """Prune and default `value` (a private copy), recording validation errors; returns the result."""
        if schema.get("x-kubernetes-int-or-string"):
            value = _as_json_integer(value)
            if not (isinstance(value, (int, str)) and not isinstance(value, bool)):
                self.error(
                    path,
                    "FieldValueTypeInvalid",
                    f'Invalid value: "{_type_name(value)}": {path} in body must be of type integer,string: '
                    f'"{_type_name(value)}"',
                )
                if schema.get("anyOf") == _INT_OR_STRING_ANY_OF:
                    self._int_or_string_any_of_causes(value, path)
            self._check_scalar(value, schema, path)
            return value
        wanted = schema.get("type")
        if wanted and not _type_matches(value, wanted):
            self.error(
                path,
                "FieldValueTypeInvalid",
                f'Invalid value: "{_type_name(value)}": {path} in body must be of type {wanted}: '
                f'"{_type_name(value)}"',
            )
            # The server's other validators still run: a number's format and bounds, any value's enum.
            if wanted == "integer" and isinstance(value, float):
                self._integer_format_cause(value, path)
            if not isinstance(value, dict | list):
                self._check_scalar(value, schema, path)
            return value
        if isinstance(value, dict):
            value = self._walk_object(value, schema, path)
        elif isinstance(value, list):
            value = self._walk_array(value, schema, path)
        else:
            self._check_scalar(value, schema, path)
        for combinator in ("allOf", "anyOf", "oneOf"):
            options = schema.get(combinator)
            if not options:
                continue
            matching = sum(1 for option in options if not _probe(value, option, path))
            if (combinator == "allOf" and matching < len(options)) or (
                combinator != "allOf" and matching == 0
            ):
                self.error(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {_render(value)}: {path} in body must match {combinator}",
                )
        return value

    def _int_or_string_any_of_causes(self, value: Any, path: str) -> None:
        """What kube-openapi adds for `anyOf: [integer, string]` when neither matches, as the real
        server reports it: the anyOf failure (at field `<nil>`), then the first alternative's failures
        (go-openapi keeps the alternative with the most passed checks, the first on a tie): its type,
        and its format check for a number that is no int64."""
        kind = _type_name(value)
        self.error(
            "<nil>",
            "FieldValueInvalid",
            f'Invalid value: "": "{path}" must validate at least one schema (anyOf)',
        )
        self.error(
            path,
            "FieldValueTypeInvalid",
            f'Invalid value: "{kind}": {path} in body must be of type integer: "{kind}"',
        )
        if kind == "number":
            self._integer_format_cause(value, path)

    def _integer_format_cause(self, value: float, path: str) -> None:
        """An integer schema's format check, which a number that is no int64 (a fraction, or beyond
        int64) fails; a whole float within int64 passes it, even where the type check does not."""
        if not (value.is_integer() and _INT64_RANGE[0] <= value <= _INT64_RANGE[1]):
            self.error(
                "<nil>",
                "FieldValueInvalid",
                f'Invalid value: "": Checked value must be of type integer (default format) in {path}',
            )

    def _walk_object(self, value: Json, schema: Json, path: str) -> Json:
        properties: Json = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        result: Json = {}
        for key, item in value.items():
            child_path = f"{path}.{key}" if path else key
            child_schema = properties.get(key)
            if child_schema is None and isinstance(additional, dict):
                child_schema = additional
            if child_schema is None:
                if preserve or additional is True or (not properties and not schema.get("type")):
                    result[key] = item
                else:
                    self.unknown.append(child_path)
                continue
            if item is None and not child_schema.get("nullable"):
                continue  # pruned before defaulting, as the API server does
            result[key] = item
        for key, child_schema in properties.items():
            if key not in result and "default" in child_schema:
                result[key] = copy.deepcopy(child_schema["default"])
        for key in list(result):
            child_schema = properties.get(key) or (additional if isinstance(additional, dict) else None)
            if child_schema is not None and result[key] is not None:
                result[key] = self.walk(result[key], child_schema, f"{path}.{key}" if path else key)
        for key in schema.get("required") or ():
            if key not in result:
                self.error(f"{path}.{key}" if path else key, "FieldValueRequired", "Required value")
        return result

    def _walk_array(self, value: list[Any], schema: Json, path: str) -> list[Any]:
        items = schema.get("items")
        result = list(value)
        if isinstance(items, dict):
            result = [
                self.walk(item, items, f"{path}[{index}]")
                if item is not None or not items.get("nullable")
                else item
                for index, item in enumerate(value)
            ]
        if "minItems" in schema and len(result) < schema["minItems"]:
            self.error(
                path,
                "FieldValueInvalid",
                f"Invalid value: {len(result)}: {path} in body should have at least "
                f"{schema['minItems']} items",
            )
        if "maxItems" in schema and len(result) > schema["maxItems"]:
            self.error(
                path,
                "FieldValueTooMany",
                f"Too many: {len(result)}: must have at most {schema['maxItems']} items",
            )
        if schema.get("uniqueItems") or schema.get("x-kubernetes-list-type") == "set":
            seen: list[Any] = []
            for index, item in enumerate(result):
                if item in seen:
                    self.error(f"{path}[{index}]", "FieldValueDuplicate", f"Duplicate value: {_render(item)}")
                seen.append(item)
        return result

    def _check_scalar(self, value: Any, schema: Json, path: str) -> None:
        """Value checks in kube-openapi's order: string, format, number, then enum.

        The string checks stop at the first that fails (maxLength, minLength, pattern), as the
        server's `stringValidator` does; a bad `format` is a type error (FieldValueTypeInvalid).
        Reference: k8s.io/kube-openapi/pkg/validation/validate (schema.go, validator.go).
        """
        if isinstance(value, str):
            self._check_string(value, schema, path)
            fmt = schema.get("format")
            if fmt and not _format_ok(value, fmt):
                self.error(
                    path,
                    "FieldValueTypeInvalid",
                    f"Invalid value: {_render(value)}: {path} in body must be of type {fmt}: "
                    f"{_render(value)}",
                )
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if "maximum" in schema:
                exclusive = bool(schema.get("exclusiveMaximum"))
                if value > schema["maximum"] or (exclusive and value == schema["maximum"]):
                    relation = "less than" if exclusive else "less than or equal to"
                    self.error(
                        path,
                        "FieldValueInvalid",
                        f"Invalid value: {_go_number(value)}: {path} in body should be {relation} "
                        f"{schema['maximum']}",
                    )
            if "minimum" in schema:
                exclusive = bool(schema.get("exclusiveMinimum"))
                if value < schema["minimum"] or (exclusive and value == schema["minimum"]):
                    relation = "greater than" if exclusive else "greater than or equal to"
                    self.error(
                        path,
                        "FieldValueInvalid",
                        f"Invalid value: {_go_number(value)}: {path} in body should be {relation} "
                        f"{schema['minimum']}",
                    )
        if "enum" in schema and value not in schema["enum"]:
            supported = ", ".join(_render(option) for option in schema["enum"])
            self.error(
                path,
                "FieldValueNotSupported",
                f"Unsupported value: {_render(value)}: supported values: {supported}",
            )

    def _check_string(self, value: str, schema: Json, path: str) -> None:
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            self.error(
                path, "FieldValueTooLong", f"Too long: may not be more than {schema['maxLength']} bytes"
            )
            return
        if "minLength" in schema and len(value) < schema["minLength"]:
            self.error(
                path,
                "FieldValueInvalid",
                f"Invalid value: {_render(value)}: {path} in body should be at least "
                f"{schema['minLength']} chars long",
            )
            return
        pattern = schema.get("pattern")
        if pattern and not re.search(pattern, value):
            self.error(
                path,
                "FieldValueInvalid",
                f"Invalid value: {_render(value)}: {path} in body should match '{pattern}'",
            )


def _probe(value: Any, schema: Json, path: str) -> list[Json]:
    walker = _Walker()
    walker.walk(copy.deepcopy(value), schema, path)
    return walker.causes


#: Fields every object keeps regardless of its schema; metadata is validated by the server itself.
_ROOT_FIELDS = ("apiVersion", "kind", "metadata")


def apply_schema(obj: Json, schema: Json | None) -> SchemaOutcome:
    """Prune, default and validate a custom resource; `obj` itself is not modified."""
    if not schema:
        return SchemaOutcome(obj)
    walker = _Walker()
    body = {key: _as_decoded(value) for key, value in obj.items() if key not in _ROOT_FIELDS}
    root_schema = {
        **schema,
        "properties": {k: v for k, v in (schema.get("properties") or {}).items() if k not in _ROOT_FIELDS},
    }
    root_schema.pop("required", None)
    checked = walker.walk(body, root_schema, "")
    for key in schema.get("required") or ():
        if key not in _ROOT_FIELDS and key not in checked:
            walker.error(key, "FieldValueRequired", "Required value")
    result = {key: obj[key] for key in _ROOT_FIELDS if key in obj}
    result.update(_as_encoded(checked))
    return SchemaOutcome(result, walker.causes, walker.unknown)
