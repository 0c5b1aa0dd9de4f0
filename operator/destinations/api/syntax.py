"""The syntax Kubernetes demands of names and values a job passes on to its sync pods.

A value the API server would refuse in a Pod (a label value with a space, an annotation key with two
slashes, a quantity such as `1 GB`, a toleration with `operator: Exists` and a value) must be refused
when the job is written, by `destinations validate`, admission and the operator alike, not by the
API server at every run. The rules follow k8s.io/apimachinery/pkg/util/validation
(https://github.com/kubernetes/apimachinery/blob/master/pkg/util/validation/validation.go), the
Quantity grammar of k8s.io/apimachinery/pkg/api/resource, and the Pod checks in
k8s.io/kubernetes/pkg/apis/core/validation (resource names, requests against limits, tolerations);
see https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

from destinations.api.scalars import INT64_MAX, INT64_MIN, LARGEST_EXACT_FLOAT_INTEGER

DNS_LABEL_MAX_LENGTH = 63
QUALIFIED_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
DNS_SUBDOMAIN_MAX_LENGTH = 253
ANNOTATIONS_MAX_BYTES = 256 * 1024
"""The total size of a Pod's annotations (keys and values), as the API server counts it."""

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_SUBDOMAIN_SCHEMA_PATTERN = f"^{_DNS_SUBDOMAIN.pattern}$"
_QUALIFIED_NAME_PART = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_NAME_CHARACTERS = "letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?"
)
QUANTITY_PATTERN = (
    r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
"""The quantity grammar as a CRD `pattern` (a whole number given as a number is not matched against it)."""
QUOTE_ADVICE = "put it in quotes"
"""Ends a message about an unquoted YAML scalar; `destinations validate` puts the text to quote instead."""
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
"""Resource names without a domain a container may ask for, besides `hugepages-<size>`."""


def dns_label_problem(name: str) -> str | None:
    """Why `name` is not a DNS-1123 label (Pod volume and container names, namespaces), or None."""
    if len(name) > DNS_LABEL_MAX_LENGTH:
        return f"must be at most {DNS_LABEL_MAX_LENGTH} characters long"
    if not _DNS_LABEL.fullmatch(name):
        return "must be lower-case letters, digits and '-', starting and ending with a letter or digit"
    return None


def dns_subdomain_problem(name: str) -> str | None:
    """Why `name` is not a DNS-1123 subdomain (most object names), or None."""
    if len(name) > DNS_SUBDOMAIN_MAX_LENGTH:
        return f"must be at most {DNS_SUBDOMAIN_MAX_LENGTH} characters long"
    if not _DNS_SUBDOMAIN.fullmatch(name):
        return (
            "must be a Kubernetes name: lower-case letters, digits, '-' and '.', starting and ending "
            "with a letter or digit"
        )
    return None


def qualified_name_problem(key: str) -> str | None:
    """Why `key` is not a qualified name (`[prefix/]name`: label and annotation keys), or None."""
    if not key:
        return "must not be empty: write name or prefix/name, such as team or example.com/team"
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "has an empty prefix before '/'; write prefix/name or just name"
    if prefix:
        if "/" in prefix:
            return "must have at most one '/', between a DNS prefix and a name"
        trouble = dns_subdomain_problem(prefix)
        if trouble is not None:
            return f"prefix {prefix!r} {trouble}"
    if not name:
        return "needs a name (after the prefix and '/')"
    if len(name) > QUALIFIED_NAME_MAX_LENGTH:
        return f"name part must be at most {QUALIFIED_NAME_MAX_LENGTH} characters long"
    if not _QUALIFIED_NAME_PART.fullmatch(name):
        return f"name part must be {_NAME_CHARACTERS}"
    return None


def label_value_problem(value: str) -> str | None:
    """Why `value` is not a label value (empty, or at most 63 name characters), or None."""
    if len(value) > LABEL_VALUE_MAX_LENGTH:
        return f"must be at most {LABEL_VALUE_MAX_LENGTH} characters long"
    if value and not _QUALIFIED_NAME_PART.fullmatch(value):
        return f"must be empty or {_NAME_CHARACTERS}"
    return None


def parse_quantity(text: str) -> Decimal | None:
    """The value of a Kubernetes quantity (`100m`, `1.5Gi`, `1e3`), or None when it is not one."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        return None
    number, suffix = Decimal(match["number"]), match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    if suffix:
        return number.scaleb(int(suffix[1:]))
    return number


def quantity_problem(text: str) -> str | None:
    """Why `text` is not a non-negative quantity, or None."""
    value = parse_quantity(text)
    if value is None:
        return (
            "must be a quantity such as 100m, 0.5, 2, 128Mi, 1Gi or 1e3 (a number, then optionally one "
            "of n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent), without spaces"
        )
    if value < 0:
        return "must not be negative"
    return None


def whole_number_as_text(value: Any) -> Any:
    """A quantity written as a whole JSON number (`cpu: 1`, `memory: 1e9`) as the text a Pod carries.

    Pods take int-or-string quantities; the CRD declares `x-kubernetes-int-or-string` like them. The
    API server reads a JSON number as a 64-bit integer when it is one, else as floating point, which
    it takes for an integer only when whole and at most 2^53 - 1 (`1.0` and `1e3` are 1 and 1000).
    So `cpu: 0.5` and numbers beyond those ranges are refused (the CRD cannot carry them, a Pod
    could): written in quotes they are fine. Text is returned as it is.
    """
    if isinstance(value, bool):
        raise ValueError(
            f"a quantity is text such as '500m' or a whole number, not the boolean {str(value).lower()}"
        )
    whole = isinstance(value, int) and INT64_MIN <= value <= INT64_MAX
    if isinstance(value, float) and value.is_integer() and abs(value) <= LARGEST_EXACT_FLOAT_INTEGER:
        value, whole = int(value), True
    if whole:
        return str(value)
    if isinstance(value, int | float):
        kind = "with a fraction" if isinstance(value, float) and not value.is_integer() else "this large"
        raise ValueError(
            f"a quantity is text such as '500m' or a whole number, not a number {kind}: unquoted in "
            f"YAML, kubectl sends it as a number; {QUOTE_ADVICE}"
        )
    return value


def secret_name_problem(name: str) -> str | None:
    """Why no Secret can be called `name`, or None.

    Stricter than the API server on purpose: it accepts any text in a Pod's `imagePullSecrets`, and the
    kubelet then finds no such Secret and pulls without credentials (docs/api-notes.md).
    """
    trouble = dns_subdomain_problem(name)
    if trouble is None:
        return None
    return (
        f"{trouble}; no Secret can have this name, so image pulls would find no credentials (the API "
        "server accepts it in a Pod; we refuse it)"
    )


def namespace_name_problem(name: str) -> str | None:
    """Why `name` cannot be a namespace's name (a DNS label: no dots, at most 63 characters), or None."""
    if "." in name:
        return "must not contain dots: a namespace name is lower-case letters, digits and '-'"
    return dns_label_problem(name)


def container_resource_problem(name: str) -> str | None:
    """Why `name` is not a resource a container can request (cpu, memory, a domain/name), or None."""
    if "/" not in name:
        if name in STANDARD_CONTAINER_RESOURCES or (
            name.startswith("hugepages-") and parse_quantity(name.removeprefix("hugepages-")) is not None
        ):
            return None
        return (
            "is not a resource a container can request; use cpu, memory, ephemeral-storage, "
            "hugepages-<size> or an extended resource such as example.com/gpu"
        )
    return qualified_name_problem(name)


def is_extended_resource(name: str) -> bool:
    """A resource with a domain outside kubernetes.io: requests must equal limits (no overcommit)."""
    domain = name.split("/", 1)[0] if "/" in name else ""
    return bool(domain) and not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io"))


def annotation_key_problem(key: str) -> str | None:
    """Why `key` is not an annotation key: a qualified name once lower-cased, as the API server checks."""
    return qualified_name_problem(key.lower())


def _checked(problem_of: Callable[[str], str | None]) -> AfterValidator:
    def check(value: str) -> str:
        trouble = problem_of(value)
        if trouble is not None:
            raise ValueError(f"{value!r} {trouble}")
        return value

    return AfterValidator(check)


QualifiedName = Annotated[str, _checked(qualified_name_problem)]
"""A label key (and a toleration's key): `name` or `prefix/name`."""
AnnotationKey = Annotated[str, _checked(annotation_key_problem)]
"""An annotation key: a qualified name, upper-case letters allowed."""
LabelValue = Annotated[str, _checked(label_value_problem)]
"""A label value: empty, or at most 63 letters, digits, '-', '_' and '.'."""
Quantity = Annotated[
    str,
    BeforeValidator(whole_number_as_text),
    _checked(quantity_problem),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "pattern": QUANTITY_PATTERN,
        }
    ),
]
"""A resource quantity such as `100m`, `1Gi` or the whole number `2` (int-or-string, as in a Pod);
held as text."""
SecretName = Annotated[
    str,
    _checked(secret_name_problem),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": DNS_SUBDOMAIN_MAX_LENGTH,
            "pattern": _DNS_SUBDOMAIN_SCHEMA_PATTERN,
        }
    ),
]
"""The name of a Secret in the job's namespace (a DNS subdomain), said to be one in refusals."""
NamespaceName = Annotated[str, _checked(namespace_name_problem)]
"""A namespace's name: a DNS label."""
NodeName = Annotated[str, _checked(dns_subdomain_problem)]
"""A node's name (`metadata.name` of a Node): a DNS subdomain."""
ContainerResourceName = Annotated[str, _checked(container_resource_problem)]
"""`cpu`, `memory`, `ephemeral-storage`, `hugepages-<size>` or an extended `domain/name`."""
