"""Rejected-record bookkeeping: records the provider refused one by one, kept and retried first.

Kept, like mirror mode's membership (destinations.worker.membership), in the job's own PostgreSQL
source database, in one table created on first use:

- `destinations_rejections(namespace, job, record_key, reason, attempts, given_up, first_run, last_run)`:
  one row per record key the provider refused (`reason` is the provider's code and message, values of
  the record's other fields masked); `attempts` counts the runs in a row that refused it.

The record itself is never copied: the source is the truth. A run with `spec.retryRejected` first
reads the pending keys' records from the source (its table or query, filtered by the key columns
compared as text) and sends them before everything else; the main pass then skips those keys. So a
record fixed in the warehouse is retried with its new values, and a key the source no longer returns
is dropped from the list. A key refused `spec.retryRejectedAttempts` runs in a row is given up: no
longer retried first, still listed; the main pass still sends it while the source has it, and a run
that gets it accepted removes it from the list.

A failed or rate-limited run leaves the list as it was. URL and file sources have no database to keep
it in: their rejections are counted and shown (`status.lastRun.rejections`) but not kept, and every
run sends the whole source again anyway (docs/concepts.md#rejected-records).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from destinations.api.models import WarehouseEndpoint
from destinations.providers.base import Record, RecordBatches
from destinations.worker.postgres import connect
from destinations.worker.sources import source_query

SCHEMA = """
CREATE TABLE IF NOT EXISTS destinations_rejections (
    namespace text NOT NULL,
    job text NOT NULL,
    record_key text NOT NULL,
    reason text NOT NULL,
    attempts integer NOT NULL,
    given_up boolean NOT NULL DEFAULT false,
    first_run integer NOT NULL,
    last_run integer NOT NULL,
    PRIMARY KEY (namespace, job, record_key)
);
"""

#: Separates the values of a composite key in `record_key` (and in what the SQL side compares).
KEY_SEPARATOR = "/"


def key_function(columns: list[str]) -> Callable[[Record], str | None]:
    """A record's key: its key columns' values as text, joined by `/`; None when one is missing."""

    def key(record: Record) -> str | None:
        values = [record.get(column) for column in columns]
        if any(value is None or str(value).strip() == "" for value in values):
            return None
        return KEY_SEPARATOR.join(_as_text(value) for value in values)

    return key


def _as_text(value: Any) -> str:
    """Text as PostgreSQL's `::text` writes the usual key types (booleans as `true`/`false`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Settlement:
    """What a successful run did to the list: the counts for the run's report."""

    retried: int = 0
    accepted: int = 0
    given_up: int = 0


@dataclass
class _Row:
    attempts: int
    given_up: bool


@dataclass
class Rejections:
    """The rejected-record list of one job, for one run."""

    conninfo: str
    endpoint: WarehouseEndpoint
    namespace: str
    job: str
    run: int
    max_attempts: int
    _connection: psycopg.AsyncConnection[Any] | None = None
    _known: dict[str, _Row] = field(default_factory=dict)
    retried: set[str] = field(default_factory=set)
    """Keys sent first this run (pending keys the source still has)."""
    _seen_given_up: set[str] = field(default_factory=set)

    async def open(self) -> None:
        self._connection = await connect(self.conninfo, role="source")
        async with self._connection.transaction():
            await self._connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext('destinations_rejections'))"
            )
            await self._connection.execute(SCHEMA)
            rows = await (
                await self._connection.execute(
                    "SELECT record_key, attempts, given_up FROM destinations_rejections "
                    "WHERE namespace = %s AND job = %s",
                    (self.namespace, self.job),
                )
            ).fetchall()
        self._known = {str(key): _Row(int(attempts), bool(given_up)) for key, attempts, given_up in rows}

    @property
    def pending(self) -> list[str]:
        """Keys to retry first: refused before, not given up."""
        return sorted(key for key, row in self._known.items() if not row.given_up)

    async def retry_batches(self, batch_size: int) -> RecordBatches:
        """The pending keys' records as the source returns them now, in batches (not counted as read:
        the main pass reads them again, and skips them)."""
        assert self._connection is not None
        pending = self.pending
        if not pending:
            return
        query = sql.SQL("SELECT * FROM ({}) AS source WHERE {} = ANY(%s)").format(
            source_query(self.endpoint), _key_expression(self.endpoint.key)
        )
        async with (
            self._connection.transaction(),
            self._connection.cursor(name="destinations_retry", row_factory=dict_row) as cursor,
        ):
            await cursor.execute(query, (pending,))
            key_of = key_function(self.endpoint.key)
            while rows := await cursor.fetchmany(batch_size):
                batch = [dict(row) for row in rows]
                for record in batch:
                    found = key_of(record)
                    if found is not None:
                        self.retried.add(found)
                yield batch

    async def skip_retried(self, batches: RecordBatches) -> RecordBatches:
        """The main pass: records already sent by the retry pass are left out."""
        key_of = key_function(self.endpoint.key)
        given_up = {key for key, row in self._known.items() if row.given_up}
        async for batch in batches:
            kept = []
            for record in batch:
                key = key_of(record)
                if key is not None and key in self.retried:
                    continue
                if key is not None and key in given_up:
                    self._seen_given_up.add(key)
                kept.append(record)
            if kept:
                yield kept

    async def settle(self, rejected: dict[str, str], undecided: set[str] | None = None) -> Settlement:
        """The run succeeded: keep this run's refusals, drop what was accepted or left the source.

        `undecided` keys (sent, but the provider had not said whether it took them when the run
        stopped waiting) stay as they were: neither accepted nor refused again."""
        assert self._connection is not None
        undecided = undecided or set()
        settlement = Settlement(retried=len(self.retried))
        settlement.accepted = len(self.retried - set(rejected) - undecided)
        # accepted, or gone from the source
        resolved = [key for key in self.pending if key not in rejected and key not in undecided]
        resolved += [key for key in self._seen_given_up if key not in rejected and key not in undecided]
        rows = []
        for key, reason in rejected.items():
            earlier = self._known.get(key)
            attempts = (earlier.attempts if earlier else 0) + 1
            given_up = attempts >= self.max_attempts
            if given_up and not (earlier and earlier.given_up):
                settlement.given_up += 1
            rows.append((self.namespace, self.job, key, reason, attempts, given_up, self.run, self.run))
        async with self._connection.transaction(), self._connection.cursor() as cursor:
            if resolved:
                await cursor.execute(
                    "DELETE FROM destinations_rejections WHERE namespace = %s AND job = %s "
                    "AND record_key = ANY(%s)",
                    (self.namespace, self.job, resolved),
                )
            if rows:
                await cursor.executemany(
                    "INSERT INTO destinations_rejections (namespace, job, record_key, reason, attempts, "
                    "given_up, first_run, last_run) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (namespace, job, record_key) DO UPDATE SET reason = EXCLUDED.reason, "
                    "attempts = EXCLUDED.attempts, given_up = EXCLUDED.given_up, "
                    "last_run = EXCLUDED.last_run",
                    rows,
                )
        return settlement

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


def _key_expression(columns: list[str]) -> sql.Composable:
    """The SQL twin of `key_function`: the key columns as text, joined by `/`."""
    parts = [sql.SQL("({}::text)").format(sql.Identifier(column)) for column in columns]
    return sql.SQL(" || '/' || ").join(parts)  # KEY_SEPARATOR
