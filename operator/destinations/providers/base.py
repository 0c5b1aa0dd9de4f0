"""What a provider plug-in declares: its catalog entry, config models, credential check and sync code.

The sync interface is small on purpose. Records are plain dicts streamed in batches (async iterators),
so a provider never sees more than a few batches at once and memory stays bounded whatever the source
size. A provider implements the job types it declares in `config_models`:

- `export(context, batches)`: send the source's records; `remove(context, batches)` in mirror mode
  removes members that left since the last successful run (the worker works out which);
- `import_records(context)`: yield batches of the provider's records for the sink;
- `enrich(context, batches)`: yield each batch with the provider's lookups merged in.

Counting happens in `context.counts`; per-record rejections are counted there as omitted, never raised.
Run-ending failures are the exceptions of `destinations.providers.errors`.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from destinations.api.models import (
    MAX_REJECTION_SAMPLES,
    AuthMethod,
    JobType,
    RecordCounts,
    Rejection,
    Schedule,
    SyncMode,
)
from destinations.providers._http import HttpClientFactory
from destinations.providers._oauth import RotatedCredentials
from destinations.providers.errors import ConfigurationError

Record = dict[str, Any]
"""One record: field name → JSON-compatible value (datetimes and decimals are sent as strings)."""
RecordBatches = AsyncIterator[list[Record]]
Outcome = Literal["added", "updated", "skipped", "rejected"]
"""What a run would do with a record, as a dry run counts it (the `DryRunRecords` field it adds to)."""


@dataclass(frozen=True)
class Foreseen:
    """One record and what a run would do with it (`Provider.foresee`)."""

    record: Record
    outcome: Outcome


class ProviderConfig(BaseModel):
    """Base of provider config models: camelCase in YAML, unknown fields refused, docstrings as docs."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", use_attribute_docstrings=True
    )


@dataclass(frozen=True)
class Credentials:
    """The keys of an Authorization's Secret. Never printed: repr hides the values."""

    method: AuthMethod
    values: Mapping[str, str] = field(repr=False)
    endpoint: str | None = None
    """The Authorization's `endpoint` override of the provider's API base address."""
    reread: Callable[[str], str | None] | None = field(default=None, repr=False, compare=False)
    """Reads one key's current value again (the worker's mounted Secret, which the kubelet updates
    when the Secret changes); None where the values cannot change under the reader."""

    def __repr__(self) -> str:
        return f"Credentials(method={self.method.value!r}, keys={sorted(self.values)!r})"

    def get(self, key: str) -> str | None:
        return self.values.get(key)


@dataclass(frozen=True)
class CredentialCheck:
    """The result of a provider's credential check: a user-facing message, never a secret."""

    healthy: bool
    message: str
    rotated: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Secret keys the check was handed new values for (a rotated OAuth2 refreshToken): the operator
    writes them into the Secret, or the next refresh would fail."""


class LogFunction(Protocol):
    """Writes one structured progress line (`event` plus fields); never pass secrets to it."""

    def __call__(self, event: str, /, **fields: Any) -> None: ...


@dataclass
class RecordCounter:
    """The run's record counts, updated by the worker and the provider as batches go by."""

    read: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    omitted: int = 0
    failed: int = 0
    omission_samples: list[str] = field(default_factory=list)
    """A few reasons for omitted records, for the run's message."""
    failure_samples: list[str] = field(default_factory=list)
    """A few reasons for failed records (unreadable in the source, refused by the sink)."""

    invalid: int = 0
    skipped: int = 0
    retried: int = 0
    accepted: int = 0
    given_up: int = 0
    record_key: Callable[[Record], str | None] = field(default=lambda record: default_record_key(record))
    """The key a rejected record is kept and shown under (the worker sets the source's key columns)."""
    rejected: dict[str, str] = field(default_factory=dict)
    """Key → reason of the records the provider refused this run (at most MAX_KEPT_REJECTIONS)."""
    unconfirmed: int = 0
    """Records the provider accepted for processing whose outcome it had not reported when the run
    stopped waiting: neither added nor refused as far as the run knows."""
    unconfirmed_samples: list[str] = field(default_factory=list)
    """What the run knows about the unconfirmed records (which requests, how long it waited)."""
    unconfirmed_keys: set[str] = field(default_factory=set)
    """Keys of unconfirmed records: the rejected-record bookkeeping leaves them as they were."""

    MAX_SAMPLES: ClassVar[int] = 5
    MAX_KEPT_REJECTIONS: ClassVar[int] = 100_000

    def omit(self, count: int = 1, reason: str | None = None) -> None:
        """Count records rejected one by one that cannot be named (prefer `reject`); never fails the run."""
        self.omitted += count
        if reason and len(self.omission_samples) < self.MAX_SAMPLES:
            self.omission_samples.append(reason[:200])

    def reject(self, record: Record, message: str, code: str | None = None) -> None:
        """Count a record the provider refused, and keep its key with the reason (`code: message`)
        for the run's rejections and the bookkeeping that retries it. Values of the record's other
        fields are masked in the reason: only the key may be shown (status, Events)."""
        key = self.record_key(record)
        reason = mask_record_values(f"{code}: {message}" if code else message, record, keep=key)[:200]
        self.omit(1, f"{key}: {reason}" if key else reason)
        if key is not None and len(self.rejected) < self.MAX_KEPT_REJECTIONS:
            self.rejected[key] = reason

    def reject_key(self, key: str | None, reason: str) -> None:
        """`reject` for a record known by its key only (the provider refused it after the run let the
        record go, e.g. when its asynchronous processing failed); `reason` must hold no record values."""
        reason = reason[:200]
        self.omit(1, f"{key}: {reason}" if key else reason)
        if key is not None and len(self.rejected) < self.MAX_KEPT_REJECTIONS:
            self.rejected[key] = reason

    def leave_unconfirmed(self, count: int, reason: str, keys: Iterable[str | None] = ()) -> None:
        """Count records whose outcome the provider had not reported when the run stopped waiting for
        it; `reason` says what the run knows. Their `keys` are kept out of the rejections settlement."""
        self.unconfirmed += count
        if len(self.unconfirmed_samples) < self.MAX_SAMPLES:
            self.unconfirmed_samples.append(reason[:300])
        self.unconfirmed_keys.update(key for key in keys if key is not None)

    def discard(self, count: int = 1, reason: str | None = None) -> None:
        """Count records dropped before sending because the provider could not take them (no email, a
        phone that does not parse): `invalid`, apart from what the provider refused."""
        self.invalid += count
        if reason and len(self.omission_samples) < self.MAX_SAMPLES:
            self.omission_samples.append(reason[:200])

    def skip(self, count: int = 1) -> None:
        """Count members left alone on purpose (existing ones in mode insert, unknown ones in update)."""
        self.skipped += count

    def fail(self, count: int = 1, reason: str | None = None) -> None:
        """Count records the worker could not read or write; they do not fail the run either."""
        self.failed += count
        if reason and len(self.failure_samples) < self.MAX_SAMPLES:
            self.failure_samples.append(reason[:200])

    def snapshot(self) -> RecordCounts:
        return RecordCounts(
            read=self.read,
            added=self.added,
            updated=self.updated,
            removed=self.removed,
            omitted=self.omitted,
            failed=self.failed,
            invalid=self.invalid or None,
            skipped=self.skipped or None,
            retried=self.retried or None,
            accepted=self.accepted or None,
            given_up=self.given_up or None,
            unconfirmed=self.unconfirmed or None,
        )

    def rejection_samples(self) -> list[Rejection]:
        """The first MAX_REJECTION_SAMPLES rejections (key, reason) for `status.lastRun.rejections`."""
        return [
            Rejection(key=key[:100], reason=reason)
            for key, reason in list(self.rejected.items())[:MAX_REJECTION_SAMPLES]
        ]


def default_record_key(record: Record) -> str | None:
    """A record's key where the source names none: its `email`, trimmed (None without one)."""
    value = record.get("email")
    return str(value).strip() or None if value is not None else None


def mask_record_values(text: str, record: Record, keep: str | None = None) -> str:
    """`text` with the record's field values (3 characters or more, other than `keep`) replaced by `***`,
    so a provider's message echoing a phone number or a name shows nothing but the key."""
    if keep:
        return keep.join(mask_record_values(part, record) for part in text.split(keep))
    values = {str(v).strip() for v in record.values() if v is not None and not isinstance(v, bool)}
    for value in sorted((v for v in values if len(v) >= 3), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def _ignore_log(event: str, /, **fields: Any) -> None:
    """The default progress callback: drop the line."""


@dataclass
class SyncContext:
    """Everything a provider's sync code gets for one run."""

    job_type: JobType
    config: ProviderConfig
    """The job's `config`, parsed with the provider's model for `job_type`."""
    credentials: Credentials
    mode: SyncMode = SyncMode.UPSERT
    http: HttpClientFactory = field(default_factory=HttpClientFactory)
    """Makes httpx clients with the run's timeouts, retries and Retry-After handling."""
    counts: RecordCounter = field(default_factory=RecordCounter)
    log: LogFunction = _ignore_log
    run_id: str = "run"
    """Identifies the run (`namespace/name#run`) for idempotency keys and upload sessions."""
    rotated: RotatedCredentials = field(default_factory=RotatedCredentials)
    """Secret keys the provider was handed new values for mid-run (a rotated OAuth2 refreshToken)."""


class Provider(abc.ABC):
    """A marketing tool or endpoint jobs can sync with.

    Subclasses declare the catalog entry as class attributes; the worker calls the sync code.
    """

    key: ClassVar[str]
    display_name: ClassVar[str]
    description: ClassVar[str]
    documentation_url: ClassVar[str]
    auth_methods: ClassVar[tuple[AuthMethod, ...]]
    config_models: ClassVar[Mapping[JobType, type[ProviderConfig]]]
    default_schedule: ClassVar[Schedule]
    min_interval: ClassVar[timedelta | None] = None
    """Runs more frequent than this are likely to hit the provider's rate limits (an admission warning)."""

    @property
    def job_types(self) -> tuple[JobType, ...]:
        return tuple(job_type for job_type in JobType if job_type in self.config_models)

    def parse_config(self, job_type: JobType, config: Mapping[str, Any]) -> ProviderConfig:
        """Validate a job's `config`; raises pydantic.ValidationError (field paths relative to config)."""
        return self.config_models[job_type].model_validate(dict(config))

    @abc.abstractmethod
    def check_credentials(self, credentials: Credentials) -> CredentialCheck:
        """Ask the provider whether the credentials work; network errors become an unhealthy check."""

    # ----------------------------------------------------------------------------------------- sync code

    supports_mirror: ClassVar[bool] = False
    """Whether `remove` is implemented, i.e. mirror mode works for exports (kept in step with `modes`)."""

    modes: ClassVar[tuple[SyncMode, ...]] = (SyncMode.UPSERT,)
    """The export modes the provider supports (`spec.mode`), in catalog order. A provider that declares
    none gets `upsert`, plus `mirror` when it sets `supports_mirror`. `export` reads `context.mode`:
    `insert` must leave existing members untouched and `update` must not create members, each counting
    what it left alone with `context.counts.skip()`."""

    modes_note: ClassVar[str | None] = None
    """Why the provider lacks modes others have, with the provider's doc page; shown next to its modes
    in the catalog page (docs/providers.md)."""

    dry_run_lookup_modes: ClassVar[tuple[SyncMode, ...]] = ()
    """Export modes whose dry run asks the provider which records it has (`foresee`), because only the
    provider knows which it would add, update or skip. The dry runs of other modes never call it."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "modes" in cls.__dict__:
            cls.supports_mirror = SyncMode.MIRROR in cls.modes
        elif cls.supports_mirror and SyncMode.MIRROR not in cls.modes:
            cls.modes = (*cls.modes, SyncMode.MIRROR)

    def identity_fields(self, config: ProviderConfig) -> tuple[str, ...]:
        """Record fields `remove` needs to identify a member (kept in the mirror bookkeeping)."""
        return ()

    def member_identities(self, config: ProviderConfig, record: Record) -> frozenset[str]:
        """The identities under which the provider knows this record's member, normalised its way.

        The identity-normalisation hook of mirror bookkeeping: a member of the last successful run
        is removed only when none of its identities was seen in this run, so a run never removes a
        member it added or updated, however the source spells it now. Override it with the provider's
        own comparison (email case and whitespace, phone formats, the hashes it matches on; see
        `destinations.providers.identities`); each identity is a short string such as
        `email:jane@example.com`. A record with no identity is not a member.

        The default compares the `identity_fields` values as text, trimmed.
        """
        identities = set()
        for name in self.identity_fields(config):
            value = record.get(name)
            if value is not None and str(value).strip():
                identities.add(f"{name}:{str(value).strip()}")
        return frozenset(identities)

    async def export(self, context: SyncContext, batches: RecordBatches) -> None:
        """Send every record of the source to the provider."""
        raise self._unsupported(JobType.EXPORT)

    async def remove(self, context: SyncContext, batches: RecordBatches) -> None:
        """Mirror mode: remove these members (they left the source since the last successful run)."""
        raise ConfigurationError(f"provider {self.key!r} cannot remove members; use mode upsert")

    def foresee(self, context: SyncContext, batches: RecordBatches) -> AsyncIterator[list[Foreseen]]:
        """A dry run in one of `dry_run_lookup_modes`: yield each batch's records with what a run in
        `context.mode` would do with them, as far as the provider can tell beforehand. Reads only: no
        request that changes anything at the provider. Records with no identity are `skipped`."""
        raise ConfigurationError(
            f"provider {self.key!r} cannot tell what a run in mode {context.mode.value} would do"
        )

    def import_records(self, context: SyncContext) -> RecordBatches:
        """Yield the provider's records in batches, for the sink."""
        raise self._unsupported(JobType.IMPORT)

    def enrich(self, context: SyncContext, batches: RecordBatches) -> RecordBatches:
        """Yield each batch with the provider's data merged in; lookups that fail are omitted."""
        raise self._unsupported(JobType.ENRICHMENT)

    def _unsupported(self, job_type: JobType) -> ConfigurationError:
        return ConfigurationError(
            f"provider {self.key!r} does not support {job_type.value} jobs; "
            f"it supports: {', '.join(t.value for t in self.job_types)}"
        )
