"""A set of keys that stays out of memory: what a dry run foresaw created, so a repeat is skipped."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

#: Keys per SQLite query: under SQLite's default limit of 999 bound parameters.
KEYS_PER_QUERY = 500


class KeyStore:
    """Keys kept in SQLite's private temporary database (on disk in the pod's scratch directory,
    deleted when closed), so that memory stays bounded whatever the source's size. An insert dry run
    adds the keys it foresaw created: a repeat later in the source would find the member the first
    one created, and is skipped."""

    def __init__(self) -> None:
        self._database = sqlite3.connect("")
        self._database.execute("CREATE TABLE created (key TEXT PRIMARY KEY) WITHOUT ROWID")

    def among(self, keys: Sequence[str]) -> set[str]:
        """Those of `keys` the store holds already."""
        found: set[str] = set()
        for start in range(0, len(keys), KEYS_PER_QUERY):
            part = list(keys[start : start + KEYS_PER_QUERY])
            marks = ",".join("?" * len(part))
            query = (
                f"SELECT key FROM created WHERE key IN ({marks})"  # placeholders only: no value in the text
            )
            found.update(row[0] for row in self._database.execute(query, part))
        return found

    def add(self, keys: Sequence[str]) -> None:
        self._database.executemany("INSERT OR IGNORE INTO created VALUES (?)", [(key,) for key in keys])

    def close(self) -> None:
        self._database.close()
