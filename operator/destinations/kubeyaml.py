"""YAML read the way `kubectl apply -f` reads it, so `destinations validate` judges what the cluster gets.

kubectl turns YAML into JSON with sigs.k8s.io/yaml, which resolves plain (unquoted) scalars with
go-yaml v2's rules: YAML 1.1 booleans (`y`, `n`, `yes`, `no`, `on`, `off` in three spellings), Go's
number syntax after dropping every `_` (`0x1F`, `0o17`, `017`, `0b101`, `1_000`, `72044e0112`, `08`),
and timestamps kept as the text written (`2026-11-26`). PyYAML follows YAML 1.1 differently (`1e3`
and `0o17` stay text, `12:30` is a sexagesimal number, `2026-11-26` a date), so its answers are not
what the API server receives. Here every plain scalar goes through a port of go-yaml v2's `resolve`
(https://github.com/go-yaml/yaml/blob/v2.4.0/resolve.go) and the result is made JSON as kubectl does.
The corpus in tests/api/test_kubeyaml.py is checked against the real kubectl.

Quoted scalars, block scalars and explicitly tagged ones are strings (or what their tag says), as in
go-yaml. `.inf` and `.nan` are refused: kubectl cannot send them ("json: unsupported value").
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator
from typing import Any

import yaml

_PLAIN_TAG = "tag:destinations.dev,2026:plain"
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1
#: go-yaml v2's `yamlStyleFloat`: which texts starting with a digit or sign may be floats.
_YAML_STYLE_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
#: The decimal float syntax of Go's ParseFloat (hexadecimal floats cannot reach it from go-yaml).
_GO_FLOAT = _YAML_STYLE_FLOAT

_WORDS: dict[str, Any] = {}
for _words, _value in (
    (("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    (("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
    (("", "~", "null", "Null", "NULL"), None),
):
    for _word in _words:
        _WORDS[_word] = _value
_NOT_JSON = {f"{sign}.{word}" for sign in ("", "+", "-") for word in ("inf", "Inf", "INF")} | {
    ".nan",
    ".NaN",
    ".NAN",
}


class KubectlYamlError(yaml.YAMLError):
    """A value kubectl cannot turn into JSON; carries the position like PyYAML's own errors."""

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


def _go_parse_int(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 0, 64): sign, then 0x/0o/0b/0 prefixes; None when Go refuses."""
    sign, digits = 1, text
    if digits[:1] in "+-":
        sign, digits = (-1 if digits[0] == "-" else 1), digits[1:]
    value = _go_unsigned(digits)
    if value is None:
        return None
    value *= sign
    return value if _INT64[0] <= value <= _INT64[1] else None


def _go_parse_uint(text: str) -> int | None:
    """Go's strconv.ParseUint(text, 0, 64): no sign."""
    value = _go_unsigned(text)
    return value if value is not None and value <= _UINT64_MAX else None


def _go_unsigned(digits: str) -> int | None:
    lowered = digits.lower()
    base, body = 10, digits
    if lowered.startswith(("0x", "0o", "0b")):
        base, body = {"x": 16, "o": 8, "b": 2}[lowered[1]], digits[2:]
    elif len(digits) > 1 and digits[0] == "0":
        base, body = 8, digits[1:]
    if not body or not all(c in "0123456789abcdef"[:base] for c in body.lower()):
        return None
    return int(body, base)


def _go_parse_float(text: str) -> float | None:
    """Go's strconv.ParseFloat for the decimal forms go-yaml lets through; None when Go refuses.

    Go accepts `_` between two digits (`.5_0` is 0.5); the value must fit a float64.
    """
    if "_" in text:
        if re.search(r"(?<![0-9])_|_(?![0-9])", text):
            return None
        text = text.replace("_", "")
    if not _GO_FLOAT.match(text):
        return None
    value = float(text)
    return None if math.isinf(value) else value


def resolve_plain(text: str) -> Any:
    """The value go-yaml v2 gives a plain (unquoted) scalar, before it becomes JSON."""
    if text in _WORDS:
        return _WORDS[text]
    first = text[:1]
    if first == ".":
        parsed = _go_parse_float(text)
        return text if parsed is None else parsed
    if first and first in "+-0123456789":
        plain = text.replace("_", "")
        for parse in (_go_parse_int, _go_parse_uint):
            number = parse(plain)
            if number is not None:
                return number
        if _YAML_STYLE_FLOAT.match(plain):
            parsed = _go_parse_float(plain)
            if parsed is not None:
                return parsed
        for prefix, sign in (("0b", 1), ("-0b", -1)):
            if plain.startswith(prefix) and plain[len(prefix) :] and set(plain[len(prefix) :]) <= {"0", "1"}:
                return sign * int(plain[len(prefix) :], 2)
    return text


def as_json(value: Any) -> Any:
    """A go-yaml value as the JSON kubectl sends: whole floats become integers, keys become text."""
    if isinstance(value, dict):
        return {_json_key(key): as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_json(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)  # Go prints 1e3 as 1000, which the API server reads as an integer
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
        return float(value)  # beyond int64, the API server reads a float
    return value


def _json_key(key: Any) -> str:
    """A map key as text, as sigs.k8s.io/yaml writes it (floats as Go's FormatFloat(f, 'g', -1, 32))."""
    if key is True or key is False:
        return "true" if key else "false"
    if key is None:
        raise KubectlYamlError("a map key is null (~, null or empty), which kubectl refuses", None)
    if isinstance(key, float):
        return _float32_text(key)
    return str(key)


def _float32_text(value: float) -> str:
    single = struct.unpack("f", struct.pack("f", value))[0] if abs(value) < 3.5e38 else math.inf
    if math.isinf(single):
        return ".inf" if single > 0 else "-.inf"
    digits = 9
    for precision in range(1, 10):  # the fewest digits that read back as the same float32
        if struct.unpack("f", struct.pack("f", float(f"{single:.{precision - 1}e}")))[0] == single:
            digits = precision
            break
    exponent = int(f"{single:.{digits - 1}e}".split("e")[1])
    if exponent < -4 or exponent >= 6:  # Go's rule for the shortest 'g' form
        return f"{single:.{digits - 1}e}"
    return f"{single:.{max(digits - 1 - exponent, 0)}f}"


class KubectlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with go-yaml v2's resolution of plain scalars.

    `unquoted` collects each plain scalar that became a number or a boolean, with the text written,
    so a message can say which text to quote.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.unquoted: list[tuple[Any, str]] = []

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return "tag:yaml.org,2002:merge" if value == "<<" else _PLAIN_TAG
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def construct_plain(self, node: yaml.ScalarNode) -> Any:
        if node.value in _NOT_JSON:
            raise KubectlYamlError(
                f"{node.value} is not a JSON number, so kubectl refuses it; quote it if you mean text",
                node.start_mark,
            )
        value = resolve_plain(node.value)
        if value is not None and not isinstance(value, str):
            self.unquoted.append((as_json(value), str(node.value)))
        return value

    def construct_timestamp_as_text(self, node: yaml.ScalarNode) -> Any:
        return str(node.value)  # go-yaml keeps timestamps as the text written


KubectlLoader.add_constructor(_PLAIN_TAG, KubectlLoader.construct_plain)
KubectlLoader.add_constructor("tag:yaml.org,2002:timestamp", KubectlLoader.construct_timestamp_as_text)


def load_all(text: str) -> Iterator[Any]:
    """Every document of `text` as the JSON kubectl would send; raises yaml.YAMLError."""
    yield from read_documents(text)[0]


def read_documents(text: str) -> tuple[list[Any], list[tuple[Any, str]]]:
    """Every document of `text` as the JSON kubectl would send, and the unquoted scalars that became
    numbers or booleans (value, text written); raises yaml.YAMLError."""
    loader = KubectlLoader(text)
    try:
        documents = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            documents.append(as_json(loader.get_data()))
        return documents, loader.unquoted
    finally:
        loader.dispose()


def load(text: str) -> Any:
    """One document, as `load_all`."""
    return as_json(yaml.load(text, Loader=KubectlLoader))
