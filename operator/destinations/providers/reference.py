"""The provider catalog page (docs/providers.md), generated from the installed provider plug-ins.

Each provider declares its job types, auth methods, default schedule and a pydantic config model per
job type whose field docstrings document each field; this module renders those declarations as
Markdown so the page cannot drift from the code. Regenerate with
`python -m destinations.providers.reference --write docs/providers.md`; a test fails when it is stale.

Examples come from the repository's `examples/jobs/` (validated by their own test) when one exists for
the provider and job type; otherwise a minimal job with the required config fields is generated.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from destinations.api.durations import format_duration
from destinations.api.generated_docs import print_or_write
from destinations.api.models import SECRET_KEYS, AuthMethod, JobType
from destinations.providers.base import Provider
from destinations.providers.catalog import load_catalog
from destinations.providers.commands import describe_schedule

REPOSITORY = Path(__file__).resolve().parents[3]
EXAMPLES = REPOSITORY / "examples" / "jobs"

INTRODUCTION = """\
# Provider catalog

Generated from the installed provider plug-ins by
`python -m destinations.providers.reference --write docs/providers.md`; do not edit. The same
declarations drive `destinations providers` (`-o yaml` adds each config's JSON schema), the admission
checks and `destinations validate`.

A provider is a plug-in (entry-point group `destinations.providers`): it declares the job types it
supports, the auth methods it accepts, a config model per job type (the job's `spec.config`) and a
default schedule used when a job has no `spec.schedule`. See [concepts.md](concepts.md#providers) for
how the pieces fit together and [reference.md](reference.md) for the fields every job shares
(`source`, `sink`, `schedule`, `retry`, …).
"""

OAUTH2_SECTION = """
## OAuth2 tokens

An `oauth2` Authorization's Secret holds `accessToken`, or `refreshToken` with `clientId` and
`clientSecret` (and `tokenUrl` when the token endpoint is not the provider's default, e.g. a Salesforce
sandbox or My Domain); `serviceAccount` (Google) holds a service-account key file as
`serviceAccountJson`. The worker and the operator's credential check obtain access tokens themselves
(`destinations.providers._oauth`):

- **Cached and refreshed.** A token is used until one minute before its `expires_in` runs out, then
  refreshed; a 401 to a token refreshes it once and the request is sent again, so a token that expires
  or is revoked mid-run does not fail the run. Concurrent requests share one refresh. Service accounts
  sign a one-hour JWT assertion (RFC 7523) with their key for each new token.
- **Revoked grants.** A refresh refused with `invalid_grant` (the refresh token was revoked, expired,
  or the service-account key deleted) fails the run, and turns the Authorization `Unhealthy`, with a
  message that starts with what the server said and ends with `Re-authorize:` and the provider's way to
  get a new grant. Token values never appear in logs, Events, status or termination messages.
- **Rotated refresh tokens** (Salesforce with refresh token rotation: each refresh returns a new
  refresh token and invalidates the old one). The operator is the Secret's only writer: a rotation
  during its credential check is written into the Secret at once; one during a run or a dry run (a
  Salesforce insert or update dry run looks records up) travels back in the sync pod's termination
  message, sealed (Fernet, with a key derived from the Secret's own `clientSecret` and bound to the run,
  or to the dry-run request, so only a reader of the Secret can open it), and the operator writes it
  into the Secret when it reads the result, only if the Secret still holds the token it replaced (a
  person who re-authorized meanwhile wins). This is why the operator's ClusterRole may
  `patch` Secrets. A worker refused with `invalid_grant` reads the mounted Secret once more and retries
  with a newer token if the kubelet has already brought one; a run that refreshes within the minute
  the kubelet takes to update the volume fails once, and its retry mounts the new token. Keep
  `refreshToken` out of GitOps-managed Secrets for rotating providers (the operator updates it).
- **Per provider.** `google` and `salesforce` refresh from their own token endpoints (`tokenUrl`
  overrides); `webhook` refreshes only with a `tokenUrl`; `mailchimp` and `facebook` use `accessToken`
  as given, since Mailchimp's OAuth2 tokens do not expire and Meta issues no refresh tokens (renew a
  Meta token before it expires; an expired one fails the run with Meta's code 190).
"""

_ENDPOINTS: dict[JobType, str] = {
    JobType.EXPORT: "`source` (records read from a warehouse, a JSON-lines URL or a file)",
    JobType.IMPORT: "`sink` (records written to a warehouse table or a file)",
    JobType.ENRICHMENT: "`source` and `sink` (records read, enriched by the provider, then written)",
}


def _type_of(schema: Mapping[str, Any]) -> str:
    """A short, readable type for a JSON schema node."""
    if "anyOf" in schema:
        kinds = [_type_of(option) for option in schema["anyOf"] if option.get("type") != "null"]
        return " or ".join(kinds)
    if "$ref" in schema:
        return "object"
    if "enum" in schema:
        return " | ".join(f"`{value}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if kind == "object":
        values = schema.get("additionalProperties")
        value_type = _type_of(values) if isinstance(values, Mapping) else "any"
        keys = schema.get("propertyNames", {}).get("enum")
        key_type = " | ".join(f"`{key}`" for key in keys) if keys else "string"
        return f"map[{key_type}]{value_type}"
    if kind == "array":
        return f"[]{_type_of(schema.get('items', {}))}"
    return str(kind)


def _constraints(schema: Mapping[str, Any]) -> str:
    parts: list[str] = []
    if "minimum" in schema and "maximum" in schema:
        parts.append(f"{schema['minimum']} to {schema['maximum']}")
    elif "minimum" in schema:
        parts.append(f"at least {schema['minimum']}")
    if "exclusiveMinimum" in schema:
        parts.append(f"more than {schema['exclusiveMinimum']}")
    if "maximum" in schema and "minimum" not in schema:
        parts.append(f"at most {schema['maximum']}")
    if "minLength" in schema and schema["minLength"] > 0 and "pattern" not in schema:
        parts.append("not empty")
    if "pattern" in schema:
        parts.append(f"matches `{schema['pattern']}`")
    if "minProperties" in schema:
        parts.append(f"at least {schema['minProperties']} entry")
    return "; ".join(parts)


def _default_of(schema: Mapping[str, Any]) -> str:
    if "default" not in schema or schema["default"] is None or schema["default"] in ({}, []):
        return ""
    default = schema["default"]
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, Mapping):
        return "`{" + ", ".join(f"{key}: {value}" for key, value in default.items()) + "}`"
    return f"`{default}`"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def config_rows(schema: Mapping[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """(field, type, default, description) per field of a config model's JSON schema."""
    required = set(schema.get("required", ()))
    for name, child in schema.get("properties", {}).items():
        kind = _type_of(child)
        if name in required:
            kind += ", **required**"
        constraints = _constraints(child)
        description = child.get("description", "")
        if constraints:
            description = f"{description} ({constraints})" if description else constraints
        yield f"`{name}`", _cell(kind), _default_of(child), _cell(description)


def _config_table(schema: Mapping[str, Any]) -> str:
    lines = ["| field | type | default | description |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in config_rows(schema)]
    return "\n".join(lines) + "\n"


def _auth_table(provider: Provider) -> str:
    lines = ["| method | Secret keys (required) | Secret keys (optional) |", "|---|---|---|"]
    for method in provider.auth_methods:
        required, optional = SECRET_KEYS[method]
        required_text = ", ".join(f"`{key}`" for key in required) or "none (no `secretRef`)"
        optional_text = ", ".join(f"`{key}`" for key in optional)
        if method == AuthMethod.OAUTH2:
            required_text = (
                "`accessToken`, or `refreshToken` + `clientId` + `clientSecret` (refreshed as needed)"
            )
            optional_text = "`tokenUrl` (the token endpoint, when not the provider's)"
        lines.append(f"| `{method.value}` | {required_text} | {optional_text} |")
    return "\n".join(lines) + "\n"


def example_files(provider: Provider, job_type: JobType, examples: Path = EXAMPLES) -> list[Path]:
    """The repository's example jobs for this provider and job type, by file name."""
    found: list[Path] = []
    for path in sorted(examples.glob("*.yaml")) if examples.is_dir() else []:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not isinstance(document, dict) or document.get("kind") != "DestinationJob":
                continue
            spec = document.get("spec") or {}
            if spec.get("provider") == provider.key and spec.get("type") == job_type.value:
                found.append(path)
                break
    return found


def _placeholder(schema: Mapping[str, Any]) -> Any:
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return [_placeholder(schema.get("items", {}))]
    if kind == "object":
        return {}
    if schema.get("pattern", "").startswith("^https?://"):
        return "https://REPLACE-ME.example.com/"
    return "REPLACE-ME"


def skeleton(provider: Provider, job_type: JobType) -> str:
    """A minimal job for a provider and job type: the required config fields with placeholders."""
    schema = provider.config_models[job_type].model_json_schema(by_alias=True)
    config = {
        name: _placeholder(child)
        for name, child in schema.get("properties", {}).items()
        if name in schema.get("required", ())
    }
    spec: dict[str, Any] = {
        "provider": provider.key,
        "type": job_type.value,
        "authorizationRef": {"name": f"my-{provider.key}"},
    }
    file_source = {"file": {"path": "records.jsonl", "volume": {"configMap": "my-records"}}}
    if job_type in (JobType.EXPORT, JobType.ENRICHMENT):
        spec["source"] = file_source
    if job_type in (JobType.IMPORT, JobType.ENRICHMENT):
        spec["sink"] = {"file": {"path": "out.jsonl", "volume": {"persistentVolumeClaim": "my-exports"}}}
    spec["config"] = config
    job = {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {"name": f"my-{provider.key}-{job_type.value}"},
        "spec": spec,
    }
    return yaml.safe_dump(job, sort_keys=False)


def _example(provider: Provider, job_type: JobType, docs_dir: Path) -> str:
    files = example_files(provider, job_type)
    if not files:
        return f"Example (a minimal job):\n\n```yaml\n{skeleton(provider, job_type)}```\n"
    first = files[0]
    links = ", ".join(f"[`{path.relative_to(REPOSITORY)}`]({_relative(path, docs_dir)})" for path in files)
    text = first.read_text(encoding="utf-8")
    return f"Example ({links}):\n\n```yaml\n{text.rstrip()}\n```\n"


def _relative(path: Path, start: Path) -> str:
    return Path(*([".."] * len(start.relative_to(REPOSITORY).parts)), path.relative_to(REPOSITORY)).as_posix()


def _provider_section(provider: Provider, docs_dir: Path) -> str:
    job_types = ", ".join(f"`{job_type.value}`" for job_type in provider.job_types)
    lines = [
        f"\n## {provider.display_name} (`{provider.key}`)\n",
        f"{provider.description}\n",
        f"- Job types: {job_types}",
        f"- Default schedule: `{describe_schedule(provider.default_schedule)}`",
    ]
    if provider.min_interval is not None:
        lines.append(
            f"- Runs more often than every `{format_duration(provider.min_interval)}` are likely to hit "
            "the provider's rate limits (admission warns)"
        )
    modes = ", ".join(mode.value for mode in provider.modes)
    note = f". {provider.modes_note}" if provider.modes_note else ""
    lines.append(f"- Sync modes (`spec.mode`, exports): {modes}{note}")
    lines.append(f"- Provider documentation: <{provider.documentation_url}>\n")
    lines.append(f"### Authorization methods\n\n{_auth_table(provider)}")
    parts = ["\n".join(lines)]
    for job_type in provider.job_types:
        model = provider.config_models[job_type]
        schema = model.model_json_schema(by_alias=True)
        parts.append(
            f"\n### `{job_type.value}` jobs\n\n"
            f"{schema.get('description', '')}\n\nNeeds {_ENDPOINTS[job_type]}. "
            f"`spec.config` fields:\n\n{_config_table(schema)}\n{_example(provider, job_type, docs_dir)}"
        )
    return "".join(parts)


def render(catalog: Mapping[str, Provider] | None = None, docs_dir: Path = REPOSITORY / "docs") -> str:
    """The whole catalog page as Markdown."""
    providers = load_catalog() if catalog is None else catalog
    summary = [
        "\n| provider | key | job types | auth methods | modes | default schedule |",
        "|---|---|---|---|---|---|",
    ]
    for provider in providers.values():
        summary.append(
            f"| [{provider.display_name}](#{_anchor(provider)}) | `{provider.key}` | "
            f"{', '.join(job_type.value for job_type in provider.job_types)} | "
            f"{', '.join(method.value for method in provider.auth_methods)} | "
            f"{', '.join(mode.value for mode in provider.modes)} | "
            f"{describe_schedule(provider.default_schedule)} |"
        )
    sections = [_provider_section(provider, docs_dir) for provider in providers.values()]
    return INTRODUCTION + "\n".join(summary) + "\n" + OAUTH2_SECTION + "".join(sections)


def _anchor(provider: Provider) -> str:
    """GitHub's anchor for the provider's heading."""
    heading = f"{provider.display_name} ({provider.key})".lower()
    kept = "".join(char for char in heading if char.isalnum() or char in " -_")
    return kept.replace(" ", "-")


def main(argv: Sequence[str] | None = None) -> int:
    return print_or_write(
        render, argv, prog="python -m destinations.providers.reference", description=__doc__
    )


if __name__ == "__main__":
    sys.exit(main())
