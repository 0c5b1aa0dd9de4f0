"""Mirror-mode bookkeeping: who was in the audience after the last successful run.

Kept in the job's own PostgreSQL source database, so the job needs no other storage and the
bookkeeping lives and dies with the data it describes. Tables, created on first use:

- `destinations_membership(namespace, job, member_key, member, identities)`: the members sent by the
  last successful run (`member` holds the fields the provider needs to remove one, `identities` the
  provider's normalised identities of it, see `Provider.member_identities`);
- `destinations_membership_staging(…, run, …)`: the members seen by the run in flight, and
  `destinations_membership_seen(…, run, identity)`: every identity the run sent;
- `destinations_membership_refusals(namespace, job, run, removals, members)`: runs whose removals
  the mass-removal guard refused, which `destinations.dev/confirm-removal` can name.

Identities, not source keys, decide who left: a member of the last run is removed only when none of
its identities was seen in this run. So `Jane.Doe@Example.com` turning into `jane.doe@example.com` in
the warehouse, or a phone number written another way, removes nobody, and a run never removes a
member it added or updated.

A run stages what it reads; after the export succeeded, removed = previous minus seen is counted,
checked against the guard, streamed to the provider's `remove`, and only when that succeeded too does
the staging replace the membership, in one transaction. A failed or rate-limited run leaves the
membership as it was.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
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
ALTER TABLE destinations_membership ADD COLUMN IF NOT EXISTS identities text[] NOT NULL DEFAULT '{}';
CREATE TABLE IF NOT EXISTS destinations_membership_staging (
    namespace text NOT NULL,
    job text NOT NULL,
    run integer NOT NULL,
    member_key text NOT NULL,
    member jsonb NOT NULL
);
ALTER TABLE destinations_membership_staging
    ADD COLUMN IF NOT EXISTS identities text[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS destinations_membership_staging_key
    ON destinations_membership_staging (namespace, job, run, member_key);
CREATE TABLE IF NOT EXISTS destinations_membership_seen (
    namespace text NOT NULL,
    job text NOT NULL,
    run integer NOT NULL,
    identity text NOT NULL
);
CREATE INDEX IF NOT EXISTS destinations_membership_seen_identity
    ON destinations_membership_seen (namespace, job, run, identity);
CREATE TABLE IF NOT EXISTS destinations_membership_refusals (
    namespace text NOT NULL,
    job text NOT NULL,
    run integer NOT NULL,
    removals bigint NOT NULL,
    members bigint NOT NULL,
    PRIMARY KEY (namespace, job, run)
);
"""

STAGING_COPY = (
    "COPY destinations_membership_staging (namespace, job, run, member_key, member, identities) FROM STDIN"
)
SEEN_COPY = "COPY destinations_membership_seen (namespace, job, run, identity) FROM STDIN"

#: Previous members none of whose identities this run saw.
DEPARTED = """
    FROM destinations_membership m
    WHERE m.namespace = %(namespace)s AND m.job = %(job)s AND NOT EXISTS (
        SELECT 1 FROM destinations_membership_seen s
        WHERE s.namespace = m.namespace AND s.job = m.job AND s.run = %(run)s
          AND s.identity = ANY (m.identities))
"""

Identify = Callable[[Record], frozenset[str]]


@dataclass(frozen=True)
class Removal:
    """What mirror mode would remove: `removals` of the last successful run's `members`."""

    removals: int
    members: int

    @property
    def percent(self) -> float:
        return 100.0 * self.removals / self.members if self.members else 0.0


@dataclass(frozen=True)
class Refusal:
    """A run whose removals the guard refused."""

    run: int
    removals: int
    members: int


class Membership:
    """The bookkeeping of one job's run."""

    def __init__(
        self,
        conninfo: str,
        *,
        namespace: str,
        job: str,
        run: int,
        fields: tuple[str, ...] | list[str],
        identify: Identify,
    ) -> None:
        """`fields`: record fields kept per member (what `remove` needs); `identify`: the provider's
        `member_identities` for this job's config."""
        self._conninfo = conninfo
        self._namespace = namespace
        self._job = job
        self._run = run
        self._fields = list(dict.fromkeys(fields))
        self._identify = identify
        self._connection: psycopg.AsyncConnection[Any] | None = None

    @property
    def _parameters(self) -> dict[str, Any]:
        return {"namespace": self._namespace, "job": self._job, "run": self._run}

    async def open(self) -> None:
        self._connection = await connect(self._conninfo, role="source")
        async with self._connection.transaction():
            await self._connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext('destinations_membership'))"
            )
            await self._connection.execute(SCHEMA)
            for table in ("destinations_membership_staging", "destinations_membership_seen"):
                await self._connection.execute(
                    f"DELETE FROM {table} WHERE namespace = %(namespace)s AND job = %(job)s",
                    self._parameters,
                )
        await self._identify_earlier_members()

    async def _identify_earlier_members(self) -> None:
        """Members written before identities were kept get theirs, computed from the fields kept."""
        assert self._connection is not None
        connection = self._connection
        async with (
            connection.transaction(),
            connection.cursor(name="destinations_unidentified") as cursor,
        ):
            await cursor.execute(
                "SELECT member_key, member FROM destinations_membership "
                "WHERE namespace = %(namespace)s AND job = %(job)s AND identities = '{}'",
                self._parameters,
            )
            while rows := await cursor.fetchmany(1000):
                for key, member in rows:
                    await connection.execute(
                        "UPDATE destinations_membership SET identities = %s "
                        "WHERE namespace = %s AND job = %s AND member_key = %s",
                        (sorted(self._identify(_as_record(member))), self._namespace, self._job, key),
                    )

    async def stage(self, batches: RecordBatches) -> RecordBatches:
        """Pass the batches through, staging each member's fields and identities on the way.

        A record with no identity (no usable email, say) is no member: the provider omits it too.
        """
        assert self._connection is not None
        async for batch in batches:
            members = []
            for record in batch:
                identities = sorted(self._identify(record))
                if identities:
                    members.append(({field: record.get(field) for field in self._fields}, identities))
            async with self._connection.transaction(), self._connection.cursor() as cursor:
                async with cursor.copy(STAGING_COPY) as copy:
                    for member, identities in members:
                        await copy.write_row(
                            (
                                self._namespace,
                                self._job,
                                self._run,
                                member_key(identities),
                                json.dumps(member, default=str),
                                identities,
                            )
                        )
                async with cursor.copy(SEEN_COPY) as copy:
                    for _, identities in members:
                        for identity in identities:
                            await copy.write_row((self._namespace, self._job, self._run, identity))
            yield batch

    async def removal(self) -> Removal:
        """How many of the last successful run's members this run would remove."""
        assert self._connection is not None
        async with self._connection.transaction():  # never leave an implicit transaction open
            row = await (
                await self._connection.execute(
                    f"SELECT count(*) {DEPARTED}",
                    self._parameters,
                )
            ).fetchone()
            total = await (
                await self._connection.execute(
                    "SELECT count(*) FROM destinations_membership WHERE namespace = %(namespace)s "
                    "AND job = %(job)s",
                    self._parameters,
                )
            ).fetchone()
        return Removal(removals=int(row[0]) if row else 0, members=int(total[0]) if total else 0)

    async def refusal(self, run: int) -> Refusal | None:
        """The guard's refusal of run `run`, if it refused that run since the last successful one."""
        assert self._connection is not None
        async with self._connection.transaction():
            row = await (
                await self._connection.execute(
                    "SELECT run, removals, members FROM destinations_membership_refusals "
                    "WHERE namespace = %s AND job = %s AND run = %s",
                    (self._namespace, self._job, run),
                )
            ).fetchone()
        return Refusal(int(row[0]), int(row[1]), int(row[2])) if row else None

    async def refuse(self, removal: Removal) -> None:
        """Record that the guard refused this run's removals (kept although the run fails)."""
        assert self._connection is not None
        async with self._connection.transaction():
            await self._connection.execute(
                "INSERT INTO destinations_membership_refusals (namespace, job, run, removals, members) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (namespace, job, run) DO UPDATE "
                "SET removals = EXCLUDED.removals, members = EXCLUDED.members",
                (self._namespace, self._job, self._run, removal.removals, removal.members),
            )

    async def removed(self, batch_size: int) -> RecordBatches:
        """Members of the last successful run none of whose identities this run saw."""
        assert self._connection is not None
        async with (
            self._connection.transaction(),
            self._connection.cursor(name="destinations_removed", row_factory=dict_row) as cursor,
        ):
            await cursor.execute(f"SELECT m.member {DEPARTED}", self._parameters)
            while rows := await cursor.fetchmany(batch_size):
                yield [_as_record(row["member"]) for row in rows]

    async def commit(self) -> None:
        """The run succeeded: what it saw becomes the membership, and earlier refusals are settled."""
        assert self._connection is not None
        parameters = self._parameters
        async with self._connection.transaction():
            for table in ("destinations_membership", "destinations_membership_refusals"):
                await self._connection.execute(
                    f"DELETE FROM {table} WHERE namespace = %(namespace)s AND job = %(job)s",
                    parameters,
                )
            await self._connection.execute(
                """
                INSERT INTO destinations_membership (namespace, job, member_key, member, identities)
                SELECT DISTINCT ON (member_key) namespace, job, member_key, member, identities
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
        for table in ("destinations_membership_staging", "destinations_membership_seen"):
            await self._connection.execute(
                f"DELETE FROM {table} WHERE namespace = %(namespace)s AND job = %(job)s AND run = %(run)s",
                self._parameters,
            )


def member_key(identities: list[str]) -> str:
    """One member's key: a digest of its sorted identities (identities can be long hashes)."""
    return hashlib.sha256("\n".join(identities).encode()).hexdigest()


def _as_record(value: Any) -> Record:
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value) if isinstance(value, dict) else {}
