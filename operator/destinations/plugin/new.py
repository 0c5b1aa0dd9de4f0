"""`kubectl destinations new`: create a job step by step, in the order of the product's Jobs wizard.

Provider → job type → Authorization (an existing Healthy one of that provider, or a new one: its
method, then the Secret's keys for that method, asked without echo) → the config fields of the
provider's schema for that job type, with their descriptions and defaults → source and/or sink →
sync mode (exports, when the provider has more than one) → schedule → the job's name. Every answer
is checked as it is given (the same pydantic models the admission webhooks use), and the result is
checked whole with `destinations validate`'s rules.

The output is GitOps-ready YAML: the Authorization (when new) and the DestinationJob, printed or
written with `-f FILE`; the Secret is never printed but written to its own file (mode 0600,
`--secret-file`), to keep out of Git or to seal. `--apply` creates the objects instead.

Every question has a flag, so scripts run it without a terminal (`--provider webhook --type export
…`); without a terminal a missing answer falls back to its default, or fails naming its flag.
Prompts use questionary (prompt_toolkit), https://questionary.readthedocs.io/.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import questionary
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from destinations import API_VERSION
from destinations.api.crds import JOB_NAME_MAX_LENGTH
from destinations.api.models import (
    DNS_SUBDOMAIN_PATTERN,
    SECRET_KEYS,
    AuthMethod,
    DataEndpoint,
    JobType,
    Schedule,
    SyncMode,
    missing_secret_keys,
)
from destinations.plugin.errors import PermissionDenied, PluginError, Unreachable, UsageError
from destinations.plugin.providers import sync_modes
from destinations.providers.base import Provider
from destinations.providers.catalog import load_catalog
from destinations.providers.commands import describe_schedule
from destinations.validate import validate_manifest

if TYPE_CHECKING:
    from destinations.plugin.main import Session

Json = dict[str, Any]
Check = Callable[[str], str | None]
"""Validates one answer: None when fine, else a sentence saying what is accepted."""
NEW_AUTHORIZATION = "<new>"
DEFAULT_SCHEDULE = "default"


# ---------------------------------------------------------------------------------------- prompter


class Prompter:
    """Asks one question, or takes its answer from a flag; without a terminal, defaults or fails."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive

    def checked(self, flag: str, given: str, check: Check | None) -> str:
        """A flag's value, checked like the question's answer; `UsageError` naming the flag otherwise."""
        problem = check(given) if check else None
        if problem:
            raise UsageError(f"{flag} {given!r}: {problem}")
        return given

    def choose(
        self,
        question: str,
        choices: Sequence[tuple[str, str]],
        *,
        flag: str,
        given: str | None,
        default: str | None = None,
    ) -> str:
        """One of `choices` ((value, title) pairs); a flag's value must be one of the values."""
        values = [value for value, _ in choices]
        if given is not None:
            if given not in values:
                raise UsageError(f"{flag} {given!r} is not one of: {', '.join(values)}")
            return given
        if not self.interactive:
            if default is not None:
                return default
            raise UsageError(f"{flag} is required without a terminal; one of: {', '.join(values)}")
        answer = questionary.select(
            question,
            choices=[questionary.Choice(title, value=value) for value, title in choices],
            default=default if default in values else None,
            # Typing filters the list (arrow keys move, Enter picks): long catalogs stay quick to use.
            use_search_filter=True,
            use_jk_keys=False,
            instruction="(type to filter, arrows to move, Enter to pick)",
        ).unsafe_ask()
        return str(answer)

    def text(
        self,
        question: str,
        *,
        flag: str,
        given: str | None,
        check: Check | None = None,
        default: str | None = None,
        instruction: str | None = None,
    ) -> str:
        """Free text; an empty answer takes `default` (when there is one)."""
        if given is not None:
            return self.checked(flag, given, check)
        if not self.interactive:
            if default is not None:
                return default
            raise UsageError(f"{flag} is required without a terminal")

        def validate(answer: str) -> bool | str:
            if answer == "" and default is not None:
                return True
            return (check(answer) if check else None) or True

        answer = questionary.text(
            question, default=default or "", validate=validate, instruction=instruction
        ).unsafe_ask()
        return str(answer) if answer != "" or default is None else default

    def secret(self, question: str, *, required: bool) -> str:
        """A credential, typed without echo; optional ones may be left empty."""

        def validate(answer: str) -> bool | str:
            return True if answer or not required else "this key is required for the method"

        return str(questionary.password(question, validate=validate).unsafe_ask())


# ------------------------------------------------------------------------------------------ checks


def check_name(max_length: int) -> Check:
    def check(value: str) -> str | None:
        if len(value) > max_length or not re.match(DNS_SUBDOMAIN_PATTERN, value):
            return (
                f"must be a name of at most {max_length} characters: lower case letters, digits, '-' "
                "and '.', starting and ending with a letter or digit"
            )
        return None

    return check


def _first_error(error: ValidationError) -> str:
    detail = error.errors()[0]
    location = ".".join(str(part) for part in detail["loc"])
    return f"{location}: {detail['msg']}" if location else str(detail["msg"])


def field_check(model: type[BaseModel], field_name: str) -> Callable[[Any], str | None]:
    """Validates one config field's value with its type and constraints (pattern, bounds)."""
    field = model.model_fields[field_name]
    annotation: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)

    def check(value: Any) -> str | None:
        try:
            adapter.validate_python(value)
        except ValidationError as error:
            return _first_error(error)
        return None

    return check


def parse_value(text: str, schema: Mapping[str, Any]) -> Any:
    """An answer as the field's type: strings stay as typed, others are read as YAML (`{a: b}`, `[x]`)."""
    types = {schema.get("type")} | {option.get("type") for option in schema.get("anyOf") or []}
    if types <= {"string", "null", None} and "string" in types:
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"not valid YAML: {getattr(error, 'problem', None) or error}") from None


def flow(value: Any) -> str:
    """A default value shown as one line of YAML: `{EMAIL: email}`, `[a, b]`, `10000`."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def parse_schedule(text: str) -> Json | None:
    """`default`, `every 1h`, `cron 0 6 * * * [Europe/Paris]` or `once` as `spec.schedule` (None: default)."""
    words = text.split()
    if not words or words == [DEFAULT_SCHEDULE]:
        return None
    kind, rest = words[0], words[1:]
    if kind == "every" and len(rest) == 1:
        schedule: Json = {"every": rest[0]}
    elif kind == "cron" and len(rest) in (5, 6):
        schedule = {"cron": " ".join(rest[:5])} | ({"timezone": rest[5]} if len(rest) == 6 else {})
    elif kind == "once" and not rest:
        schedule = {"once": True}
    else:
        raise ValueError(
            "expected 'default', 'every 1h', 'cron 0 6 * * *' (optionally a time zone after) or 'once'"
        )
    try:
        Schedule.model_validate(schedule)
    except ValidationError as error:
        raise ValueError(_first_error(error)) from None
    return schedule


def check_schedule(text: str) -> str | None:
    try:
        parse_schedule(text)
    except ValueError as error:
        return str(error)
    return None


def check_url(value: str) -> str | None:
    return None if re.match(r"^https?://\S+$", value) else "expected an http:// or https:// address"


def check_endpoint(role: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        try:
            endpoint = DataEndpoint.model_validate(value)
        except ValidationError as error:
            return _first_error(error)
        if role == "sink" and endpoint.url is not None:
            return "a sink is a warehouse table or a file; url is for sources only"
        if role == "sink" and endpoint.warehouse is not None and endpoint.warehouse.table is None:
            return "a warehouse sink needs a table; a query only works as a source"
        return None

    return check


def parse_credentials(pairs: Sequence[str]) -> dict[str, str]:
    """`--credential KEY=VALUE` pairs; `KEY=@path` reads the value from a file (no shell history)."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise UsageError(f"--credential {pair.split('=')[0]!r}: expected KEY=VALUE or KEY=@FILE")
        if value.startswith("@"):
            try:
                value = Path(value[1:]).read_text(encoding="utf-8").strip()
            except OSError as error:
                raise UsageError(f"--credential {key}: cannot read {value[1:]}: {error.strerror}") from None
        values[key] = value
    return values


# ------------------------------------------------------------------------------------------ wizard


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", help="catalog key (kubectl destinations providers)")
    parser.add_argument("--type", help="job type: import, export or enrichment")
    parser.add_argument("--authorization", help="an existing Authorization of the provider")
    parser.add_argument("--new-authorization", metavar="NAME", help="create an Authorization with this name")
    parser.add_argument("--method", help="auth method of the new Authorization")
    parser.add_argument(
        "--credential",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a key of the new Authorization's Secret; KEY=@FILE reads the value from a file (repeatable)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a config field, VALUE as YAML (repeatable)",
    )
    parser.add_argument(
        "--source", metavar="YAML", help="spec.source as YAML, e.g. '{url: {url: https://…}}'"
    )
    parser.add_argument(
        "--sink", metavar="YAML", help="spec.sink as YAML, e.g. '{file: {path: out.jsonl, …}}'"
    )
    parser.add_argument("--mode", help="export sync mode: upsert (default), mirror, insert or update")
    parser.add_argument(
        "--schedule",
        help="default, 'every 1h', 'cron 0 6 * * * [TIMEZONE]' or once (default: the provider's)",
    )
    parser.add_argument("--name", help="the DestinationJob's name")
    parser.add_argument("--display-name", help="the job's display name")
    parser.add_argument("-f", "--file", help="write the YAML here instead of printing it")
    parser.add_argument(
        "--secret-file",
        help="where the new Secret's YAML goes (default: <authorization>-credentials.yaml, mode 0600)",
    )
    parser.add_argument("--apply", action="store_true", help="create the objects in the cluster")


class Wizard:
    def __init__(self, args: argparse.Namespace, session: Session, prompter: Prompter) -> None:
        self.args = args
        self.session = session
        self.ask = prompter
        self.catalog = load_catalog()

    def say(self, text: str) -> None:
        """Progress notes go to stderr: stdout may be the YAML."""
        self.session.errors.print(text)

    # --- provider, type ----------------------------------------------------------------------------

    def provider(self) -> Provider:
        choices = [(key, f"{key}: {provider.display_name}") for key, provider in self.catalog.items()]
        key = self.ask.choose("Provider:", choices, flag="--provider", given=self.args.provider)
        return self.catalog[key]

    def job_type(self, provider: Provider) -> JobType:
        choices = [(job_type.value, job_type.value) for job_type in provider.job_types]
        default = choices[0][0] if len(choices) == 1 else None
        return JobType(
            self.ask.choose("Job type:", choices, flag="--type", given=self.args.type, default=default)
        )

    # --- authorization -----------------------------------------------------------------------------

    def existing_authorizations(self, provider: Provider) -> list[Json]:
        try:
            items = self.session.kube().list_authorizations("offer the existing Authorizations")
        except (PermissionDenied, Unreachable) as error:
            self.say(f"note: existing Authorizations are not offered: {error}")
            return []
        return [item for item in items if (item.get("spec") or {}).get("provider") == provider.key]

    def authorization(self, provider: Provider) -> tuple[str, Json | None, Json | None]:
        """(name, Authorization manifest when new, Secret manifest when new)."""
        if self.args.authorization is not None:
            return self.args.authorization, None, None
        if self.args.new_authorization is None:
            existing = self.existing_authorizations(provider) if self.ask.interactive else []
            healthy = [a for a in existing if (a.get("status") or {}).get("health") == "Healthy"]
            for item in existing:
                if item not in healthy:
                    health = (item.get("status") or {}).get("health", "Unknown")
                    self.say(
                        f"note: Authorization {item['metadata']['name']} is {health}, so it is not offered"
                    )
            choices = [(a["metadata"]["name"], f"{a['metadata']['name']} (Healthy)") for a in healthy]
            choices.append((NEW_AUTHORIZATION, "new: create a new Authorization"))
            picked = self.ask.choose(
                "Authorization:",
                choices,
                flag="--authorization or --new-authorization",
                given=None,
                default=NEW_AUTHORIZATION if not self.ask.interactive else None,
            )
            if picked != NEW_AUTHORIZATION:
                return picked, None, None
        name = self.ask.text(
            "Name of the new Authorization:",
            flag="--new-authorization",
            given=self.args.new_authorization,
            check=check_name(253),
            default=provider.key,
        )
        methods = [(method.value, method.value) for method in provider.auth_methods]
        method = AuthMethod(
            self.ask.choose(
                "Auth method:",
                methods,
                flag="--method",
                given=self.args.method,
                default=methods[0][0] if len(methods) == 1 else None,
            )
        )
        spec: Json = {"provider": provider.key, "method": method.value}
        secret = None
        if method != AuthMethod.NONE:
            secret_name = f"{name}-credentials"
            spec["secretRef"] = {"name": secret_name}
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": self.metadata(secret_name),
                "type": "Opaque",
                "stringData": self.credentials(method),
            }
        manifest = {
            "apiVersion": API_VERSION,
            "kind": "Authorization",
            "metadata": self.metadata(name),
            "spec": spec,
        }
        return name, manifest, secret

    def credentials(self, method: AuthMethod) -> dict[str, str]:
        required, optional = SECRET_KEYS[method]
        given = parse_credentials(self.args.credential)
        unknown = sorted(set(given) - set(required) - set(optional))
        if unknown:
            raise UsageError(
                f"--credential {unknown[0]}: method {method.value} uses the keys "
                f"{', '.join(required + optional)}"
            )
        values: dict[str, str] = {}
        for key in required + optional:
            if key in given:
                values[key] = given[key]
            elif not self.ask.interactive:
                if key in required:
                    raise UsageError(f"--credential {key}=VALUE is required for method {method.value}")
            else:
                suffix = "" if key in required else " (optional, Enter to skip)"
                answer = self.ask.secret(f"Secret key {key}{suffix}:", required=key in required)
                if answer:
                    values[key] = answer
        # oauth2 needs accessToken, or refreshToken with clientId and clientSecret: no single key is required.
        missing = missing_secret_keys(method, values)
        if missing:
            raise UsageError(
                f"--credential {missing[0]}=VALUE is required for method {method.value} "
                "(oauth2: accessToken, or refreshToken with clientId and clientSecret)"
            )
        return values

    # --- config ------------------------------------------------------------------------------------

    def config(self, provider: Provider, job_type: JobType) -> Json:
        model = provider.config_models[job_type]
        schema = model.model_json_schema(by_alias=True)
        properties: Mapping[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        given: dict[str, str] = {}
        for pair in self.args.set:
            key, separator, value = pair.partition("=")
            if not separator or key not in properties:
                raise UsageError(
                    f"--set {key!r}: {provider.key} {job_type.value} config fields are "
                    f"{', '.join(properties)}"
                )
            given[key] = value
        by_alias = {field.alias or name: name for name, field in model.model_fields.items()}
        config: Json = {}
        if self.ask.interactive:
            self.say(
                f"Config of the {provider.display_name} {job_type.value} job ({provider.documentation_url}):"
            )
        for alias, field_schema in properties.items():
            value = self.config_field(
                model, by_alias[alias], alias, field_schema, alias in required, given.get(alias)
            )
            if value is not None:
                config[alias] = value
        return config

    def config_field(
        self,
        model: type[BaseModel],
        field_name: str,
        alias: str,
        schema: Mapping[str, Any],
        required: bool,
        given: str | None,
    ) -> Any:
        """One config field's value, or None to leave it at its default."""
        check_value = field_check(model, field_name)
        flag = f"--set {alias}=…"
        has_default = "default" in schema

        def check(text: str) -> str | None:
            try:
                return check_value(parse_value(text, schema))
            except ValueError as error:
                return str(error)

        if given is not None:
            return parse_value(self.ask.checked(flag, given, check), schema)
        if not self.ask.interactive:
            if required:
                raise UsageError(f"config field {alias} is required: pass --set {alias}=VALUE")
            return None
        description = schema.get("description", "")
        enum = schema.get("enum") or next((o["enum"] for o in schema.get("anyOf") or [] if "enum" in o), None)
        if enum:
            choices = [(str(value), str(value)) for value in enum]
            if has_default and schema["default"] is None:
                choices.insert(0, ("", "(none)"))
            default = "" if schema.get("default") is None else str(schema.get("default"))
            picked = self.ask.choose(
                f"{alias}: {description}", choices, flag=flag, given=None, default=default
            )
            return None if picked in ("", default) else picked
        default_text = flow(schema["default"]) if has_default and schema["default"] is not None else None
        instruction = (
            f"(default {default_text})"
            if default_text is not None
            else ("(required)" if required else "(optional)")
        )
        answer = self.ask.text(
            f"{alias}: {description}",
            flag=flag,
            given=None,
            check=check,
            default=default_text if default_text is not None else (None if required else ""),
            instruction=instruction,
        )
        if answer == "" or answer == default_text:
            return None
        return parse_value(answer, schema)

    # --- source, sink, schedule, name ---------------------------------------------------------------

    def endpoint(self, role: str) -> Json:
        check = check_endpoint(role)
        given = getattr(self.args, role)
        if given is not None:
            try:
                loaded = yaml.safe_load(given)
            except yaml.YAMLError as error:
                raise UsageError(
                    f"--{role}: not valid YAML: {getattr(error, 'problem', None) or error}"
                ) from None
            problem = check(loaded)
            if problem:
                raise UsageError(f"--{role}: {problem}")
            return dict(loaded)
        if not self.ask.interactive:
            raise UsageError(
                f"--{role} is required without a terminal, e.g. --{role} '{{url: {{url: https://…}}}}'"
            )
        kinds = [
            ("warehouse", "warehouse: a PostgreSQL table or query"),
            ("url", "url: JSON lines over HTTP(S)"),
            ("file", "file: a JSONL or CSV file on a volume"),
        ]
        if role == "sink":
            kinds = [kind for kind in kinds if kind[0] != "url"]
        kind = self.ask.choose(f"{role.capitalize()}:", kinds, flag=f"--{role}", given=None)
        text = self.ask.text
        if kind == "url":
            url = text("URL of the first page:", flag=f"--{role}", given=None, check=check_url)
            value: Json = {"url": {"url": url}}
        elif kind == "warehouse":
            secret = text(
                "Secret holding the connection string:", flag=f"--{role}", given=None, check=check_name(253)
            )
            key = text("Key in that Secret:", flag=f"--{role}", given=None, default="dsn")
            warehouse: Json = {"connectionSecretRef": {"name": secret, "key": key}}
            shapes = [("table", "table: read a whole table"), ("query", "query: run a SELECT")]
            shape = (
                "table"
                if role == "sink"
                else self.ask.choose("Read a table or run a query?", shapes, flag=f"--{role}", given=None)
            )
            warehouse[shape] = text(f"{shape.capitalize()}:", flag=f"--{role}", given=None)
            columns = text("Key column(s), comma separated:", flag=f"--{role}", given=None, default="email")
            if columns != "email":
                warehouse["key"] = [column.strip() for column in columns.split(",") if column.strip()]
            value = {"warehouse": warehouse}
        else:
            path = text("File path inside the volume:", flag=f"--{role}", given=None)
            file_format = self.ask.choose(
                "Format:", [("jsonl", "jsonl"), ("csv", "csv")], flag=f"--{role}", given=None
            )
            volumes = [
                ("persistentVolumeClaim", "persistentVolumeClaim: a PersistentVolumeClaim"),
                ("hostPath", "hostPath: a directory on the node (development clusters)"),
            ]
            if role == "source":
                volumes.insert(1, ("configMap", "configMap: a ConfigMap"))
            volume = self.ask.choose("Volume:", volumes, flag=f"--{role}", given=None)
            volume_name = text(f"{volume}:", flag=f"--{role}", given=None)
            value = {"file": {"path": path, "format": file_format, "volume": {volume: volume_name}}}
        problem = check(value)
        if problem:
            raise UsageError(f"{role}: {problem}")
        return value

    def mode(self, provider: Provider, source: Json) -> str:
        """The export's sync mode among the provider's; mirror only with a warehouse source."""
        descriptions = {
            "upsert": "create and update members",
            "mirror": "also remove members who left the source (needs a warehouse source)",
            "insert": "only create members; existing ones are left untouched",
            "update": "only update members; unknown ones are skipped",
        }
        modes = sync_modes(provider)
        if "warehouse" not in source and SyncMode.MIRROR.value in modes and self.args.mode is None:
            modes.remove(SyncMode.MIRROR.value)
        if len(modes) == 1 and self.args.mode is None:
            return modes[0]
        choices = [(mode, f"{mode}: {descriptions.get(mode, '')}".rstrip(": ")) for mode in modes]
        return self.ask.choose(
            "Sync mode:", choices, flag="--mode", given=self.args.mode, default=SyncMode.UPSERT.value
        )

    def schedule(self, provider: Provider) -> Json | None:
        default_text = describe_schedule(provider.default_schedule)
        if self.args.schedule is not None:
            self.ask.checked("--schedule", self.args.schedule, check_schedule)
            return parse_schedule(self.args.schedule)
        if not self.ask.interactive:
            return None
        kinds = [
            (DEFAULT_SCHEDULE, f"default: the provider's, {default_text}"),
            ("every", "every: an interval such as 1h"),
            ("cron", "cron: a cron expression, optionally with a time zone"),
            ("once", "once: run once, then the job is Completed"),
        ]
        kind = self.ask.choose("Schedule:", kinds, flag="--schedule", given=None, default=DEFAULT_SCHEDULE)
        if kind in (DEFAULT_SCHEDULE, "once"):
            return parse_schedule(kind)
        prompt = "Interval (e.g. 1h, 30m):" if kind == "every" else "Cron expression and optional time zone:"
        answer = self.ask.text(
            prompt, flag="--schedule", given=None, check=lambda v: check_schedule(f"{kind} {v}")
        )
        return parse_schedule(f"{kind} {answer}")

    def metadata(self, name: str) -> Json:
        metadata: Json = {"name": name}
        if self.session.args.namespace:
            metadata["namespace"] = self.session.args.namespace
        return metadata

    # --- the whole creation --------------------------------------------------------------------------

    def run(self) -> tuple[list[Json], Json | None]:
        """(the manifests to print or apply, in apply order; the Secret when a new one is needed)."""
        provider = self.provider()
        job_type = self.job_type(provider)
        authorization_name, authorization, secret = self.authorization(provider)
        config = self.config(provider, job_type)
        spec: Json = {
            "provider": provider.key,
            "type": job_type.value,
            "authorizationRef": {"name": authorization_name},
        }
        if config:
            spec["config"] = config
        if job_type in (JobType.EXPORT, JobType.ENRICHMENT):
            spec["source"] = self.endpoint("source")
        if job_type in (JobType.IMPORT, JobType.ENRICHMENT):
            spec["sink"] = self.endpoint("sink")
        if job_type == JobType.EXPORT:
            mode = self.mode(provider, spec["source"])
            if mode != SyncMode.UPSERT.value:
                spec["mode"] = mode
        schedule = self.schedule(provider)
        if schedule is not None:
            spec["schedule"] = schedule
        name = self.ask.text(
            "Job name:",
            flag="--name",
            given=self.args.name,
            check=check_name(JOB_NAME_MAX_LENGTH),
            default=f"{provider.key}-{job_type.value}",
        )
        display_name = self.ask.text(
            "Display name (optional):", flag="--display-name", given=self.args.display_name, default=""
        )
        if display_name:
            spec = {"displayName": display_name, **spec}
        job = {
            "apiVersion": API_VERSION,
            "kind": "DestinationJob",
            "metadata": self.metadata(name),
            "spec": spec,
        }
        manifests = [*([authorization] if authorization else []), job]
        problems = [
            f"{m['kind']} {m['metadata']['name']}: {p}" for m in manifests for p in validate_manifest(m)
        ]
        if problems:
            raise PluginError("the job does not validate:\n  " + "\n  ".join(problems))
        return manifests, secret


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def run(args: argparse.Namespace, session: Session) -> int:
    interactive = sys.stdin.isatty()
    manifests, secret = Wizard(args, session, Prompter(interactive)).run()
    if args.apply:
        kube = session.kube()
        for manifest in ([secret] if secret else []) + manifests:
            kube.create(manifest, f"create the {manifest['kind']}")
            session.console.print(
                f"{manifest['kind'].lower()}/{manifest['metadata']['name']} created in {kube.namespace}"
            )
        return 0
    text = yaml.safe_dump_all(manifests, sort_keys=False, allow_unicode=True, width=110)
    if args.file:
        Path(args.file).write_text(text, encoding="utf-8")
        session.errors.print(f"Wrote {args.file}.")
    else:
        session.console.file.write(text)
    if secret is not None:
        default_directory = Path(args.file).parent if args.file else Path()
        path = (
            Path(args.secret_file)
            if args.secret_file
            else default_directory / f"{secret['metadata']['name']}.yaml"
        )
        _write_private(path, yaml.safe_dump(secret, sort_keys=False))
        session.errors.print(
            f"The Secret {secret['metadata']['name']} is in {path} (mode 0600): keep it out of Git (seal "
            f"it with SOPS or Sealed Secrets), and apply it before the Authorization: kubectl apply -f {path}"
        )
    return 0
