"""The request log: one record per API request, for tests that count calls or check RBAC coverage.

Records carry the verb in the API server's audit vocabulary (get, list, watch, create, update, patch,
delete, deletecollection), the resource coordinates and the response code. They are kept in memory
(bounded), optionally appended to a JSON-lines file, and served at `/sandbox/v1/requests`.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True)
class RequestRecord:
    time: str
    user: str
    verb: str
    api_group: str
    api_version: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int
    path: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    """Thread-safe: the server appends on its loop, tests read from their own thread."""

    def __init__(self, *, path: Path | None = None, capacity: int = 200_000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._file: IO[str] | None = path.open("a", encoding="utf-8") if path else None

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)
            if self._file is not None:
                self._file.write(json.dumps(record.to_json()) + "\n")
                self._file.flush()

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
