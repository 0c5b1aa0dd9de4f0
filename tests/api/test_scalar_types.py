"""Issue 13, item 3: `destinations validate`, admission and the operator read every scalar of a spec as the
API server reads it, a property over every leaf of the generated CRD schemas.

The server converts no JSON type into another: `"5"` is text to a `type: integer` field, `1` and `"true"`
are no booleans, `"12.5"` is no number, `5` is no text. It does take a whole float within 2^53 for an
integer (`3.0` is 3), and a quantity is int-or-string. pydantic's lax mode converted all of these; the
models now use strict types (destinations/api/scalars.py). Each leaf is set, in turn, to values of every
JSON type, and the three readers must accept exactly the type the CRD declares, and refuse the others
naming the field, the value and what is accepted. The last tests send a sample of those values to the
API server (`sandbox_api`: the emulator and kube-apiserver) with `dryRun=All`, which must agree.
Reference: https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from destinations.controller.admission import VALIDATE_AUTHORIZATION, VALIDATE_JOB, ClusterFacts, review
from destinations.controller.health import parse_authorization
from destinations.controller.observing import JobView, parse_spec
from destinations.providers.base import CredentialCheck
from destinations.validate import Problem, validate_authorization_spec, validate_job_spec
from tests.fixtures.sandbox import SandboxApi

CRDS = Path(__file__).parents[2] / "crds"
NAMESPACE = "default"

JOB = {
    "provider": "webhook",
    "type": "export",
    "authorizationRef": {"name": "hook"},
    "config": {"url": "https://example.com/hook"},
    "source": {"url": {"url": "https://example.com/records.jsonl"}},
}
AUTHORIZATION = {"provider": "webhook", "method": "apiKey", "secretRef": {"name": "credentials"}}


def _leaves(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every scalar of a structural schema: (path with `[0]` for list items and `.<key>` for map
    entries, its schema); free-form subtrees (`spec.config`) have none."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if schema.get("type") == "object":
        for name, child in (schema.get("properties") or {}).items():
            yield from _leaves(child, f"{path}.{name}")
        if isinstance(schema.get("additionalProperties"), dict):
            yield from _leaves(schema["additionalProperties"], f"{path}.<key>")
    elif schema.get("type") == "array":
        yield from _leaves(schema["items"], f"{path}[0]")
    else:
        yield path, schema


def _spec_leaves(kind: str) -> list[tuple[str, dict[str, Any]]]:
    crd = yaml.safe_load((CRDS / f"{kind}.destinations.dev.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return list(_leaves(schema, "spec"))


JOB_LEAVES = _spec_leaves("destinationjobs")
AUTHORIZATION_LEAVES = _spec_leaves("authorizations")


def _declared(schema: dict[str, Any]) -> str:
    if schema.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    return str(schema["type"])


def test_the_crds_have_leaves_of_every_type() -> None:
    # Guards the walk itself: an empty or partial walk would make every property below vacuous.
    declared = [_declared(schema) for _, schema in JOB_LEAVES + AUTHORIZATION_LEAVES]
    assert {kind: declared.count(kind) for kind in set(declared)} == {
        "string": 126,
        "integer": 10,
        "number": 3,
        "boolean": 5,
        "int-or-string": 2,
    }


def _concrete(template: str) -> str:
    """The template path with map entries named: `cpu` in resources, `team` elsewhere."""
    return re.sub(r"\.(requests|limits)\.<key>", r".\1.cpu", template).replace(".<key>", ".team")


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`base` (a spec) with the leaf at `path` (`spec.a.b[0].c`) set to `value`, objects made on the way."""
    spec = copy.deepcopy(base)
    steps: list[str | int] = []
    for part in path.split(".")[1:]:
        name, _, index = part.partition("[")
        steps.append(name)
        if index:
            steps.append(0)
    node: Any = spec
    for step, following in itertools.pairwise(steps):
        empty: Any = [] if isinstance(following, int) else {}
        if isinstance(step, int):
            if not node:
                node.append(empty)
            node = node[0]
        else:
            if not isinstance(node.get(step), type(empty)):
                node[step] = empty
            node = node[step]
    if isinstance(steps[-1], int):
        node[:] = [value]
    else:
        node[steps[-1]] = value
    return spec


# --------------------------------------------------------------------------- values and their verdicts

UNQUOTE = "quoted in YAML, kubectl sends it as text; write it without quotes"
QUOTE = "put it in quotes"
NUMBER_UNQUOTED = "unquoted in YAML, kubectl sends it as a number"
#: Literal refusals per declared type: (value, message). Strings with an `enum` say "must be one of".
REFUSED: dict[str, list[tuple[Any, str]]] = {
    "integer": [
        ("3", f'must be a whole number, not the text "3": {UNQUOTE} (got "3")'),
        ("three", 'must be a whole number, not the text "three" (got "three")'),
        ("yes", 'must be a whole number, not the text "yes" (got "yes")'),  # unquoted, a boolean
        (True, "must be a whole number, not the boolean true (got true)"),
        (2.5, "must be a whole number, not the number 2.5 (got 2.5)"),
        (
            10**20,
            "must be a whole number (JSON integer, -9223372036854775808 to 9223372036854775807); "
            "100000000000000000000 does not fit in 64 bits",
        ),
    ],
    "number": [
        ("12.5", f'must be a number, not the text "12.5": {UNQUOTE} (got "12.5")'),
        (True, "must be a number, not the boolean true (got true)"),
    ],
    "boolean": [
        ("true", f'must be true or false, not the text "true": {UNQUOTE} (got "true")'),
        ("yes", f'must be true or false, not the text "yes": {UNQUOTE} (got "yes")'),
        ("maybe", 'must be true or false, not the text "maybe" (got "maybe")'),
        (1, "must be true or false, not the number 1 (got 1)"),
        (0, "must be true or false, not the number 0 (got 0)"),
    ],
    "string": [
        (5, f"must be text (a string), not the number 5: {NUMBER_UNQUOTED}; {QUOTE} (got 5)"),
        (2.5, f"must be text (a string), not the number 2.5: {NUMBER_UNQUOTED}; {QUOTE} (got 2.5)"),
        (
            True,
            "must be text (a string), not the boolean true: unquoted in YAML, kubectl sends it as a boolean; "
            f"{QUOTE} (got true)",
        ),
    ],
    "int-or-string": [
        (True, "a quantity is text such as '500m' or a whole number, not the boolean true (got true)"),
        (
            2.5,
            "a quantity is text such as '500m' or a whole number, not a number with a fraction: unquoted in "
            f"YAML, kubectl sends it as a number; {QUOTE} (got 2.5)",
        ),
    ],
}  # fmt: skip
#: Values of the declared type (within every bound the CRDs set for these fields).
ACCEPTED: dict[str, list[Any]] = {
    "integer": [3, 3.0],
    "number": [12.5, 3],
    "boolean": [True, False],
    "string": ["x"],
    "int-or-string": [3, 3.0, "100m"],
}
#: Values of the right type that a rule across fields refuses where the leaf is set alone (`3` also
#: stands for `3.0`): not a type problem. A `once` schedule is `true` or left out (models.Schedule).
RULES = {
    ("spec.schedule.once", False): "once must be true when set; use every or cron for repeating jobs",
    (
        "spec.podTemplate.tolerations[0].tolerationSeconds",
        3,
    ): "tolerationSeconds applies to effect NoExecute only",
}
TYPE_PHRASES = ("must be a whole number", "must be a number", "must be true or false", "must be text")


#: A duration given a number or boolean: quoting `60` would not make it one, so no quote advice.
DURATION = "must be a duration such as 90s, 15m, 1h30m, 10h or 90d (units ms, s, m, h, d), written as text"


def _refusal(path: str, schema: dict[str, Any], value: Any, message: str) -> str:
    if "(ms|s|m|h|d)" in schema.get("pattern", ""):
        shown = {5: "the number 5", 2.5: "the number 2.5", True: "the boolean true (got true)"}[value]
        return f"{path}: {DURATION}; not {shown}"
    if "enum" in schema:
        accepted = ", ".join(schema["enum"])
        return f"{path}: must be one of: {accepted} (got {str(value).lower()})"
    return f"{path}: {message}"


def _cases(leaves: list[tuple[str, dict[str, Any]]]) -> Iterator[tuple[str, Any, str | None]]:
    """(concrete path, value, the problem expected at that path, None when accepted) for every leaf."""
    for template, schema in leaves:
        path = _concrete(template)
        kind = _declared(schema)
        for value, message in REFUSED[kind]:
            yield path, value, _refusal(path, schema, value, message)
        for value in ACCEPTED[kind] if "enum" not in schema else [schema["enum"][0]]:
            rule = RULES.get((path, value))
            yield path, value, f"{path}: {rule}" if rule else None


def _at(path: str, problems: list[Problem]) -> list[str]:
    return [str(problem) for problem in problems if problem.path == path]


def _type_problems_at(path: str, text: str) -> list[str]:
    return [phrase for phrase in TYPE_PHRASES if f"{path}: {phrase}" in text]


def _check(path: str, value: Any, expected: str | None, found_at_path: list[str], kind: str) -> str | None:
    """What is wrong with one reader's problems at `path`, or None."""
    if expected is not None:
        return None if found_at_path == [expected] else f"{path}={value!r}: {found_at_path}"
    if kind == "string":  # "x" may miss a pattern; only a type problem is wrong
        wrong = [text for text in found_at_path if _type_problems_at(path, text)]
    else:
        wrong = found_at_path
    return f"{path}={value!r} accepted, yet: {wrong}" if wrong else None


def test_validate_reads_every_job_scalar_as_the_crd_declares() -> None:
    kinds = {_concrete(template): _declared(schema) for template, schema in JOB_LEAVES}
    wrong = []
    for path, value, expected in _cases(JOB_LEAVES):
        found = _at(path, validate_job_spec(_with(JOB, path, value), NAMESPACE))
        wrong.append(_check(path, value, expected, found, kinds[path]))
    assert [w for w in wrong if w] == []


def test_validate_reads_every_authorization_scalar_as_the_crd_declares() -> None:
    kinds = {_concrete(template): _declared(schema) for template, schema in AUTHORIZATION_LEAVES}
    wrong = []
    for path, value, expected in _cases(AUTHORIZATION_LEAVES):
        found = _at(path, validate_authorization_spec(_with(AUTHORIZATION, path, value), NAMESPACE))
        wrong.append(_check(path, value, expected, found, kinds[path]))
    assert [w for w in wrong if w] == []


def _lines_at(path: str, text: str) -> list[str]:
    """The problems about `path` in a reader's joined message ("a; b" or one per line)."""
    parts = re.split(r"; (?=spec\.)|\n", text.removeprefix("the spec is invalid: "))
    return [part.strip(" -") for part in parts if part.strip(" -").startswith(f"{path}: ")]


def _review(webhook: str, spec: dict[str, Any], kind: str) -> str:
    request = {
        "operation": "CREATE",
        "object": {
            "apiVersion": "destinations.dev/v1",
            "kind": kind,
            "metadata": {"name": "subject", "namespace": NAMESPACE},
            "spec": spec,
        },
        "userInfo": {"username": "alice"},
        "namespace": NAMESPACE,
    }
    authorization = {"metadata": {"name": "hook", "namespace": NAMESPACE}, "spec": AUTHORIZATION}
    verdict = review(webhook, request, ClusterFacts(authorizations=[authorization], jobs=[]))
    return "" if verdict.allowed else str(verdict.message)


def test_admission_and_the_operator_read_every_job_scalar_as_the_crd_declares() -> None:
    kinds = {_concrete(template): _declared(schema) for template, schema in JOB_LEAVES}
    wrong = []
    for path, value, expected in _cases(JOB_LEAVES):
        spec = _with(JOB, path, value)
        admission = _review(VALIDATE_JOB, spec, "DestinationJob")
        view = JobView(NAMESPACE, "subject", "uid-1", 1, spec, None, None, False)
        operator = parse_spec(view, AUTHORIZATION, default_purge_after=None).problems or ""
        for reader, text in (("admission", admission), ("operator", operator)):
            problem = _check(path, value, expected, _lines_at(path, text), kinds[path])
            wrong.append(f"{reader}: {problem}" if problem else None)
    assert [w for w in wrong if w] == []


def test_admission_and_the_operator_read_every_authorization_scalar_as_the_crd_declares() -> None:
    kinds = {_concrete(template): _declared(schema) for template, schema in AUTHORIZATION_LEAVES}
    wrong = []
    for path, value, expected in _cases(AUTHORIZATION_LEAVES):
        spec = _with(AUTHORIZATION, path, value)
        admission = _review(VALIDATE_AUTHORIZATION, spec, "Authorization")
        parsed = parse_authorization(spec, NAMESPACE)
        operator = parsed.message if isinstance(parsed, CredentialCheck) else ""
        for reader, text in (("admission", admission), ("operator", operator or "")):
            problem = _check(path, value, expected, _lines_at(path, text), kinds[path])
            wrong.append(f"{reader}: {problem}" if problem else None)
    assert [w for w in wrong if w] == []


def test_the_operator_reads_a_whole_float_as_the_integer_the_api_server_stores() -> None:
    spec = _with(_with(JOB, "spec.history.failed", 7.0), "spec.retryRejectedAttempts", 1e1)
    parsed = parse_spec(
        JobView(NAMESPACE, "j", "uid-1", 1, spec, None, None, False), None, default_purge_after=None
    )
    assert parsed.spec is not None, parsed.problems
    assert (parsed.spec.history.failed, type(parsed.spec.history.failed)) == (7, int)
    assert (parsed.spec.retry_rejected_attempts, type(parsed.spec.retry_rejected_attempts)) == (10, int)


# ------------------------------------------------------------------------------- the API server agrees

#: A valid job that sets a scalar of every kind; each of its leaves the CRD declares is the sample sent
#: to the API server with values of every JSON type.
RICH_JOB: dict[str, Any] = {
    **JOB,
    "displayName": "Export",
    "source": {
        "url": {
            "url": "https://example.com/records.jsonl",
            "pagination": {"maxPages": 10, "nextLinkHeader": True, "cursorParam": "cursor"},
        }
    },
    "schedule": {"once": True},
    "paused": False,
    "retryRejected": True,
    "retryRejectedAttempts": 5,
    "mirror": {"maxRemovePercent": 20},
    "history": {"succeeded": 3, "failed": 3},
    "alerts": {"maxRejectedPercent": 5, "minRecords": 1, "maxRecordDrop": 50, "noSuccessFor": "24h"},
    "runTimeout": "6h",
    "podTemplate": {
        "resources": {"requests": {"cpu": "100m"}},
        "tolerations": [
            {"key": "dedicated", "value": "sync", "effect": "NoExecute", "tolerationSeconds": 60}
        ],
        "affinity": {
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 10, "preference": {"matchExpressions": [{"key": "ssd", "operator": "Exists"}]}}
                ]
            }
        },
    },
}  # fmt: skip
RICH_AUTHORIZATION = {
    **AUTHORIZATION,
    "displayName": "Hook",
    "checkInterval": "24h",
    "endpoint": "https://example.com",
}


def _present(spec: dict[str, Any], path: str) -> bool:
    node: Any = {"spec": spec}
    for part in re.findall(r"[^.\[\]]+|\[0\]", path):
        if part == "[0]":
            if not isinstance(node, list) or not node:
                return False
            node = node[0]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True


def _sample(base: dict[str, Any], leaves: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, Any, bool]]:
    """(path, value, whether it is of the declared type) for every leaf `base` sets."""
    sample = []
    for template, schema in leaves:
        path = _concrete(template)
        if not _present(base, path):
            continue
        kind = _declared(schema)
        refused = [value for value, _ in REFUSED[kind] if not (kind == "integer" and value == 10**20)]
        accepted = [value for value in ACCEPTED[kind] if kind != "string" and (path, value) not in RULES]
        sample += [(path, value, False) for value in refused] + [(path, value, True) for value in accepted]
    return sample


def test_the_sample_covers_every_kind_of_scalar() -> None:
    paths = {path for path, _, _ in _sample(RICH_JOB, JOB_LEAVES)}
    kinds = {_declared(schema) for template, schema in JOB_LEAVES if _concrete(template) in paths}
    assert kinds == {"string", "integer", "number", "boolean", "int-or-string"}
    assert len(paths) == 28
    assert validate_job_spec(RICH_JOB, NAMESPACE) == []
    assert validate_authorization_spec(RICH_AUTHORIZATION, NAMESPACE) == []


def _server_verdicts(
    api: SandboxApi, resource: str, kind: str, base: dict[str, Any], sample: list[tuple[str, Any, bool]]
) -> dict[tuple[str, str], str]:
    verdicts = {}
    for path, value, _ in sample:
        body = {
            "apiVersion": "destinations.dev/v1",
            "kind": kind,
            "metadata": {"name": "subject"},
            "spec": _with(base, path, value),
        }
        response = api.post(f"/apis/destinations.dev/v1/namespaces/{NAMESPACE}/{resource}?dryRun=All", body)
        if response.status_code == 201:
            verdicts[path, repr(value)] = "accepted"
        else:
            fields = {cause.get("field") for cause in response.json().get("details", {}).get("causes", [])}
            verdicts[path, repr(value)] = (
                f"{response.status_code} at the field" if path in fields else response.text
            )
    return verdicts


def test_the_api_server_reads_the_sampled_job_scalars_as_validate_does(sandbox_api: SandboxApi) -> None:
    sample = _sample(RICH_JOB, JOB_LEAVES)
    server = _server_verdicts(sandbox_api, "destinationjobs", "DestinationJob", RICH_JOB, sample)
    ours = {
        (path, repr(value)): "accepted"
        if not validate_job_spec(_with(RICH_JOB, path, value), NAMESPACE)
        else "422 at the field"
        for path, value, _ in sample
    }
    expected = {
        (path, repr(value)): "accepted" if right else "422 at the field" for path, value, right in sample
    }
    assert (server, ours) == (expected, expected)


def test_the_api_server_reads_the_sampled_authorization_scalars_as_validate_does(
    sandbox_api: SandboxApi,
) -> None:
    sample = _sample(RICH_AUTHORIZATION, AUTHORIZATION_LEAVES)
    assert len(sample) == 3 * 6  # every leaf of an Authorization but description and secretRef.namespace
    server = _server_verdicts(sandbox_api, "authorizations", "Authorization", RICH_AUTHORIZATION, sample)
    ours = {
        (path, repr(value)): "accepted"
        if not validate_authorization_spec(_with(RICH_AUTHORIZATION, path, value), NAMESPACE)
        else "422 at the field"
        for path, value, _ in sample
    }
    expected = {
        (path, repr(value)): "accepted" if right else "422 at the field" for path, value, right in sample
    }
    assert (server, ours) == (expected, expected)
