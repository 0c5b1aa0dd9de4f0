"""Structured JSON progress lines on stdout, scrubbed of every secret the worker has read.

Pod logs are read by people who may not see Secrets, so the logger is handed every credential value
at start and replaces any occurrence with `***` before a line is written: a provider that echoes a
token in an error message cannot leak it through the worker's output. Known values are not the only
net: `destinations.redaction.redact_credentials` also masks URL passwords, query values and keyword
passwords it does not know, and the parts of known values that are secret alone (a connection
string's password) are scrubbed too.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from destinations.redaction import credential_fragments, redact_credentials

REDACTED = "***"
#: Shorter values are not scrubbed: they would mangle ordinary words (and are poor secrets anyway).
MIN_SECRET_LENGTH = 4


class Scrubber:
    """Replaces known secret values in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Learn secret values, and the parts of each that are secret alone (`credential_fragments`)."""
        for secret in secrets:
            for candidate in {secret, secret.strip(), *credential_fragments(secret)}:
                if len(candidate) >= MIN_SECRET_LENGTH and candidate not in self._secrets:
                    self._secrets.append(candidate)
        self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return redact_credentials(text)


class ScrubbedStream:
    """A text stream that scrubs what is written to it: the worker's stdout and stderr, so that a
    library's warning or a traceback cannot print a secret either."""

    def __init__(self, stream: TextIO, scrubber: Scrubber) -> None:
        self._stream = stream
        self._scrubber = scrubber

    def write(self, text: str) -> int:
        self._stream.write(self._scrubber(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class JsonLog:
    """Writes one JSON object per line: time, level, event, the run's identity and the fields given."""

    def __init__(self, scrubber: Scrubber, *, stream: TextIO | None = None, **identity: Any) -> None:
        self._scrubber = scrubber
        self._stream = stream
        self._identity = identity

    def bind(self, **identity: Any) -> None:
        self._identity.update(identity)

    def __call__(self, event: str, /, **fields: Any) -> None:
        self.write("info", event, **fields)

    def warning(self, event: str, /, **fields: Any) -> None:
        self.write("warning", event, **fields)

    def error(self, event: str, /, **fields: Any) -> None:
        self.write("error", event, **fields)

    def write(self, level: str, event: str, /, **fields: Any) -> None:
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level,
            "event": event,
            **self._identity,
            **fields,
        }
        stream = self._stream or sys.stdout
        stream.write(self._scrubber(json.dumps(line, default=str, ensure_ascii=False)) + "\n")
        stream.flush()


class ProgressTicker:
    """Decides when a progress line is due: every `interval` seconds, not every batch."""

    def __init__(self, interval: float = 5.0) -> None:
        self._interval = interval
        self._last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            return True
        return False
