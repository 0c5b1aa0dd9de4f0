"""A dry run: read the source, say what a run would do, write nothing.

Requested with the annotation `destinations.dev/dry-run-requested-at`; the operator runs the job's
pod with `RunRequest.dry_run` and shows the preview in `status.lastDryRun`. Nothing is written to the
provider or the bookkeeping: the comparison with mirror mode's membership happens in temporary tables
of the worker's own session, which PostgreSQL drops when the session ends. The provider is called only
in its `dry_run_lookup_modes`, with reads (below); otherwise not even a credential check.

- Mirror mode splits the records as the next run's bookkeeping will: `added` (none of the record's
  identities was sent by the last successful run), `updated` (one was), `removed` (members of the last
  successful run none of whose identities the source has now, exactly `Membership.removal`), and
  `skipped` (no identity the provider could match: never sent). It also says when the mass-removal
  guard would refuse the removals.
- Insert and update mode where the provider declares them in `dry_run_lookup_modes` (Salesforce,
  Mailchimp): the provider runs read-only lookups (`Provider.foresee`) and says, record by record,
  what the run would do: insert `added` (the provider has no such record) or `skipped` (it has; or a
  repeat of one the run would create), update `updated` (one record has it), `skipped` (none has) or
  `rejected` (several share it, Salesforce only); records without an identity are `skipped`. The
  lookups cost requests (Salesforce: the run's own query per 200 records; Mailchimp: one "Get member
  info" per distinct address); a refresh token the provider rotates on the way comes back sealed in
  the report and the operator stores it, as for runs.
- Other modes: without bookkeeping only the provider knows who is new, so records are counted as
  `sent` (or `skipped` when they carry no identity for a provider that matches on identities), and
  the message says what the mode makes of them: upsert adds or updates, insert creates the members
  the provider lacks and leaves the others untouched (skipped), update changes the members it has and
  adds nobody (the others skipped); a provider without lookups for the mode (a plug-in's) is not
  asked which are which.

Samples are record keys only (the warehouse source's key columns, else the email), up to 10 each.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg

from destinations.api.models import (
    DEFAULT_MAX_REMOVE_PERCENT,
    MAX_DRY_RUN_SAMPLES,
    DestinationJobSpec,
    DryRunPreview,
    DryRunRecords,
    DryRunSamples,
    SyncMode,
    WarehouseEndpoint,
)
from destinations.providers.base import (
    Foreseen,
    Provider,
    Record,
    RecordBatches,
    SyncContext,
    default_record_key,
)
from destinations.providers.errors import ConfigurationError
from destinations.worker.postgres import connect
from destinations.worker.rejections import key_function

KeyFunction = Callable[[Record], str | None]
PREVIOUS_COPY = "COPY destinations_dry_previous (member, identities) FROM STDIN"

TEMPORARY_TABLES = """
CREATE TEMPORARY TABLE destinations_dry_staged (record_key text, identities text[]) ON COMMIT PRESERVE ROWS;
CREATE TEMPORARY TABLE destinations_dry_seen (identity text) ON COMMIT PRESERVE ROWS;
CREATE INDEX ON destinations_dry_seen (identity);
CREATE TEMPORARY TABLE destinations_dry_previous (member jsonb, identities text[]) ON COMMIT PRESERVE ROWS;
"""


def _sample(samples: list[str], key: str | None) -> None:
    if key is not None and len(samples) < MAX_DRY_RUN_SAMPLES:
        samples.append(key[:100])


async def preview(
    spec: DestinationJobSpec,
    provider: Provider,
    config: Any,
    source: RecordBatches,
    *,
    conninfo: str | None,
    namespace: str,
    job: str,
    lookup: SyncContext | None = None,
) -> tuple[DryRunPreview, str]:
    """What a run of `spec` would do with `source`, and a one-line summary for the report's message.
    `lookup`: the context the provider's read-only lookup runs with, for a mode in its
    `dry_run_lookup_modes` (the provider is called only then)."""
    warehouse = spec.source.warehouse if spec.source is not None else None
    key_of: KeyFunction = key_function(warehouse.key) if warehouse is not None else default_record_key
    identify = lambda record: provider.member_identities(config, record)  # noqa: E731
    if spec.mode == SyncMode.MIRROR:
        if warehouse is None or conninfo is None:
            raise ConfigurationError("mode mirror needs a warehouse source, which keeps the bookkeeping")
        result, guard = await _mirror(spec, warehouse, conninfo, source, key_of, identify, namespace, job)
        return result, _summary(spec, result) + guard
    if lookup is not None:
        result = await _foreseen(provider.foresee(lookup, source), key_of, spec.mode)
        return result, _summary(spec, result)
    result = await _upsert(source, key_of, identify, matches=bool(provider.identity_fields(config)))
    return result, _summary(spec, result)


async def _upsert(
    source: RecordBatches, key_of: KeyFunction, identify: Callable[[Record], frozenset[str]], *, matches: bool
) -> DryRunPreview:
    records, samples = DryRunRecords(sent=0), DryRunSamples()
    async for batch in source:
        for record in batch:
            records.read += 1
            if matches and not identify(record):
                records.skipped += 1
                _sample(samples.skipped, key_of(record))
            else:
                records.sent = (records.sent or 0) + 1
                _sample(samples.sent, key_of(record))
    return DryRunPreview(records=records, samples=samples)


async def _foreseen(
    foreseen: AsyncIterator[list[Foreseen]], key_of: KeyFunction, mode: SyncMode
) -> DryRunPreview:
    """Count and sample what the provider's lookup says of each record (keys only)."""
    records = DryRunRecords(added=0) if mode == SyncMode.INSERT else DryRunRecords(updated=0, rejected=0)
    samples = DryRunSamples()
    async for batch in foreseen:
        for item in batch:
            records.read += 1
            setattr(records, item.outcome, (getattr(records, item.outcome) or 0) + 1)
            _sample(getattr(samples, item.outcome), key_of(item.record))
    return DryRunPreview(records=records, samples=samples)


async def _mirror(
    spec: DestinationJobSpec,
    warehouse: WarehouseEndpoint,
    conninfo: str,
    source: RecordBatches,
    key_of: KeyFunction,
    identify: Callable[[Record], frozenset[str]],
    namespace: str,
    job: str,
) -> tuple[DryRunPreview, str]:
    """The preview, and what the mass-removal guard would say (empty when it would let it through)."""
    records = DryRunRecords(added=0, updated=0, removed=0)
    samples = DryRunSamples()
    connection = await connect(conninfo, role="source")
    try:
        async with connection.transaction():
            await connection.execute(TEMPORARY_TABLES)
            await _copy_previous(connection, namespace, job, identify)
        async for batch in source:
            rows = []
            for record in batch:
                records.read += 1
                identities = sorted(identify(record))
                if not identities:
                    records.skipped += 1
                    _sample(samples.skipped, key_of(record))
                else:
                    rows.append((key_of(record) or identities[0], identities))
            async with connection.transaction(), connection.cursor() as cursor:
                async with cursor.copy(
                    "COPY destinations_dry_staged (record_key, identities) FROM STDIN"
                ) as copy:
                    for row in rows:
                        await copy.write_row(row)
                async with cursor.copy("COPY destinations_dry_seen (identity) FROM STDIN") as copy:
                    for _, identities in rows:
                        for identity in identities:
                            await copy.write_row((identity,))
        async with connection.transaction():
            await connection.execute("ANALYZE destinations_dry_seen")
            new = "NOT EXISTS (SELECT 1 FROM destinations_dry_previous p WHERE p.identities && s.identities)"
            for name, condition in (("added", new), ("updated", f"NOT ({new})")):
                keys = await _keys(
                    connection, f"SELECT s.record_key FROM destinations_dry_staged s WHERE {condition}"
                )
                setattr(records, name, len(keys))
                setattr(samples, name, keys[:MAX_DRY_RUN_SAMPLES])
            departed = await (
                await connection.execute(
                    "SELECT p.member, p.identities FROM destinations_dry_previous p WHERE NOT EXISTS "
                    "(SELECT 1 FROM destinations_dry_seen s WHERE s.identity = ANY (p.identities))"
                )
            ).fetchall()
            total = await (
                await connection.execute("SELECT count(*) FROM destinations_dry_previous")
            ).fetchone()
        records.removed = len(departed)
        samples.removed = [
            (key_of(_as_record(member)) or (identities[0] if identities else "?"))[:100]
            for member, identities in departed[:MAX_DRY_RUN_SAMPLES]
        ]
        members = int(total[0]) if total else 0
        limit = spec.mirror.max_remove_percent if spec.mirror else DEFAULT_MAX_REMOVE_PERCENT
        guard = ""
        if members and 100.0 * len(departed) / members > limit:
            guard = (
                f"; the mass-removal guard would refuse removing {len(departed)} of {members} members "
                f"(more than spec.mirror.maxRemovePercent {limit:g}%) unless confirmed"
            )
        return DryRunPreview(records=records, samples=samples), guard
    finally:
        await connection.close()


async def _copy_previous(
    connection: psycopg.AsyncConnection[Any],
    namespace: str,
    job: str,
    identify: Callable[[Record], frozenset[str]],
) -> None:
    """The last successful run's members, in a temporary table; members kept before identities were
    (legacy rows) get theirs computed here, as `Membership.open` would, without writing them back."""
    exists = await (await connection.execute("SELECT to_regclass('destinations_membership')")).fetchone()
    if not exists or exists[0] is None:
        return  # the first run: everyone is new, nobody leaves
    await connection.execute(
        "INSERT INTO destinations_dry_previous (member, identities) SELECT member, identities "
        "FROM destinations_membership WHERE namespace = %s AND job = %s AND identities <> '{}'",
        (namespace, job),
    )
    legacy = await (
        await connection.execute(
            "SELECT member FROM destinations_membership WHERE namespace = %s AND job = %s "
            "AND identities = '{}'",
            (namespace, job),
        )
    ).fetchall()
    async with connection.cursor() as cursor, cursor.copy(PREVIOUS_COPY) as copy:
        for (member,) in legacy:
            identities = sorted(identify(_as_record(member)))
            await copy.write_row((json.dumps(member, default=str), identities))


async def _keys(connection: psycopg.AsyncConnection[Any], query: str) -> list[str]:
    rows = await (await connection.execute(query)).fetchall()
    return [str(row[0])[:100] for row in rows]


def _as_record(value: Any) -> Record:
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value) if isinstance(value, dict) else {}


def _summary(spec: DestinationJobSpec, result: DryRunPreview) -> str:
    counts = result.records
    if spec.mode == SyncMode.MIRROR:
        return (
            f"dry run: read {counts.read}; would add {counts.added}, update {counts.updated}, "
            f"remove {counts.removed}, skip {counts.skipped}"
        )
    if counts.sent is None and spec.mode == SyncMode.INSERT:  # the provider was asked
        return (
            f"dry run: read {counts.read}; would add {counts.added}, skip {counts.skipped} (mode insert "
            f"skips records {spec.provider} has already, repeats and records without an identity)"
        )
    if counts.sent is None and spec.mode == SyncMode.UPDATE:
        if not counts.rejected:  # Mailchimp's subscriber hash is one member's; a Salesforce ID may be shared
            return (
                f"dry run: read {counts.read}; would update {counts.updated}, skip {counts.skipped} (mode "
                f"update skips records {spec.provider} does not have and records without an identity)"
            )
        return (
            f"dry run: read {counts.read}; would update {counts.updated}, skip {counts.skipped}, reject "
            f"{counts.rejected} (mode update skips records {spec.provider} does not have and records "
            f"without an identity, and refuses an identity several {spec.provider} records share)"
        )
    effects = {
        SyncMode.INSERT: (
            f"{spec.provider} creates those it does not have and leaves the ones it has untouched, "
            "counted skipped; a dry run does not ask it which are which"
        ),
        SyncMode.UPDATE: (
            f"{spec.provider} updates those it has and creates none, counting the others skipped; "
            "a dry run does not ask it which are which"
        ),
    }
    effect = effects.get(spec.mode, "the provider decides which it adds and which it updates")
    return (
        f"dry run: read {counts.read}; would send {counts.sent} in mode {spec.mode.value} "
        f"({effect}), skip {counts.skipped}"
    )
