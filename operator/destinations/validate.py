"""Validation of Authorization and DestinationJob objects, shared by every component that refuses them.

`destinations validate` (offline, before `kubectl apply`), the admission webhooks and the operator (when
webhooks are off) all call the same pure functions here, so a manifest is judged the same way
everywhere. Each finding is a `Problem` naming the field path users wrote (`spec.retry.initialBackoff`),
the offending value and what would be accepted; pydantic's messages are rewritten into those terms.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import re
import sys
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from destinations import kubeyaml
from destinations.api.crds import API_VERSION, JOB_NAME_MAX_LENGTH, OBJECT_NAME_MAX_LENGTH
from destinations.api.durations import ACCEPTED as ACCEPTED_DURATIONS
from destinations.api.durations import DURATION_PATTERN
from destinations.api.models import (
    COLLECT_PROBLEMS,
    DNS_SUBDOMAIN_PATTERN,
    ApiModel,
    AuthMethod,
    AuthorizationSpec,
    DestinationJobSpec,
    JobType,
    LocalObjectReference,
    SyncMode,
)
from destinations.api.syntax import QUOTE_ADVICE
from destinations.providers.base import Provider
from destinations.redaction import redact_credentials

KINDS = ("Authorization", "DestinationJob")
#: Kinds that example files and GitOps folders keep next to ours; they are not ours to judge.
SKIPPED_KINDS = frozenset({"Secret"})
VALUE_DISPLAY_LIMIT = 60

_NAME_RULE = "lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
_DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: Patterns users meet in error messages, said in words.
_PATTERN_MEANINGS = {
    DNS_SUBDOMAIN_PATTERN: f"a Kubernetes name ({_NAME_RULE})",
    DURATION_PATTERN: ACCEPTED_DURATIONS,
    r"^https?://\S+$": "an http:// or https:// URL without spaces",
    r"^[a-z][a-z0-9-]*$": "a lower-case key such as 'mailchimp' (letters, digits and '-')",
}


@dataclass(frozen=True)
class Problem:
    """One reason an object is refused: where, what was given, and what would be accepted."""

    path: str
    """Dotted field path as written in YAML, e.g. `spec.retry.initialBackoff` or `spec.config.listId`."""
    message: str
    """What is wrong and what is accepted, in the user's terms."""
    value: str | None = None
    """The offending value, JSON-encoded and shortened; None when the field is missing or not one value."""

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        got = f" (got {self.value})" if self.value is not None else ""
        return f"{where}{self.message}{got}"


def display_value(value: Any) -> str:
    """A short, single-line rendering of a user's value for messages, credentials masked (a URL's
    password shows in `kubectl apply`'s refusal and the job's status otherwise)."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    text = redact_credentials(text)
    if len(text) > VALUE_DISPLAY_LIMIT:
        text = text[: VALUE_DISPLAY_LIMIT - 1] + "…"
    return text


# ------------------------------------------------------------------------------- pydantic → Problem


def _path(prefix: str, location: Sequence[int | str]) -> str:
    path = prefix
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-", "lax-", "json-")) or "[" in part:
            continue  # pydantic's internal step names (unions, validators), not fields
        else:
            path = f"{path}.{part}" if path else part
    return path


def _properties_at(model: type[BaseModel], location: Sequence[int | str]) -> list[str]:
    """The field names accepted by the object at `location` inside `model`, for 'unknown field' hints."""
    schema = model.model_json_schema(by_alias=True)
    definitions = schema.get("$defs", {})

    def resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
        while True:
            if "$ref" in node:
                node = definitions[str(node["$ref"]).rsplit("/", 1)[-1]]
            elif "anyOf" in node:
                options = [o for o in node["anyOf"] if o != {"type": "null"}]
                node = options[0] if len(options) == 1 else {}
            else:
                return node

    node = resolve(schema)
    for part in location:
        if isinstance(part, int):
            node = resolve(node.get("items", {}))
        else:
            node = resolve(node.get("properties", {}).get(part, {}))
    return list(node.get("properties", {}))


def _message(error: ErrorDetails, model: type[BaseModel]) -> str:
    """pydantic's message, said the way a Kubernetes user would want to read it."""
    kind = error["type"]
    context: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        accepted = _properties_at(model, error["loc"][:-1])
        return f"is not a known field; accepted fields: {', '.join(accepted)}"
    if kind == "value_error":
        return str(context.get("error", error["msg"]))
    if kind in ("enum", "literal_error"):
        expected = str(context.get("expected", "")).replace("'", "")
        return f"must be one of: {expected.replace(' or ', ', ')}"
    if kind == "string_pattern_mismatch":
        pattern = str(context.get("pattern", ""))
        alternatives = re.fullmatch(r"\^\(([A-Za-z0-9_|-]+)\)\$", pattern)
        if alternatives:
            return f"must be one of: {alternatives.group(1).replace('|', ', ')}"
        return f"must be {_PATTERN_MEANINGS.get(pattern, f'text matching the pattern {pattern}')}"
    if kind == "string_too_short":
        minimum = context.get("min_length", 1)
        return "must not be empty" if minimum == 1 else f"must be at least {minimum} characters long"
    if kind == "string_too_long":
        return f"must be at most {context.get('max_length')} characters long"
    if kind == "too_short":
        return f"needs at least {context.get('min_length')} item(s)"
    if kind == "too_long":
        return f"accepts at most {context.get('max_length')} item(s)"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {
            "greater_than_equal": ("at least", "ge"),
            "greater_than": ("greater than", "gt"),
            "less_than_equal": ("at most", "le"),
            "less_than": ("less than", "lt"),
        }
        word, key = words[kind]
        return f"must be {word} {context.get(key)}"
    if kind == "string_type" and isinstance(error.get("input"), bool | int | float):
        given = error["input"]
        what = "boolean" if isinstance(given, bool) else "number"
        return (
            f"must be text (a string), not the {what} {display_value(given)}: unquoted in YAML, "
            f"kubectl sends it as a {what}; {QUOTE_ADVICE}"
        )
    if kind in _SCALAR_TYPES:
        return _scalar_type_message(kind, error.get("input"))
    type_words = {
        "string_type": "must be text (a string)",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_parsing": "must be a number",
        "bool_parsing": "must be true or false",
        "dict_type": "must be a mapping of keys to values",
        "model_type": "must be a mapping of fields (an object)",
        "model_attributes_type": "must be a mapping of fields (an object)",
        "list_type": "must be a list",
    }
    return type_words.get(kind, error["msg"])


#: pydantic's strict scalar errors: what the field accepts, and the Python types that are that JSON type.
_SCALAR_TYPES: dict[str, tuple[str, tuple[type, ...]]] = {
    "int_type": ("must be a whole number", (int,)),
    "float_type": ("must be a number", (int, float)),
    "finite_number": ("must be a number", (int, float)),
    "bool_type": ("must be true or false", (bool,)),
}


def _scalar_type_message(kind: str, given: Any) -> str:
    """A whole number, number or boolean field given another JSON type, as the API server refuses it
    (it converts none: `"5"` is text, `1` is no boolean); text that would be right unquoted in YAML
    says to drop the quotes."""
    wanted, python_types = _SCALAR_TYPES[kind]
    if isinstance(given, str):
        unquoted = kubeyaml.as_json(kubeyaml.resolve_plain(given))
        if isinstance(unquoted, python_types) and isinstance(unquoted, bool) == (bool in python_types):
            return (
                f"{wanted}, not the text {display_value(given)}: quoted in YAML, kubectl sends it as text; "
                "write it without quotes"
            )
        return f"{wanted}, not the text {display_value(given)}"
    if isinstance(given, bool):
        return f"{wanted}, not the boolean {display_value(given)}"
    if isinstance(given, int | float):
        if kind == "finite_number":
            return f"{wanted} (JSON has no NaN or infinity), not {display_value(given)}"
        return f"{wanted}, not the number {display_value(given)}"
    return wanted


def problems_from_validation_error(
    error: ValidationError, prefix: str, model: type[BaseModel]
) -> list[Problem]:
    """One Problem per pydantic error, with camelCase paths under `prefix` (e.g. `spec`)."""
    return _problems_from_details(error.errors(include_url=False), prefix, model)


def _problems_from_details(
    details: Iterable[ErrorDetails], prefix: str, model: type[BaseModel]
) -> list[Problem]:
    problems = []
    for detail in details:
        value = detail.get("input")
        message = _message(detail, model)
        location = detail["loc"]
        shown = None
        if detail["type"] != "missing" and not isinstance(value, Mapping):
            shown = display_value(value)
        if detail["type"] == "value_error":
            if repr(value) in message:
                shown = None  # the message already quotes it
            location = (*location, *_field_named_by(message, model, location))
        problems.append(Problem(_path(prefix, location), redact_credentials(message), shown))
    return problems


def _field_named_by(message: str, model: type[BaseModel], location: Sequence[int | str]) -> tuple[str, ...]:
    """A cross-field check's message starts with the field it is about (`cron '…' is not…`): point at it."""
    token = message.split(" ", 1)[0]
    parts = tuple(token.split("."))
    if parts and parts[0] in _properties_at(model, location):
        return parts
    return ()


# ------------------------------------------------------------------------------- every problem at once

#: Parse passes before giving up on finding more problems (each pass removes what the last one refused).
_MAX_PASSES = 8


def model_problems(
    model: type[ApiModel], data: Mapping[str, Any], prefix: str
) -> tuple[ApiModel | None, list[Problem]]:
    """Every problem of `data` as `model`, at once: field errors and cross-field rules, at any depth.

    pydantic stops at the first failing rule of an object and skips an object's rules when one of its
    fields fails. So the value parses with rules deferred (`COLLECT_PROBLEMS`), each refused value is
    taken out and the rest parsed again, and the rules are then asked of every object that parsed;
    rules about a value already refused are not repeated. Returns the parsed object (None when
    required fields are missing) and the problems.
    """
    working = copy.deepcopy(dict(data))
    problems: list[Problem] = []
    removed: list[tuple[str | int, ...]] = []
    for _ in range(_MAX_PASSES):
        try:
            parsed = model.model_validate(working, context={COLLECT_PROBLEMS: True})
        except ValidationError as error:
            progress = False
            for detail in error.errors(include_url=False):
                location = _field_location(detail["loc"])
                if detail["type"] == "missing" and any(location[: len(r)] == r for r in removed):
                    continue  # taken out by an earlier pass, already reported
                problems.extend(_problems_from_details([detail], prefix, model))
                if _remove(working, location):
                    removed.append(location)
                    progress = True
            if not progress:
                for child_model, child_data, child_path in _nested_objects(model, data, prefix):
                    problems.extend(model_problems(child_model, child_data, child_path)[1])
                return None, _unique(problems)
            continue
        refused = [_path(prefix, location) for location in removed]
        # A rule that reads a refused field would judge its default instead: leave it out.
        refused_fields = [
            (_path(prefix, location[:-1]), location[-1])
            for location in removed
            if isinstance(location[-1], str)
        ]
        rules = [
            problem
            for owner, problem in _rule_problems(parsed, prefix)
            if not any(_related(problem.path, r) for r in refused)
            and not any(
                owner == where and re.search(rf"\b{re.escape(name)}\b", problem.message)
                for where, name in refused_fields
            )
        ]
        return parsed, _unique(problems + rules)
    return None, _unique(problems)  # pragma: no cover - every pass removes a value


def _field_location(location: Sequence[int | str]) -> tuple[str | int, ...]:
    """pydantic's error location without its internal step names: keys and indexes into the data."""
    return tuple(
        part
        for part in location
        if isinstance(part, int) or not (part.startswith(("function-", "lax-", "json-")) or "[" in part)
    )


def _remove(data: dict[str, Any], location: Sequence[str | int]) -> bool:
    """Take the value at `location` out (a whole list for one of its items); False if it is not there."""
    node: Any = data
    holder: tuple[dict[str, Any], str] | None = None
    for part in location:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            holder = (node, part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return False
    if holder is None:
        return False
    del holder[0][holder[1]]
    return True


def _related(path: str, refused: str) -> bool:
    """Whether a rule at `path` is about the refused value at `refused` (the same, inside or around it)."""
    return (
        path == refused
        or path.startswith((f"{refused}.", f"{refused}["))
        or refused.startswith((f"{path}.", f"{path}["))
    )


def _rule_problems(instance: BaseModel, path: str) -> list[tuple[str, Problem]]:
    """The cross-field rules of `instance` and of every object inside it: (the object's path, problem)."""
    found: list[tuple[str, Problem]] = []
    if isinstance(instance, ApiModel):
        for field, message in instance.rule_problems():
            found.append((path, Problem(f"{path}.{field}" if field else path, message)))
    for name, info in type(instance).model_fields.items():
        value = getattr(instance, name)
        child = f"{path}.{info.alias or name}"
        if isinstance(value, BaseModel):
            found.extend(_rule_problems(value, child))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    found.extend(_rule_problems(item, f"{child}[{index}]"))
    return found


def _model_classes(annotation: Any) -> list[type[ApiModel]]:
    if isinstance(annotation, type) and issubclass(annotation, ApiModel):
        return [annotation]
    return [found for argument in typing.get_args(annotation) for found in _model_classes(argument)]


def _nested_objects(
    model: type[ApiModel], data: Mapping[str, Any], prefix: str
) -> Iterator[tuple[type[ApiModel], Mapping[str, Any], str]]:
    """The objects inside `data` that `model` types as API objects: (their model, their data, path)."""
    for key, child_model in _object_fields(model):
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            yield child_model, value, f"{prefix}.{key}"
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    yield child_model, item, f"{prefix}.{key}[{index}]"


@functools.cache
def _object_fields(model: type[ApiModel]) -> tuple[tuple[str, type[ApiModel]], ...]:
    """The fields of `model` typed as one API object (or a list of them), as (key, model): computed
    once per model, as the operator validates every job's spec at each of its decisions (issue 18)."""
    found = []
    for name, info in model.model_fields.items():
        classes = _model_classes(info.annotation)
        if len(classes) == 1:
            found.append((info.alias or name, classes[0]))
    return tuple(found)


def _unique(problems: Iterable[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _without_nulls(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's fields as the API server keeps them: a field set to `null` is a field left out."""
    return {key: value for key, value in spec.items() if value is not None}


# ------------------------------------------------------------------------------------------ checks


def _catalog(catalog: Mapping[str, Provider] | None) -> Mapping[str, Provider]:
    if catalog is not None:
        return catalog
    from destinations.providers.catalog import load_catalog

    return load_catalog()


def validate_name(
    name: Any, path: str = "metadata.name", max_length: int = OBJECT_NAME_MAX_LENGTH
) -> list[Problem]:
    """A Kubernetes object name: an RFC 1123 subdomain of at most `max_length` characters."""
    if not isinstance(name, str) or not name:
        return [Problem(path, f"is required: a Kubernetes name ({_NAME_RULE})", _shown(name))]
    if len(name) > max_length:
        return [Problem(path, f"must be at most {max_length} characters long", display_value(name))]
    if not re.fullmatch(DNS_SUBDOMAIN_PATTERN, name):
        return [Problem(path, f"must be a Kubernetes name: {_NAME_RULE}", display_value(name))]
    return []


def validate_namespace_name(namespace: Any, path: str = "metadata.namespace") -> list[Problem]:
    """A namespace name: an RFC 1123 label (no dots, at most 63 characters)."""
    if (
        not isinstance(namespace, str)
        or len(namespace) > 63
        or not re.fullmatch(_DNS_LABEL_PATTERN, namespace)
    ):
        return [
            Problem(
                path,
                "must be a namespace name: at most 63 lower-case letters, digits and '-', "
                "starting and ending with a letter or digit",
                display_value(namespace),
            )
        ]
    return []


def _shown(value: Any) -> str | None:
    return None if value is None else display_value(value)


def _provider_problems(
    provider_key: Any, catalog: Mapping[str, Provider]
) -> tuple[Provider | None, list[Problem]]:
    if not isinstance(provider_key, str):
        return None, []  # the model check reports a missing or mistyped provider
    provider = catalog.get(provider_key)
    if provider is None:
        known = ", ".join(catalog) or "none installed"
        return None, [
            Problem(
                "spec.provider",
                f"is not a known provider; known providers: {known}",
                display_value(provider_key),
            )
        ]
    return provider, []


def _cross_namespace_problems(
    model: type[ApiModel], data: Mapping[str, Any], namespace: str | None, prefix: str = "spec"
) -> list[Problem]:
    """Every reference naming another namespace than the object's own (they are never followed).

    Read from the data as given, so the finding stands even when other fields are refused.
    """
    if namespace is None:
        return []  # the object's namespace is not known yet (offline, no metadata.namespace)
    problems: list[Problem] = []
    for child_model, child_data, path in _nested_objects(model, data, prefix):
        if child_model is LocalObjectReference:
            given = child_data.get("namespace")
            if isinstance(given, str) and given != namespace:  # not text: the type problem says so
                problems.append(
                    Problem(
                        f"{path}.namespace",
                        f"must be the object's own namespace {namespace!r} or left out: "
                        "references to other namespaces are refused",
                        display_value(given),
                    )
                )
        else:
            problems.extend(_cross_namespace_problems(child_model, child_data, namespace, path))
    return problems


def validate_authorization_spec(
    spec: Any, namespace: str | None, catalog: Mapping[str, Provider] | None = None
) -> list[Problem]:
    """Everything that can be checked about an Authorization's spec without a cluster.

    `namespace` is the object's namespace (None when unknown, e.g. a manifest without one); `catalog`
    defaults to the installed providers.
    """
    if not isinstance(spec, Mapping):
        return [Problem("spec", "is required: a mapping with provider, method and secretRef", _shown(spec))]
    spec = _without_nulls(spec)
    catalog = _catalog(catalog)
    provider, problems = _provider_problems(spec.get("provider"), catalog)
    method = spec.get("method")
    if (
        provider is not None
        and method in {m.value for m in AuthMethod}
        and AuthMethod(method) not in provider.auth_methods
    ):
        accepted = ", ".join(m.value for m in provider.auth_methods)
        problems.append(
            Problem(
                "spec.method",
                f"is not accepted by provider {provider.key!r}; it accepts: {accepted}",
                display_value(method),
            )
        )
    _, model_found = model_problems(AuthorizationSpec, spec, "spec")
    if any(p.path == "spec.provider" for p in problems):
        model_found = [p for p in model_found if p.path != "spec.provider"]
    return _unique(problems + model_found + _cross_namespace_problems(AuthorizationSpec, spec, namespace))


def validate_job_spec(
    spec: Any, namespace: str | None, catalog: Mapping[str, Provider] | None = None
) -> list[Problem]:
    """Everything that can be checked about a DestinationJob's spec without a cluster.

    Covers the model (types, durations, schedule, endpoints), the provider/type pair, the provider's
    config schema (paths under `spec.config`) and same-namespace references.
    """
    return parse_job_spec(spec, namespace, catalog)[1]


def parse_job_spec(
    spec: Any, namespace: str | None, catalog: Mapping[str, Provider] | None = None
) -> tuple[DestinationJobSpec | None, list[Problem]]:
    """`validate_job_spec`, and the parsed spec when it has no problem (the operator parses each
    job's spec at every decision: validated and parsed in one pass, not two)."""
    if not isinstance(spec, Mapping):
        return None, [
            Problem(
                "spec",
                "is required: a mapping with provider, type, authorizationRef and config",
                _shown(spec),
            )
        ]
    spec = _without_nulls(spec)
    catalog = _catalog(catalog)
    provider, problems = _provider_problems(spec.get("provider"), catalog)
    if provider is not None:
        problems.extend(_capability_problems(provider, spec))
    parsed, model_found = model_problems(DestinationJobSpec, spec, "spec")
    # The provider checks said these in better words.
    if any(p.path == "spec.provider" for p in problems):
        model_found = [p for p in model_found if p.path != "spec.provider"]
    model_found = [p for p in model_found if p.path != "spec.config"]
    found = _unique(problems + model_found + _cross_namespace_problems(DestinationJobSpec, spec, namespace))
    if found or not isinstance(parsed, DestinationJobSpec):
        return None, found
    return parsed, []


def _capability_problems(provider: Provider, spec: Mapping[str, Any]) -> list[Problem]:
    """What the job asks of its provider that the provider does not offer: its type, its mode, its config."""
    problems: list[Problem] = []
    job_type = spec.get("type")
    if job_type in {t.value for t in JobType}:
        if JobType(job_type) not in provider.job_types:
            supported = ", ".join(t.value for t in provider.job_types)
            problems.append(
                Problem(
                    "spec.type",
                    f"is not supported by provider {provider.key!r}; it supports: {supported}",
                    display_value(job_type),
                )
            )
        else:
            problems.extend(validate_job_config(provider, JobType(job_type), spec.get("config", {})))
    mode = spec.get("mode")
    if mode in {m.value for m in SyncMode} and SyncMode(mode) not in provider.modes:
        problems.append(
            Problem(
                "spec.mode",
                f"is not supported by provider {provider.key!r}; it supports: "
                f"{', '.join(m.value for m in provider.modes)}",
                display_value(mode),
            )
        )
    return problems


def validate_job_config(provider: Provider, job_type: JobType, config: Any) -> list[Problem]:
    """A job's `config` against the provider's model for the job type; paths under `spec.config`."""
    if not isinstance(config, Mapping):
        return [Problem("spec.config", "must be a mapping of the provider's settings", _shown(config))]
    model = provider.config_models[job_type]
    try:
        provider.parse_config(job_type, config)
    except ValidationError as error:
        return problems_from_validation_error(error, "spec.config", model)
    return []


def validate_job_authorization(
    job_spec: Mapping[str, Any], authorization_spec: Mapping[str, Any]
) -> list[Problem]:
    """A job and the Authorization it references must be for the same provider."""
    job_provider, authorization_provider = job_spec.get("provider"), authorization_spec.get("provider")
    if job_provider == authorization_provider:
        return []
    return [
        Problem(
            "spec.authorizationRef.name",
            f"names an Authorization for provider {authorization_provider!r}; "
            f"the job needs one for provider {job_provider!r}",
            _shown((job_spec.get("authorizationRef") or {}).get("name")),
        )
    ]


def validate_manifest(manifest: Any, catalog: Mapping[str, Provider] | None = None) -> list[Problem]:
    """A whole Authorization or DestinationJob object: apiVersion, kind, metadata and spec."""
    if not isinstance(manifest, Mapping):
        return [Problem("", "is not a Kubernetes object (a mapping with apiVersion, kind, metadata, spec)")]
    kind = manifest.get("kind")
    if kind not in KINDS:
        expected = " or ".join(KINDS)
        return [Problem("kind", f"is not a kind of {API_VERSION}; expected {expected}", _shown(kind))]
    problems: list[Problem] = []
    if manifest.get("apiVersion") != API_VERSION:
        problems.append(Problem("apiVersion", f"must be {API_VERSION}", _shown(manifest.get("apiVersion"))))
    metadata = manifest.get("metadata")
    namespace: str | None = None
    if not isinstance(metadata, Mapping):
        problems.append(Problem("metadata", "is required: a mapping with at least a name", _shown(metadata)))
    else:
        max_length = JOB_NAME_MAX_LENGTH if kind == "DestinationJob" else OBJECT_NAME_MAX_LENGTH
        if "name" in metadata or "generateName" not in metadata:
            problems.extend(validate_name(metadata.get("name"), max_length=max_length))
        if metadata.get("namespace") is not None:
            namespace_problems = validate_namespace_name(metadata["namespace"])
            problems.extend(namespace_problems)
            if not namespace_problems:
                namespace = str(metadata["namespace"])
    spec = manifest.get("spec")
    if kind == "DestinationJob":
        problems.extend(validate_job_spec(spec, namespace, catalog))
    else:
        problems.extend(validate_authorization_spec(spec, namespace, catalog))
    return problems


# --------------------------------------------------------------------------------------------- CLI


@dataclass(frozen=True)
class _Finding:
    source: str
    subject: str
    problem: Problem

    def __str__(self) -> str:
        return (
            f"{self.source}: {self.subject}: {self.problem}"
            if self.subject
            else f"{self.source}: {self.problem}"
        )


def _subject(manifest: Any, index: int) -> str:
    if isinstance(manifest, Mapping):
        metadata = manifest.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        kind = manifest.get("kind")
        if isinstance(kind, str) and isinstance(name, str):
            return f"{kind}/{name}"
        if isinstance(kind, str):
            return f"{kind} (document {index})"
    return f"document {index}"


def _read(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    return Path(source).read_text(encoding="utf-8")


@dataclass
class _Source:
    """One file's objects as `kubectl apply -f` reads them, and the unquoted texts that became values."""

    objects: list[Any]
    unquoted: dict[str, set[str]]
    """display_value(value) -> the texts written unquoted that kubectl reads as that value."""
    findings: list[_Finding]


def _documents(source: str) -> _Source:
    try:
        text = _read(source)
    except OSError as error:
        return _Source(
            [], {}, [_Finding(source, "", Problem("", f"cannot be read: {error.strerror or error}"))]
        )
    except UnicodeDecodeError:
        return _Source([], {}, [_Finding(source, "", Problem("", "cannot be read: not UTF-8 text"))])
    try:
        documents, unquoted = kubeyaml.read_documents(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        return _Source([], {}, [_Finding(source, "", Problem("", f"is not valid YAML: {reason}{where}"))])
    texts: dict[str, set[str]] = {}
    for value, written in unquoted:
        texts.setdefault(display_value(value), set()).add(written)
    objects: list[Any] = []
    findings: list[_Finding] = []
    for index, document in enumerate(documents, start=1):
        if document is not None:
            objects.extend(_flatten_lists(document, f"document {index}", source, findings))
    return _Source(objects, texts, findings)


def _is_list(document: Any) -> bool:
    """`kind: List` (and `<Kind>List`) with `items`: kubectl applies each item (v1 List, meta.IsListType)."""
    if not isinstance(document, Mapping) or "items" not in document:
        return False
    kind = document.get("kind")
    return isinstance(kind, str) and kind.endswith("List")


def _flatten_lists(document: Any, where: str, source: str, findings: list[_Finding]) -> list[Any]:
    if not _is_list(document):
        return [document]
    items = document.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        findings.append(
            _Finding(source, f"{document['kind']} ({where})", Problem("items", "must be a list of objects"))
        )
        return []
    flat: list[Any] = []
    for index, item in enumerate(items):
        flat.extend(_flatten_lists(item, f"{where}, items[{index}]", source, findings))
    return flat


def _with_quoting_advice(problem: Problem, unquoted: Mapping[str, set[str]]) -> Problem:
    """Name the text to quote when the file says which unquoted text kubectl turned into this value."""
    texts = unquoted.get(problem.value or "")
    if QUOTE_ADVICE not in problem.message or not texts or len(texts) != 1:
        return problem
    (written,) = texts
    return Problem(
        problem.path, problem.message.replace(QUOTE_ADVICE, f"write it in quotes: {written!r}"), problem.value
    )


def validate_sources(
    sources: Iterable[str], catalog: Mapping[str, Provider] | None = None
) -> tuple[int, list[str]]:
    """Validate every object of every file (`-` is stdin): the number of objects checked and the problems.

    Jobs are also checked against Authorizations found in the same files (same provider).
    """
    findings: list[_Finding] = []
    objects: list[tuple[str, str, Mapping[str, Any]]] = []
    for source in _expand_directories(sources):
        read = _documents(source)
        findings.extend(read.findings)
        for index, manifest in enumerate(read.objects, start=1):
            if isinstance(manifest, Mapping) and manifest.get("kind") in SKIPPED_KINDS:
                continue
            subject = _subject(manifest, index)
            problems = [_with_quoting_advice(p, read.unquoted) for p in validate_manifest(manifest, catalog)]
            findings.extend(_Finding(source, subject, problem) for problem in problems)
            if not problems and isinstance(manifest, Mapping):
                objects.append((source, subject, manifest))
    findings.extend(_reference_findings(objects))
    return len(objects), [str(finding) for finding in findings]


def _reference_findings(objects: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[_Finding]:
    authorizations = {
        (m["metadata"].get("namespace"), m["metadata"]["name"]): m["spec"]
        for _, _, m in objects
        if m["kind"] == "Authorization" and "name" in m["metadata"]
    }
    findings: list[_Finding] = []
    for source, subject, manifest in objects:
        if manifest["kind"] != "DestinationJob":
            continue
        key = (manifest["metadata"].get("namespace"), manifest["spec"]["authorizationRef"]["name"])
        if key in authorizations:
            problems = validate_job_authorization(manifest["spec"], authorizations[key])
            findings.extend(_Finding(source, subject, problem) for problem in problems)
    return findings


#: The files `kubectl apply -f DIRECTORY` reads from a directory (not its subdirectories).
MANIFEST_SUFFIXES = (".json", ".yaml", ".yml")


def _expand_directories(sources: Iterable[str]) -> list[str]:
    """Each directory replaced by its .json, .yaml and .yml files, sorted, as `kubectl apply -f` does."""
    expanded: list[str] = []
    for source in sources:
        path = Path(source)
        if source != "-" and path.is_dir():
            expanded.extend(
                str(child)
                for child in sorted(path.iterdir())
                if child.is_file() and child.suffix in MANIFEST_SUFFIXES
            )
        else:
            expanded.append(source)
    return expanded


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="YAML or JSON files (multi-document, List kinds), directories (their .json, .yaml and "
        ".yml files, as kubectl apply -f reads them); '-' reads stdin",
    )


def run(args: argparse.Namespace) -> int:
    try:
        catalog = _catalog(None)
    except Exception as error:  # a broken plug-in must not end in a traceback
        print(f"destinations validate: the provider catalog could not be loaded: {error!r}", file=sys.stderr)
        return 1
    checked, lines = validate_sources(args.files, catalog)
    for line in lines:
        print(line)
    if lines:
        print(f"{len(lines)} problem(s) found", file=sys.stderr)
        return 1
    print(f"OK: {checked} object(s) in {len(args.files)} file(s) are valid")
    return 0
