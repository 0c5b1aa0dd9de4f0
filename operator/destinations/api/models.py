"""The API types of `destinations.dev/v1`: Authorization and DestinationJob, spec and status.

These pydantic models are the single source of truth: the CRD schemas in `crds/`, the field reference
in `docs/reference.md` and every validation (offline `destinations validate`, the admission webhooks,
the operator's own checks when webhooks are off) come from them. Field docstrings become the CRD's
`description`s, so `kubectl explain destinationjob.spec.retry` reads well.
"""

from __future__ import annotations

import json
import re
import typing
import zoneinfo
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from croniter import CroniterError, croniter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, model_validator
from pydantic.alias_generators import to_camel

from destinations.api.durations import Duration, DurationOrNever
from destinations.api.scalars import Boolean, Integer, Number, PositiveInteger
from destinations.api.syntax import (
    ANNOTATIONS_MAX_BYTES,
    AnnotationKey,
    ContainerResourceName,
    LabelValue,
    NamespaceName,
    NodeName,
    QualifiedName,
    Quantity,
    SecretName,
    is_extended_resource,
    parse_quantity,
)

DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ResourceName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
"""A Kubernetes object name (RFC 1123 subdomain: lower case, digits, '-' and '.')."""

ProviderKey = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z][a-z0-9-]*$")]


COLLECT_PROBLEMS = "collect_problems"
"""Validation context key: leave cross-field checks to the caller, who asks `rule_problems()`."""


_NULL_KEYS: dict[type, tuple[frozenset[str], frozenset[str]]] = {}


def _null_keys(model: type[BaseModel]) -> tuple[frozenset[str], frozenset[str]]:
    """The field names and aliases of `model`, and those of its typed maps; computed once per model
    (every parse of every object asks: issue 18 measured it as the operator's largest cost per job)."""
    found = _NULL_KEYS.get(model)
    if found is None:
        fields = model.model_fields
        keys = frozenset(fields) | {field.alias for field in fields.values() if field.alias}
        typed_maps = frozenset(
            field.alias or name
            for name, field in fields.items()
            if typing.get_origin(field.annotation) is dict and typing.get_args(field.annotation)[1] is not Any
        )
        found = _NULL_KEYS[model] = (keys, typed_maps)
    return found


class ApiModel(BaseModel):
    """Base of every API type: camelCase in YAML, snake_case in Python, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        validate_default=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _null_means_absent(cls, data: Any) -> Any:
        """An explicit `null` for a field is the field left out, then defaulted, as on the API server.

        None of these fields is `nullable` in the CRD, and the API server prunes a non-nullable `null`
        before applying defaults (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/
        custom-resource-definitions/#defaulting-and-nullable). It does so in typed maps too
        (`labels: {team: null}` is `labels: {}`), but not in lists (a `null` item is refused) nor in
        free-form objects (`config` keeps its `null`s). Checked against kube-apiserver in
        tests/api/test_validate_at_once.py.
        """
        if not isinstance(data, dict):
            return data
        keys, typed_maps = _null_keys(cls)
        cleaned: dict[Any, Any] = {}
        for key, value in data.items():
            if value is None and key in keys:
                continue
            if key in typed_maps and isinstance(value, dict) and None in value.values():
                value = {entry: item for entry, item in value.items() if item is not None}
            cleaned[key] = value
        return cleaned

    def rule_problems(self) -> list[tuple[str, str]]:
        """Checks across this object's fields, as `(field, message)` with the field as written in YAML
        (`""`: the object itself). `destinations validate` reports them all at once (it parses with
        the context `{COLLECT_PROBLEMS: True}`); a plain parse raises the first as a ValueError."""
        return []

    @model_validator(mode="after")
    def _check_rules(self, info: ValidationInfo) -> Self:
        if info.context and info.context.get(COLLECT_PROBLEMS):
            return self
        problems = self.rule_problems()
        if problems:
            raise ValueError(problems[0][1])
        return self

    def to_manifest(self) -> dict[str, Any]:
        """The YAML/JSON form, with defaults written out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(ApiModel):
    """Status is written by the operator only; tolerate fields added by newer operator versions."""

    model_config = ConfigDict(extra="ignore")


# --------------------------------------------------------------------------------------------- enums


class JobType(StrEnum):
    """What a job does with the provider."""

    IMPORT = "import"
    EXPORT = "export"
    ENRICHMENT = "enrichment"


class AuthMethod(StrEnum):
    """How credentials are presented to a provider."""

    API_KEY = "apiKey"
    BASIC = "basic"
    OAUTH2 = "oauth2"
    SERVICE_ACCOUNT = "serviceAccount"
    NONE = "none"


#: The Secret keys each method needs, and the optional ones it understands.
SECRET_KEYS: dict[AuthMethod, tuple[tuple[str, ...], tuple[str, ...]]] = {
    AuthMethod.API_KEY: (("apiKey",), ()),
    AuthMethod.BASIC: (("username", "password"), ()),
    AuthMethod.OAUTH2: ((), ("accessToken", "refreshToken", "clientId", "clientSecret", "tokenUrl")),
    AuthMethod.SERVICE_ACCOUNT: (("serviceAccountJson",), ()),
    AuthMethod.NONE: ((), ()),
}


def missing_secret_keys(method: AuthMethod, values: Mapping[str, str]) -> list[str]:
    """The Secret keys `method` needs that are absent or blank.

    oauth2 needs `accessToken`, or `refreshToken` with `clientId` and `clientSecret` (the worker and
    the health check then obtain access tokens themselves; `tokenUrl` overrides the provider's).
    """
    required, _ = SECRET_KEYS[method]
    missing = [key for key in required if not (values.get(key) or "").strip()]
    if method == AuthMethod.OAUTH2:
        present = {key for key, value in values.items() if (value or "").strip()}
        if "refreshToken" in present:
            missing += [key for key in ("clientId", "clientSecret") if key not in present]
        elif "accessToken" not in present:
            missing.append("accessToken")
    return missing


class SyncMode(StrEnum):
    """What an export does with members: create and update (`upsert`), also remove those that left
    the source (`mirror`), only create (`insert`: existing members are left untouched) or only update
    (`update`: unknown members are skipped). Each provider declares the modes it supports
    (`kubectl destinations providers`, docs/providers.md)."""

    UPSERT = "upsert"
    MIRROR = "mirror"
    INSERT = "insert"
    UPDATE = "update"


class Phase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SLEEPING = "Sleeping"
    FAILED = "Failed"
    PAUSED = "Paused"
    COMPLETED = "Completed"


class Health(StrEnum):
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    UNKNOWN = "Unknown"


class RunResult(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RATE_LIMITED = "rate_limited"


# ------------------------------------------------------------------------------------------ references


class LocalObjectReference(ApiModel):
    """A reference to an object in the same namespace."""

    name: ResourceName
    """Name of the object, in the same namespace as the referring object."""
    namespace: str | None = None
    """Accepted only when equal to the referring object's namespace: references to other namespaces are
    refused."""


class SecretKeyReference(ApiModel):
    """One key of a Secret in the same namespace."""

    name: ResourceName
    """Name of the Secret, in the same namespace as the job."""
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """The key inside the Secret."""


# ----------------------------------------------------------------------------------------- Authorization


class AuthorizationSpec(ApiModel):
    """Credentials for one provider, kept in a Secret and health-checked by the operator."""

    provider: ProviderKey
    """Catalog key of the provider these credentials are for, e.g. `mailchimp`."""
    method: AuthMethod
    """How the credentials are presented; must be one the provider accepts."""
    secret_ref: LocalObjectReference | None = None
    """The Secret holding the credentials. Keys by method: apiKey: `apiKey`; basic: `username`, `password`;
    oauth2: `accessToken`, or `refreshToken` + `clientId` + `clientSecret` (optional `tokenUrl`);
    serviceAccount: `serviceAccountJson`. Required unless method is `none`."""
    display_name: str | None = Field(default=None, max_length=256)
    """Human-readable name shown in tools."""
    description: str | None = Field(default=None, max_length=4096)
    """Free text."""
    check_interval: Duration = timedelta(hours=24)
    """How often the operator re-checks the credentials' health."""
    endpoint: str | None = Field(default=None, pattern=r"^https?://\S+$")
    """Overrides the provider's API base address (a regional endpoint, a proxy, a test server)."""

    def rule_problems(self) -> list[tuple[str, str]]:
        if self.method != AuthMethod.NONE and self.secret_ref is None:
            return [
                (
                    "secretRef",
                    f"secretRef is required for method {self.method.value!r}; only 'none' works without one",
                )
            ]
        return []


class Condition(StatusModel):
    """A Kubernetes-style condition (see the API conventions)."""

    type: str
    status: str
    """True, False or Unknown."""
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class AuthorizationStatus(StatusModel):
    """Health of the credentials, written by the operator."""

    health: Health = Health.UNKNOWN
    """Healthy, Unhealthy or Unknown (not checked yet)."""
    message: str | None = None
    """Why the credentials are unhealthy, or what the last check found."""
    last_checked_at: str | None = None
    """When the credentials were last checked (RFC 3339)."""
    used_by: int = 0
    """How many DestinationJobs reference this Authorization."""
    conditions: list[Condition] = []
    """`Ready` is True when the credentials are Healthy."""
    observed_generation: int | None = None
    """The generation of the spec the status describes."""


# --------------------------------------------------------------------------------------- data endpoints


class WarehouseEndpoint(ApiModel):
    """A PostgreSQL table or query."""

    connection_secret_ref: SecretKeyReference
    """A Secret key holding a libpq connection string (`postgresql://user:pass@host:5432/db`)."""
    table: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
    """A table (optionally schema-qualified): read whole as a source, upserted into as a sink."""
    query: str | None = Field(default=None, min_length=1)
    """A SELECT statement; only for sources."""
    key: list[str] = Field(default=["email"], min_length=1)
    """The column(s) identifying a record: the upsert key of a sink, the key a source's rejected records
    are shown and kept under. Mirror mode compares members by the provider's identities, not by it."""

    def rule_problems(self) -> list[tuple[str, str]]:
        if (self.table is None) == (self.query is None):
            return [("", "set exactly one of table or query")]
        return []


class Pagination(ApiModel):
    """How to follow pages of a JSON-lines URL."""

    next_link_header: Boolean = True
    """Follow `Link: <...>; rel="next"` response headers (RFC 8288)."""
    cursor_param: str | None = None
    """Query parameter carrying the cursor read from the `nextCursorHeader` response header."""
    next_cursor_header: str | None = None
    """Response header holding the cursor of the next page."""
    max_pages: Integer = Field(default=10_000, ge=1)
    """Stop after this many pages."""


class UrlEndpoint(ApiModel):
    """JSON lines served over HTTP(S), one record per line."""

    url: str = Field(pattern=r"^https?://\S+$")
    """The address of the first page."""
    pagination: Pagination = Pagination()
    """How further pages are found."""
    headers_secret_ref: LocalObjectReference | None = None
    """A Secret whose keys are sent as request headers (e.g. `Authorization`)."""


class FileFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


class FileVolume(ApiModel):
    """Where the file lives: exactly one volume source."""

    persistent_volume_claim: ResourceName | None = None
    """Name of a PersistentVolumeClaim in the job's namespace."""
    config_map: ResourceName | None = None
    """Name of a ConfigMap in the job's namespace (read-only; sources only)."""
    host_path: str | None = None
    """A directory on the node, an absolute path without `..` (development clusters only)."""

    def rule_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        chosen = [v for v in (self.persistent_volume_claim, self.config_map, self.host_path) if v is not None]
        if len(chosen) != 1:
            problems.append(("", "set exactly one of persistentVolumeClaim, configMap or hostPath"))
        if self.host_path is not None and (
            not self.host_path.startswith("/") or ".." in self.host_path.split("/")
        ):
            # The API server refuses a relative hostPath and one with '..' (validatePathNoBacksteps).
            problems.append(
                ("hostPath", f"hostPath {self.host_path!r} must be an absolute path without '..'")
            )
        return problems


class FileEndpoint(ApiModel):
    """A JSONL or CSV file on a volume mounted into the sync pod."""

    path: str = Field(min_length=1, pattern=r"^[^/].*$")
    """Path of the file relative to the volume's root."""
    format: FileFormat = FileFormat.JSONL
    """`jsonl` (one JSON object per line) or `csv` (a header row, then records)."""
    volume: FileVolume
    """The volume holding the file."""


class DataEndpoint(ApiModel):
    """Where records come from or go to: exactly one of `warehouse`, `url` or `file`."""

    warehouse: WarehouseEndpoint | None = None
    """A PostgreSQL table or query."""
    url: UrlEndpoint | None = None
    """JSON lines over HTTP(S); sources only."""
    file: FileEndpoint | None = None
    """A JSONL or CSV file on a mounted volume."""

    def rule_problems(self) -> list[tuple[str, str]]:
        chosen = [k for k in ("warehouse", "url", "file") if getattr(self, k) is not None]
        if len(chosen) != 1:
            return [("", f"set exactly one of warehouse, url or file (got {', '.join(chosen) or 'none'})")]
        return []

    @property
    def kind(self) -> str:
        return next(k for k in ("warehouse", "url", "file") if getattr(self, k) is not None)


# -------------------------------------------------------------------------------------------- schedule


class Schedule(ApiModel):
    """When the job runs: exactly one of `every`, `cron` or `once`."""

    every: Duration | None = None
    """Run at this interval, e.g. `1h`, measured from the start of the previous run."""
    cron: str | None = None
    """A five-field cron expression, e.g. `0 6 * * *`."""
    timezone: str | None = None
    """IANA time zone for `cron`, e.g. `Europe/Paris` (default UTC); daylight-saving changes are honoured."""
    once: Boolean | None = None
    """`true`: run once; the job is Completed after its first successful run."""

    def rule_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        chosen = [k for k in ("every", "cron", "once") if getattr(self, k) is not None]
        if len(chosen) != 1:
            problems.append(
                ("", f"set exactly one of every, cron or once (got {', '.join(chosen) or 'none'})")
            )
        if self.once is False:
            problems.append(("once", "once must be true when set; use every or cron for repeating jobs"))
        if self.cron is not None:
            if not croniter.is_valid(self.cron):
                problems.append(
                    (
                        "cron",
                        f"cron {self.cron!r} is not a valid five-field cron expression such as '0 6 * * *'",
                    )
                )
            elif len(self.cron.split()) != 5:
                problems.append(
                    (
                        "cron",
                        f"cron {self.cron!r} must have five fields: "
                        "minute hour day-of-month month day-of-week",
                    )
                )
            elif not _cron_ever_matches(self.cron):
                problems.append(
                    (
                        "cron",
                        f"cron {self.cron!r} never matches: no month it names has the day of the month it "
                        "names (such as 30 February); use days that exist, or '*' in the day-of-week field",
                    )
                )
        if self.timezone is not None:
            if self.cron is None:
                problems.append(("timezone", "timezone applies to cron schedules only"))
            elif not _is_time_zone(self.timezone):
                problems.append(
                    (
                        "timezone",
                        f"timezone {self.timezone!r} is not an IANA time zone "
                        "such as 'Europe/Paris' or 'UTC'",
                    )
                )
        return problems


def _cron_ever_matches(expression: str) -> bool:
    """Whether the expression matches at all: a cron without a year either recurs or never matches.

    croniter looks ahead several years (far enough for 29 February) and gives up on `0 0 30 2 *`.
    """
    try:
        croniter(expression, datetime(2026, 1, 1)).get_next(datetime)
    except CroniterError:
        return False
    return True


def _is_time_zone(name: str) -> bool:
    if not re.fullmatch(r"[A-Za-z0-9_+\-/]+", name):
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


# --------------------------------------------------------------------------------------- DestinationJob


class RetryPolicy(ApiModel):
    """Backoff after failed runs, and when to give up."""

    initial_backoff: Duration = timedelta(minutes=1)
    """Wait after the first failed run; doubles after each further failure."""
    max_backoff: Duration = timedelta(hours=1)
    """The longest wait between retries."""
    fail_after: Duration = timedelta(hours=10)
    """The job turns Failed once runs have kept failing for this long with no success between."""

    def rule_problems(self) -> list[tuple[str, str]]:
        if self.max_backoff < self.initial_backoff:
            return [("maxBackoff", "maxBackoff must not be shorter than initialBackoff")]
        return []


class HistoryLimits(ApiModel):
    """How many finished sync pods are kept for their logs."""

    succeeded: Integer = Field(default=3, ge=0, le=100)
    """Pods of succeeded runs to keep."""
    failed: Integer = Field(default=3, ge=0, le=100)
    """Pods of failed runs to keep."""


class Toleration(ApiModel):
    """A core/v1 Toleration."""

    key: QualifiedName | None = None
    """The taint key (a label key); empty with `operator: Exists` tolerates every taint."""
    operator: str | None = Field(default=None, pattern=r"^(Exists|Equal)$")
    value: LabelValue | None = None
    effect: str | None = Field(default=None, pattern=r"^(NoSchedule|PreferNoSchedule|NoExecute)$")
    toleration_seconds: Integer | None = None
    """For `effect: NoExecute` only: how long the pod stays on a node after the taint appears."""

    def rule_problems(self) -> list[tuple[str, str]]:
        # The API server's ValidateTolerations (k8s.io/kubernetes/pkg/apis/core/validation).
        problems: list[tuple[str, str]] = []
        if self.operator == "Exists" and self.value:
            problems.append(("value", "value must be empty when operator is Exists"))
        if not self.key and self.operator != "Exists":
            problems.append(
                ("operator", "operator must be Exists when key is empty (it tolerates every taint)")
            )
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            problems.append(("tolerationSeconds", "tolerationSeconds applies to effect NoExecute only"))
        return problems


class ResourceRequirements(ApiModel):
    """CPU and memory requests and limits, e.g. `{cpu: 100m, memory: 256Mi}`."""

    requests: dict[ContainerResourceName, Quantity] = {}
    limits: dict[ContainerResourceName, Quantity] = {}

    def rule_problems(self) -> list[tuple[str, str]]:
        # The API server's ValidateResourceRequirements: a request never above its limit; extended
        # resources and huge pages are not overcommitted (a limit, and the request equal to it).
        problems: list[tuple[str, str]] = []
        for name, requested in self.requests.items():
            limit = self.limits.get(name)
            fixed = is_extended_resource(name) or name.startswith("hugepages-")
            if limit is None:
                if fixed:
                    problems.append(
                        (f"limits.{name}", f"limits.{name} is required: {name} cannot be overcommitted")
                    )
                continue
            if fixed and parse_quantity(requested) != parse_quantity(limit):
                problems.append(
                    (f"requests.{name}", f"requests.{name} {requested} must equal limits.{name} {limit}")
                )
            elif (parse_quantity(requested) or 0) > (parse_quantity(limit) or 0):
                problems.append(
                    (f"requests.{name}", f"requests.{name} {requested} must not exceed limits.{name} {limit}")
                )
        return problems


# ------------------------------------------------------------------------------------------- affinity
# core/v1 Affinity with the API server's checks (validateAffinity in k8s.io/kubernetes
# pkg/apis/core/validation, ValidateLabelSelector in k8s.io/apimachinery pkg/apis/meta/v1/validation),
# each checked against kube-apiserver 1.36 in tests/controller/test_pod_values.py. Field docs:
# https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#scheduling and
# https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#affinity-and-anti-affinity.

#: The largest value `Gt`/`Lt` compare with: node label values are parsed as 64-bit integers.
_INT64_MAX = 2**63 - 1


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class NodeSelectorRequirement(ApiModel):
    """A requirement on one node label: `key`, `operator` and `values`."""

    key: QualifiedName
    """The node label key, `name` or `prefix/name`, e.g. `kubernetes.io/arch`."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
    """`In`/`NotIn` (values listed), `Exists`/`DoesNotExist` (no values), `Gt`/`Lt` (one whole number)."""
    values: list[LabelValue] = []
    """Label values: at least one for In and NotIn, none for Exists and DoesNotExist, exactly one
    whole number for Gt and Lt."""

    def rule_problems(self) -> list[tuple[str, str]]:
        return _operator_value_problems(self.operator, self.values, whole_number_operators=("Gt", "Lt"))


def _operator_value_problems(
    operator: str, values: list[str], whole_number_operators: tuple[str, ...] = ()
) -> list[tuple[str, str]]:
    """ValidateNodeSelectorRequirement / ValidateLabelSelectorRequirement: values against the operator."""
    if operator in ("In", "NotIn") and not values:
        return [("values", f"values must list at least one label value when operator is {operator}")]
    if operator in ("Exists", "DoesNotExist") and values:
        return [
            (
                "values",
                f"values must be left out when operator is {operator} (it tests the key only); "
                f"got {_json(values)}",
            )
        ]
    if operator in whole_number_operators:
        if len(values) != 1:
            return [
                (
                    "values",
                    f'values must be exactly one whole number, such as ["3"], when operator is {operator}; '
                    f"got {_json(values)}",
                )
            ]
        # The API server takes any label value; the scheduler parses it as an int64 and a node never
        # matches one that is not (k8s.io/apimachinery labels.NewRequirement): refused on purpose.
        if not re.fullmatch(r"[0-9]+", values[0]) or int(values[0]) > _INT64_MAX:
            return [
                (
                    "values[0]",
                    f"values[0] {values[0]!r} must be a whole number written in digits (0 to {_INT64_MAX}) "
                    f"when operator is {operator}: the scheduler compares node labels as numbers",
                )
            ]
    return []


class NodeFieldSelectorRequirement(ApiModel):
    """A requirement on a node field; `metadata.name` is the only field Kubernetes accepts."""

    key: Literal["metadata.name"]
    """`metadata.name`."""
    operator: Literal["In", "NotIn"]
    """`In` or `NotIn`."""
    values: list[NodeName] = []
    """Exactly one node name."""

    def rule_problems(self) -> list[tuple[str, str]]:
        if len(self.values) != 1:
            return [
                (
                    "values",
                    f"values must be exactly one node name when operator is {self.operator} "
                    f"(matchFields compare a node's name with one value); got {_json(self.values)}",
                )
            ]
        return []


class NodeSelectorTerm(ApiModel):
    """Node requirements that must all hold (an empty term matches no node)."""

    match_expressions: list[NodeSelectorRequirement] = []
    """Requirements on node labels."""
    match_fields: list[NodeFieldSelectorRequirement] = []
    """Requirements on node fields (`metadata.name`)."""


class NodeSelector(ApiModel):
    """Terms of which a node must match at least one."""

    node_selector_terms: list[NodeSelectorTerm]
    """At least one term; a node matching any term qualifies."""

    def rule_problems(self) -> list[tuple[str, str]]:
        if not self.node_selector_terms:
            return [
                (
                    "nodeSelectorTerms",
                    "nodeSelectorTerms must list at least one term (a node matching any of them qualifies)",
                )
            ]
        return []


class PreferredSchedulingTerm(ApiModel):
    """A node preference and its weight."""

    weight: Integer = Field(ge=1, le=100)
    """1 to 100, added to a node's score when it matches `preference`."""
    preference: NodeSelectorTerm | None = None
    """The node requirements that earn the weight."""


class NodeAffinity(ApiModel):
    """Which nodes the sync pods may run on, or prefer."""

    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    """Nodes must match one of these terms."""
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] = []
    """Nodes matching these terms are preferred, by weight."""


class LabelSelectorRequirement(ApiModel):
    """A requirement on one label: `key`, `operator` and `values`."""

    key: QualifiedName
    """The label key, `name` or `prefix/name`."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """`In`/`NotIn` (values listed) or `Exists`/`DoesNotExist` (no values)."""
    values: list[LabelValue] = []
    """Label values: at least one for In and NotIn, none for Exists and DoesNotExist."""

    def rule_problems(self) -> list[tuple[str, str]]:
        return _operator_value_problems(self.operator, self.values)


class LabelSelector(ApiModel):
    """A metav1 LabelSelector: every label and every expression must match; `{}` matches everything."""

    match_labels: dict[QualifiedName, LabelValue] = {}
    """Labels that must have exactly these values."""
    match_expressions: list[LabelSelectorRequirement] = []
    """Requirements on labels."""

    def keys(self) -> set[str]:
        return set(self.match_labels) | {requirement.key for requirement in self.match_expressions}


class PodAffinityTerm(ApiModel):
    """Pods (selected by labels, in some namespaces) whose nodes' `topologyKey` value counts."""

    label_selector: LabelSelector | None = None
    """The pods this term is about; none when left out, all with `{}`."""
    namespace_selector: LabelSelector | None = None
    """Namespaces whose pods count, by their labels; with `namespaces`, the union; only the job's own
    namespace when both are left out."""
    namespaces: list[NamespaceName] = []
    """Names of namespaces whose pods count."""
    topology_key: QualifiedName
    """The node label whose value groups nodes, e.g. `kubernetes.io/hostname` or
    `topology.kubernetes.io/zone`."""
    match_label_keys: list[QualifiedName] = []
    """Label keys of the sync pod whose values are added to `labelSelector` as `key in (value)`;
    needs `labelSelector`, and no key also in it."""
    mismatch_label_keys: list[QualifiedName] = []
    """Label keys of the sync pod whose values are added to `labelSelector` as `key notin (value)`;
    needs `labelSelector`."""

    def rule_problems(self) -> list[tuple[str, str]]:
        # validateMatchLabelKeysAndMismatchLabelKeys. The API server finds a key in both matchLabelKeys
        # and labelSelector (or listed twice) only when the pod carries that label, after it added the
        # key's expression; the API reference forbids it outright, and so do we.
        problems: list[tuple[str, str]] = []
        for field, keys in (
            ("matchLabelKeys", self.match_label_keys),
            ("mismatchLabelKeys", self.mismatch_label_keys),
        ):
            if keys and self.label_selector is None:
                problems.append(
                    (
                        field,
                        f"{field} needs a labelSelector (its keys are added to it); set labelSelector, "
                        "{} to start from every pod",
                    )
                )
        selected = self.label_selector.keys() if self.label_selector is not None else set()
        mismatched = set(self.mismatch_label_keys)
        seen: set[str] = set()
        for index, key in enumerate(self.match_label_keys):
            where = f"matchLabelKeys[{index}]"
            if key in selected:
                problems.append((where, f"{where} {key!r} is also in labelSelector; keep it in one of them"))
            elif key in seen:
                problems.append((where, f"{where} {key!r} is listed twice"))
            if key in mismatched:
                problems.append(
                    (where, f"{where} {key!r} is also in mismatchLabelKeys; a key can only be in one of them")
                )
            seen.add(key)
        return problems


class WeightedPodAffinityTerm(ApiModel):
    """A pod affinity term and its weight."""

    weight: Integer = Field(ge=1, le=100)
    """1 to 100, added to a node's score when the term holds there."""
    pod_affinity_term: PodAffinityTerm
    """The term that earns the weight."""


class PodAffinity(ApiModel):
    """Run the sync pods near (same `topologyKey` value as) other pods."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] = []
    """Terms that must all hold on the chosen node."""
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] = []
    """Terms preferred, by weight."""


class PodAntiAffinity(ApiModel):
    """Keep the sync pods away from (another `topologyKey` value than) other pods."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] = []
    """Terms that must all hold on the chosen node."""
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] = []
    """Terms preferred, by weight."""


class Affinity(ApiModel):
    """A core/v1 Affinity: node affinity, pod affinity and pod anti-affinity of the sync pods."""

    node_affinity: NodeAffinity | None = None
    """Which nodes the sync pods may run on, or prefer."""
    pod_affinity: PodAffinity | None = None
    """Pods the sync pods should run near."""
    pod_anti_affinity: PodAntiAffinity | None = None
    """Pods the sync pods should run away from."""

    def to_pod(self) -> dict[str, Any]:
        """The Affinity as a Pod carries it: fields left out stay out (an empty `labelSelector: {}`,
        which selects every pod, stays in)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)


class ImagePullSecretReference(LocalObjectReference):
    """A Secret in the job's namespace holding registry credentials."""

    name: SecretName
    """Name of the Secret, in the same namespace as the job."""


class PodTemplateOverrides(ApiModel):
    """Overrides for the job's sync pods."""

    resources: ResourceRequirements | None = None
    """Resources of the sync container."""
    node_selector: dict[QualifiedName, LabelValue] = {}
    """Node labels the sync pods' node must have (label keys and values)."""
    tolerations: list[Toleration] = []
    affinity: Affinity | None = None
    """A core/v1 Affinity (nodeAffinity, podAffinity, podAntiAffinity), checked as the API server checks
    a Pod's."""
    service_account_name: ResourceName | None = None
    image_pull_secrets: list[ImagePullSecretReference] = []
    """Secrets (same namespace) holding registry credentials for the sync pods' image."""
    labels: dict[QualifiedName, LabelValue] = {}
    """Extra labels (keys `[prefix/]name`, values of at most 63 characters); the operator's own
    `destinations.dev/*` labels always win."""
    annotations: dict[AnnotationKey, str] = {}
    """Extra annotations (keys `[prefix/]name`; at most 256 KiB in all)."""
    priority_class_name: ResourceName | None = None

    def rule_problems(self) -> list[tuple[str, str]]:
        size = sum(len(key.encode()) + len(value.encode()) for key, value in self.annotations.items())
        if size > ANNOTATIONS_MAX_BYTES:
            return [
                ("annotations", f"annotations take {size} bytes; at most {ANNOTATIONS_MAX_BYTES} are allowed")
            ]
        return []


class AlertThresholds(ApiModel):
    """Per-job thresholds; each crossing is a Warning Event `ThresholdExceeded`, a `status.history`
    entry, the condition `Degraded` and the metric `destinations_job_threshold_exceeded`
    (docs/troubleshooting.md#thresholdexceeded)."""

    max_rejected_percent: Number | None = Field(default=None, ge=0, le=100)
    """A successful run whose rejected records (omitted, invalid and failed) exceed this percentage of the
    records it saw (read plus failed) crosses it, e.g. `5` or `12.5`."""
    min_records: PositiveInteger | None = None
    """A successful run that reads fewer records than this crosses it (an emptied source)."""
    max_record_drop: Number | None = Field(default=None, gt=0, le=100)
    """A successful run that reads this many percent fewer records than the previous successful run
    crosses it, e.g. `50`."""
    max_run_duration: Duration | None = None
    """A run taking longer than this crosses it (while still in flight, and when it finishes);
    `runTimeout` still stops it."""
    no_success_for: Duration | None = None
    """The job crosses it when its last successful run is longer ago than this (judged from the first
    error when it never succeeded), e.g. `24h`. Not judged while Paused or Completed."""


#: The share of the audience one mirror run may remove without a confirmation, in percent.
DEFAULT_MAX_REMOVE_PERCENT = 20.0


class MirrorSettings(ApiModel):
    """Mirror mode's guard against mass removal (a broken view or an emptied table makes a source
    return nothing, and mirror mode would remove everyone): docs/api-notes.md#mirror-mode."""

    max_remove_percent: Number = Field(default=DEFAULT_MAX_REMOVE_PERCENT, ge=0, le=100)
    """A run that would remove more than this percentage of the last successful run's members removes
    nobody and fails, naming the numbers; the annotation `destinations.dev/confirm-removal` set to
    that run's number lets the next run remove up to as many. `100` turns the guard off."""


class DestinationJobSpec(ApiModel):
    """A data-sync job between a source of customer data and a marketing tool."""

    display_name: str | None = Field(default=None, max_length=256)
    """Human-readable name, e.g. "Export of High-Value Users to Facebook"."""
    description: str | None = Field(default=None, max_length=4096)
    """Free text."""
    provider: ProviderKey
    """Catalog key of the provider (`kubectl destinations providers` lists them)."""
    type: JobType
    """`import`, `export` or `enrichment`; the provider must support it."""
    authorization_ref: LocalObjectReference
    """The Authorization (same namespace, same provider) whose credentials the job uses."""
    config: dict[str, Any] = Field(
        default={}, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """Provider- and type-specific settings, validated against the provider's schema."""
    source: DataEndpoint | None = None
    """Where records come from (export and enrichment jobs)."""
    sink: DataEndpoint | None = None
    """Where records go (import and enrichment jobs)."""
    mode: SyncMode = SyncMode.UPSERT
    """`upsert` sends current records; `mirror` also removes members that left since the last successful
    run (needs a warehouse source, which keeps the membership bookkeeping); `insert` only creates members
    (existing ones are left untouched, counted as skipped); `update` only updates existing members
    (unknown ones are skipped, counted). Only modes the provider declares are accepted; export jobs only."""
    retry_rejected: Boolean = True
    """Records the provider refused one by one are kept with their reasons in the bookkeeping of a
    warehouse source and sent first on the next run; URL and file sources keep no bookkeeping
    (docs/concepts.md#rejected-records)."""
    retry_rejected_attempts: Integer = Field(default=5, ge=1, le=100)
    """A record refused this many runs in a row stops being retried first; it stays listed with its reason."""
    mirror: MirrorSettings | None = None
    """Settings of `mode: mirror`; the guard allows removing 20% of the members per run when omitted."""
    schedule: Schedule | None = None
    """When the job runs; the provider's default schedule when omitted."""
    paused: Boolean = False
    """`true` pauses the job; `false` resumes it."""
    retry: RetryPolicy = RetryPolicy()
    """Backoff after errors and when to give up."""
    run_timeout: Duration = timedelta(hours=6)
    """A run longer than this is stopped and counts as an error."""
    history: HistoryLimits = HistoryLimits()
    """How many finished sync pods to keep."""
    purge_after: DurationOrNever = timedelta(days=90)
    """How long a Failed, Paused or Completed job is kept before the operator deletes it; `never` keeps it."""
    pod_template: PodTemplateOverrides | None = None
    """Overrides for the sync pods."""
    alerts: AlertThresholds | None = None
    """Thresholds that mark the job `Degraded` and raise `ThresholdExceeded` Events when crossed."""

    def rule_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        needs_source = self.type in (JobType.EXPORT, JobType.ENRICHMENT)
        needs_sink = self.type in (JobType.IMPORT, JobType.ENRICHMENT)
        if needs_source and self.source is None:
            problems.append(("source", f"source is required for {self.type.value} jobs"))
        if not needs_source and self.source is not None:
            problems.append(("source", f"source is not used by {self.type.value} jobs; remove it"))
        if needs_sink and self.sink is None:
            problems.append(("sink", f"sink is required for {self.type.value} jobs"))
        if not needs_sink and self.sink is not None:
            problems.append(("sink", f"sink is not used by {self.type.value} jobs; remove it"))
        if self.sink is not None and self.sink.url is not None:
            problems.append(("sink.url", "sink.url is not supported; sinks are a warehouse table or a file"))
        if self.sink is not None and self.sink.warehouse is not None and self.sink.warehouse.table is None:
            problems.append(
                ("sink.warehouse", "sink.warehouse needs a table; a query only works as a source")
            )
        if self.mode in (SyncMode.INSERT, SyncMode.UPDATE) and self.type != JobType.EXPORT:
            problems.append(("mode", f"mode {self.mode.value} applies to export jobs only"))
        if self.mode == SyncMode.MIRROR:
            if self.type != JobType.EXPORT:
                problems.append(("mode", "mode mirror applies to export jobs only"))
            elif self.source is None or self.source.warehouse is None:
                kind = self.source.kind if self.source is not None else "none"
                problems.append(
                    (
                        "mode",
                        "mode mirror needs a warehouse source (it keeps the previous membership there); "
                        f"got {kind}",
                    )
                )
        return problems


class RecordCounts(StatusModel):
    """Records handled by a run."""

    read: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    omitted: int = 0
    """Refused one by one by the provider (its error code and message in `rejections`); they do not
    fail the run."""
    failed: int = 0
    invalid: int | None = None
    """Dropped before sending because the provider could not take them (no email, a phone number that
    does not parse); absent when none."""
    skipped: int | None = None
    """Left alone on purpose: existing members in mode `insert`, unknown members in mode `update`;
    absent when none."""
    retried: int | None = None
    """Records refused by earlier runs and sent first this run (`spec.retryRejected`); absent when none."""
    accepted: int | None = None
    """Of the retried records, those the provider took this time; absent when none."""
    given_up: int | None = None
    """Records refused `spec.retryRejectedAttempts` runs in a row this run: no longer retried first;
    absent when none."""
    unconfirmed: int | None = None
    """Records the provider accepted for processing but had not reported on when the run stopped
    waiting (Google Data Manager requests still processing): neither added nor refused as far as the
    run knows; absent when none."""


class Rejection(StatusModel):
    """A record the provider refused: its key and the provider's reason, never other field values."""

    key: str
    """The record's key (the warehouse source's `key` columns, else its email or first identifier)."""
    reason: str
    """The provider's error code and message, values of the record's other fields masked."""


#: At most this many rejections are shown in `status.lastRun.rejections`.
MAX_REJECTION_SAMPLES = 10
#: At most this many keys per kind are shown in `status.lastDryRun.samples`.
MAX_DRY_RUN_SAMPLES = 10


class DryRunRecords(StatusModel):
    """What a run would do now, counted."""

    read: int = 0
    added: int | None = None
    """Mirror mode: records none of whose identities the last successful run sent (new members). Insert
    mode, where the provider can be asked (Salesforce): records the provider has none of."""
    updated: int | None = None
    """Mirror mode: records the last successful run sent already. Update mode, where the provider can
    be asked: records the provider has."""
    removed: int | None = None
    """Mirror mode: members of the last successful run this run would remove."""
    skipped: int = 0
    """Records with no identity the provider could match (no email, no identifier): never sent. Insert
    mode also skips records the provider has (and repeats of one it would create), update mode records
    it does not have."""
    rejected: int | None = None
    """Update mode, where the provider can be asked: records the run would refuse (an external ID
    several of the provider's records share)."""
    sent: int | None = None
    """Modes the provider cannot be asked about (upsert; insert and update where the provider is not
    asked): records that would be sent; only the provider knows which it adds and which it updates."""


class DryRunSamples(StatusModel):
    """Up to 10 record keys per kind (the source's key columns, else the email)."""

    added: list[str] = Field(default=[], max_length=MAX_DRY_RUN_SAMPLES)
    updated: list[str] = Field(default=[], max_length=MAX_DRY_RUN_SAMPLES)
    removed: list[str] = Field(default=[], max_length=MAX_DRY_RUN_SAMPLES)
    skipped: list[str] = Field(default=[], max_length=MAX_DRY_RUN_SAMPLES)
    rejected: list[str] = Field(default=[], max_length=MAX_DRY_RUN_SAMPLES)
    sent: list[str] = Field(default=[], max_length=MAX_DRY_RUN_SAMPLES)


class DryRunPreview(StatusModel):
    """A dry run's findings, as the worker reports them."""

    records: DryRunRecords = DryRunRecords()
    samples: DryRunSamples = DryRunSamples()


class LastDryRun(StatusModel):
    """The last dry run (`destinations.dev/dry-run-requested-at`): what a run would do, nothing written."""

    requested_at: str
    """The annotation value this dry run answers."""
    result: RunResult
    """`succeeded` or `failed` (the source could not be read, the spec is invalid, …)."""
    finished_at: str
    records: DryRunRecords = DryRunRecords()
    samples: DryRunSamples = DryRunSamples()
    message: str = ""


class CurrentRun(StatusModel):
    number: int
    pod: str
    started_at: str


class LastRun(StatusModel):
    number: int
    result: RunResult
    started_at: str | None = None
    finished_at: str
    records: RecordCounts = RecordCounts()
    message: str = ""
    rejections: list[Rejection] | None = Field(default=None, max_length=MAX_REJECTION_SAMPLES)
    """Up to 10 records the provider refused in this run: key and reason."""


class RunTotals(StatusModel):
    total: int = 0
    succeeded: int = 0
    failed: int = 0


class HistoryEntry(StatusModel):
    time: str
    event: str
    """Started, Synced, Error, Sleeping, Failed, Completed, Paused or Resumed."""
    run: int | None = None
    message: str = ""
    records: RecordCounts | None = None


class ThresholdCrossing(StatusModel):
    """A threshold of `spec.alerts` the job crosses now."""

    threshold: str
    """The `spec.alerts` field, e.g. `maxRejectedPercent`."""
    value: str
    """What was measured, e.g. `12.5%`, `3 records`, `2h10m`."""
    limit: str
    """The threshold as set, in the same unit."""
    run: int | None = None
    """The run that crossed it (None for `noSuccessFor` before any run finished)."""
    since: str
    """When the job crossed it (RFC 3339)."""


class DestinationJobStatus(StatusModel):
    """The job's lifecycle, written by the operator only."""

    phase: Phase | None = None
    """Pending, Running, Sleeping, Failed, Paused or Completed."""
    reason: str | None = None
    """A CamelCase word saying why the job is in its phase (see docs/troubleshooting.md)."""
    message: str | None = None
    phase_since: str | None = None
    next_run_at: str | None = None
    consecutive_errors: int = 0
    errors_since: str | None = None
    current_run: CurrentRun | None = None
    last_run: LastRun | None = None
    runs: RunTotals = RunTotals()
    history: list[HistoryEntry] = []
    """The last 20 log entries."""
    created_by: str | None = None
    last_updated: str | None = None
    """When the spec last changed."""
    observed_generation: int | None = None
    last_handled_request_at: str | None = None
    """The last `destinations.dev/requested-at` value the operator acted on."""
    last_successful_time: str | None = None
    """When the last successful run finished (RFC 3339)."""
    last_failure_time: str | None = None
    """When the last failed run finished (RFC 3339)."""
    last_successful_read: int | None = None
    """Records read by the last successful run: the baseline of `spec.alerts.maxRecordDrop`."""
    thresholds_exceeded: list[ThresholdCrossing] = []
    """The `spec.alerts` thresholds crossed now; the condition `Degraded` is True while any is."""
    last_dry_run: LastDryRun | None = None
    """The last dry run's result; a dry run never changes the phase, backoff, counters or bookkeeping."""
    conditions: list[Condition] = []
    """`Ready`, `Reconciling` (a run is in flight), `Stalled` (Failed or invalid spec)
    and `Degraded` (a `spec.alerts` threshold is crossed; set only when `spec.alerts` is)."""
