"""Mirror-mode bookkeeping: who was in the audience after the last successful run.

Kept in the job's own PostgreSQL source database, so the job needs no other storage and the
bookkeeping lives and dies with the data it describes. Two tables, created on first use:

- `destinations_membership(namespace, job, member_key, member)`: the members sent by the last
  successful run (`member` holds the key columns and the fields the provider needs to remove one);
- `destinations_membership_staging(…, run, …)`: the members seen by the run in flight.

A run stages what it reads; after the export succeeded, removed = previous minus current is streamed to
the provider's `remove`, and only when that succeeded too does the staging replace the membership, in
one transaction. A failed or rate-limited run leaves the membership as it was.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from destinations.providers.base import Record, RecordBatches
from destinations.worker.postgres import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS destinations_membership (
    namespace text NOT NULL,
    job text NOT NULL,
    member_key text NOT NULL,
    member jsonb NOT NULL,
    PRIMARY KEY (namespace, job, member_key)
);
CREATE TABLE IF NOT EXISTS destinations_membership_staging (
    namespace text NOT NULL,
    job text NOT NULL,
    run integer NOT NULL,
    member_key text NOT NULL,
    member jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS destinations_membership_staging_key
    ON destinations_membership_staging (namespace, job, run, member_key);
"""


STAGING_COPY = "COPY destinations_membership_staging (namespace, job, run, member_key, member) FROM STDIN"


class Membership:
    """The bookkeeping of one job's run."""

    def __init__(
        self,
        conninfo: str,
        *,
        namespace: str,
        job: str,
        run: int,
        key: Sequence[str],
        identity: Sequence[str],
    ) -> None:
        self._conninfo = conninfo
        self._namespace = namespace
        self._job = job
        self._run = run
        self._key = list(key)
        self._fields = list(dict.fromkeys([*key, *identity]))
        self._connection: psycopg.AsyncConnection[Any] | None = None

    async def open(self) -> None:
        self._connection = await connect(self._conninfo, role="source")
        async with self._connection.transaction():
            await self._connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext('destinations_membership'))"
            )
            await self._connection.execute(SCHEMA)
            await self._connection.execute(
                "DELETE FROM destinations_membership_staging WHERE namespace = %s AND job = %s",
                (self._namespace, self._job),
            )

    async def stage(self, batches: RecordBatches) -> RecordBatches:
        """Pass the batches through, staging each record's key and identity fields on the way."""
        assert self._connection is not None
        async for batch in batches:
            async with (
                self._connection.transaction(),
                self._connection.cursor() as cursor,
                cursor.copy(STAGING_COPY) as copy,
            ):
                for record in batch:
                    member = {field: record.get(field) for field in self._fields}
                    key = json.dumps([record.get(column) for column in self._key], default=str)
                    await copy.write_row(
                        (self._namespace, self._job, self._run, key, json.dumps(member, default=str))
                    )
            yield batch

    async def removed(self, batch_size: int) -> RecordBatches:
        """Members of the last successful run that this run did not see."""
        assert self._connection is not None
        async with (
            self._connection.transaction(),
            self._connection.cursor(name="destinations_removed", row_factory=dict_row) as cursor,
        ):
            await cursor.execute(
                """
                SELECT m.member FROM destinations_membership m
                WHERE m.namespace = %(namespace)s AND m.job = %(job)s AND NOT EXISTS (
                    SELECT 1 FROM destinations_membership_staging s
                    WHERE s.namespace = m.namespace AND s.job = m.job AND s.run = %(run)s
                      AND s.member_key = m.member_key)
                """,
                {"namespace": self._namespace, "job": self._job, "run": self._run},
            )
            while rows := await cursor.fetchmany(batch_size):
                yield [_as_record(row["member"]) for row in rows]

    async def commit(self) -> None:
        """The run succeeded: what it saw becomes the membership."""
        assert self._connection is not None
        parameters = {"namespace": self._namespace, "job": self._job, "run": self._run}
        async with self._connection.transaction():
            await self._connection.execute(
                "DELETE FROM destinations_membership WHERE namespace = %(namespace)s AND job = %(job)s",
                parameters,
            )
            await self._connection.execute(
                """
                INSERT INTO destinations_membership (namespace, job, member_key, member)
                SELECT DISTINCT ON (member_key) namespace, job, member_key, member
                FROM destinations_membership_staging
                WHERE namespace = %(namespace)s AND job = %(job)s AND run = %(run)s
                """,
                parameters,
            )
            await self._discard_staging()

    async def close(self) -> None:
        if self._connection is None:
            return
        try:
            async with self._connection.transaction():
                await self._discard_staging()
        except psycopg.Error:
            pass  # the next run clears leftovers anyway
        finally:
            await self._connection.close()

    async def _discard_staging(self) -> None:
        assert self._connection is not None
        await self._connection.execute(
            "DELETE FROM destinations_membership_staging WHERE namespace = %s AND job = %s AND run = %s",
            (self._namespace, self._job, self._run),
        )


def _as_record(value: Any) -> Record:
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value) if isinstance(value, dict) else {}
