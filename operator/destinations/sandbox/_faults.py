"""Fault injection for reliability tests, e.g. `--faults error=0.05,conflict=0.02,latency=20ms@0.1`.

- `error=P`: answer a request with 500 InternalError with probability P.
- `conflict=P`: answer a write (create, update, patch, delete) with 409 Conflict with probability P.
- `latency=D@P`: delay a request by D (`20ms`, `1s`) with probability P (P defaults to 1).
- `drop-watch=P`: close a watch stream with probability P per event sent (and per idle second).
- `seed=N`: seed the random generator so a failing run can be replayed.
- `user=NAME` (repeatable): inject faults into this caller's requests only, e.g. the operator's, so a
  reliability test's own reads and writes stay clean.

Faults never touch the sandbox's own `/sandbox/*` endpoints, so tests can always read the request log.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field


def _duration_seconds(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", text)
    if not match:
        raise ValueError(f"invalid duration {text!r}; use e.g. 20ms, 1.5s")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number / 1000 if unit == "ms" else number * 60 if unit == "m" else number


def _probability(name: str, text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError(f"{name}: probability {value} is not between 0 and 1")
    return value


@dataclass
class Faults:
    error: float = 0.0
    conflict: float = 0.0
    latency_seconds: float = 0.0
    latency_rate: float = 0.0
    drop_watch: float = 0.0
    seed: int | None = None
    users: frozenset[str] = frozenset()
    """Callers whose requests get faults; empty means every caller."""
    random: random.Random = field(default_factory=random.Random, repr=False)

    @classmethod
    def parse(cls, spec: str | None) -> Faults:
        faults = cls()
        for part in (spec or "").split(","):
            if not part.strip():
                continue
            name, _, value = part.partition("=")
            name = name.strip()
            if name == "error":
                faults.error = _probability(name, value)
            elif name == "conflict":
                faults.conflict = _probability(name, value)
            elif name == "latency":
                duration, _, rate = value.partition("@")
                faults.latency_seconds = _duration_seconds(duration)
                faults.latency_rate = _probability(name, rate) if rate else 1.0
            elif name == "drop-watch":
                faults.drop_watch = _probability(name, value)
            elif name == "seed":
                faults.seed = int(value)
            elif name == "user":
                faults.users |= {value.strip()}
            else:
                raise ValueError(
                    f"unknown fault {name!r}; known: error, conflict, latency, drop-watch, seed, user"
                )
        faults.random = random.Random(faults.seed)
        return faults

    @property
    def active(self) -> bool:
        return bool(self.error or self.conflict or self.latency_rate or self.drop_watch)

    def applies_to(self, username: str) -> bool:
        return self.active and (not self.users or username in self.users)

    def roll(self, probability: float) -> bool:
        return probability > 0 and self.random.random() < probability

    def describe(self) -> str:
        parts = []
        if self.error:
            parts.append(f"error={self.error}")
        if self.conflict:
            parts.append(f"conflict={self.conflict}")
        if self.latency_rate:
            parts.append(f"latency={self.latency_seconds * 1000:g}ms@{self.latency_rate}")
        if self.drop_watch:
            parts.append(f"drop-watch={self.drop_watch}")
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        parts.extend(f"user={user}" for user in sorted(self.users))
        return ",".join(parts)
