"""Sinks: where an import's or an enrichment's records go.

A PostgreSQL table is upserted on the endpoint's key (`INSERT … ON CONFLICT (key) DO UPDATE`); the
table must exist with a unique index on the key: the worker never creates or alters tables in a
user's warehouse. Only fields matching the table's columns are written. A file is written next to
its final name and renamed into place when the run succeeds, so a failed run leaves the previous file.
"""

from __future__ import annotations

import abc
import csv
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from destinations.api.models import DataEndpoint, FileEndpoint, FileFormat, WarehouseEndpoint
from destinations.providers.base import Record, RecordCounter
from destinations.providers.errors import ConfigurationError
from destinations.worker.mounts import Mounts
from destinations.worker.postgres import connect, split_table_name, table_identifier


class Sink(abc.ABC):
    """Receives batches; counts added and updated records in `counts`."""

    def __init__(self, counts: RecordCounter) -> None:
        self.counts = counts

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Check the destination before the first record is fetched from the provider."""

    @abc.abstractmethod
    async def write(self, batch: list[Record]) -> None: ...

    @abc.abstractmethod
    async def close(self, *, succeeded: bool) -> None:
        """Finish (commit, rename) when the run succeeded; discard what can be discarded otherwise."""


def open_sink(endpoint: DataEndpoint, mounts: Mounts, counts: RecordCounter) -> Sink:
    if endpoint.warehouse is not None:
        ref = endpoint.warehouse.connection_secret_ref
        return TableSink(endpoint.warehouse, mounts.secret_key(ref.name, ref.key), counts)
    if endpoint.file is not None:
        return FileSink(endpoint.file, mounts.data_file("sink", endpoint.file.path), counts)
    raise ConfigurationError("sink.url is not supported; sinks are a warehouse table or a file")


# -------------------------------------------------------------------------------------------- table


class TableSink(Sink):
    """Upserts into an existing PostgreSQL table, one transaction per batch."""

    def __init__(self, endpoint: WarehouseEndpoint, conninfo: str, counts: RecordCounter) -> None:
        super().__init__(counts)
        assert endpoint.table is not None
        self._endpoint = endpoint
        self._table: str = endpoint.table
        self._conninfo = conninfo
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._column_types: dict[str, str] = {}

    async def open(self) -> None:
        self._connection = await connect(self._conninfo, role="sink")
        schema, table = split_table_name(self._table)
        async with self._connection.cursor() as cursor:
            await cursor.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s",
                (schema, table),
            )
            self._column_types = {str(name): str(kind) for name, kind in await cursor.fetchall()}
        await self._connection.commit()
        key = self._endpoint.key
        if not self._column_types:
            raise ConfigurationError(
                f"sink table {self._table!r} does not exist; create it with a unique key on "
                f"({', '.join(key)})"
            )
        missing = [column for column in key if column not in self._column_types]
        if missing:
            raise ConfigurationError(
                f"sink table {self._table!r} has no column {', '.join(missing)} (sink.warehouse.key)"
            )

    async def write(self, batch: list[Record]) -> None:
        assert self._connection is not None
        key = self._endpoint.key
        unique: dict[tuple[Any, ...], Record] = {}
        for record in batch:
            identity = tuple(record.get(column) for column in key)
            if any(value is None for value in identity):
                self.counts.fail(1, f"a record has no value for the sink key {', '.join(key)}")
                continue
            unique[identity] = record  # the last of duplicates wins, as a sequence of upserts would
        if not unique:
            return
        columns = [column for column in self._column_types if any(column in r for r in unique.values())]
        updates = [column for column in columns if column not in key]
        statement = sql.SQL(
            "INSERT INTO {table} ({columns}) VALUES {rows} ON CONFLICT ({key}) {action} RETURNING (xmax = 0)"
        ).format(
            table=table_identifier(self._table),
            columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
            rows=sql.SQL(", ").join(
                sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(columns))) for _ in unique
            ),
            key=sql.SQL(", ").join(map(sql.Identifier, key)),
            action=(
                sql.SQL("DO UPDATE SET {}").format(
                    sql.SQL(", ").join(
                        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in updates
                    )
                )
                if updates
                else sql.SQL("DO UPDATE SET {0} = EXCLUDED.{0}").format(sql.Identifier(key[0]))
            ),
        )
        values = [self._adapt(column, record.get(column)) for record in unique.values() for column in columns]
        try:
            async with self._connection.cursor() as cursor:
                await cursor.execute(statement, values)
                inserted = [bool(row[0]) for row in await cursor.fetchall()]
            await self._connection.commit()
        except psycopg.errors.InvalidColumnReference:
            await self._connection.rollback()
            raise ConfigurationError(
                f"sink table {self._table!r} needs a unique index or primary key on ({', '.join(key)}) "
                "for the upsert"
            ) from None
        except psycopg.Error as error:
            await self._connection.rollback()
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ConfigurationError(
                f"writing to sink table {self._table!r} failed: {first_line[:300]}"
            ) from None
        self.counts.added += sum(inserted)
        self.counts.updated += len(inserted) - sum(inserted)

    def _adapt(self, column: str, value: Any) -> Any:
        if self._column_types.get(column) in ("json", "jsonb"):
            return None if value is None else Jsonb(value)
        if isinstance(value, dict):
            return json.dumps(value, default=str)
        return value

    async def close(self, *, succeeded: bool) -> None:
        if self._connection is not None:
            await self._connection.close()


# --------------------------------------------------------------------------------------------- file


class FileSink(Sink):
    """Writes JSONL or CSV to a temporary file beside the target, renamed into place on success."""

    def __init__(self, endpoint: FileEndpoint, path: Path, counts: RecordCounter) -> None:
        super().__init__(counts)
        self._endpoint = endpoint
        self._path = path
        self._stream: IO[str] | None = None
        self._temporary: Path | None = None
        self._csv: csv.DictWriter[str] | None = None

    async def open(self) -> None:
        if not self._path.parent.is_dir():
            raise ConfigurationError(
                f"sink directory of {self._endpoint.path!r} does not exist on the sink volume"
            )
        descriptor, name = tempfile.mkstemp(prefix=f".{self._path.name}.", dir=self._path.parent)
        self._temporary = Path(name)
        self._stream = os.fdopen(descriptor, "w", encoding="utf-8", newline="")

    async def write(self, batch: list[Record]) -> None:
        assert self._stream is not None
        if self._endpoint.format == FileFormat.CSV:
            if self._csv is None and batch:
                self._csv = csv.DictWriter(self._stream, fieldnames=list(batch[0]), extrasaction="ignore")
                self._csv.writeheader()
            for record in batch:
                assert self._csv is not None
                self._csv.writerow({k: _csv_value(v) for k, v in record.items()})
        else:
            for record in batch:
                self._stream.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
        self.counts.added += len(batch)

    async def close(self, *, succeeded: bool) -> None:
        if self._stream is None or self._temporary is None:
            return
        self._stream.close()
        if succeeded:
            os.chmod(self._temporary, 0o644)
            os.replace(self._temporary, self._path)
        else:
            self._temporary.unlink(missing_ok=True)


def _csv_value(value: Any) -> Any:
    return json.dumps(value, default=str) if isinstance(value, dict | list) else value
