"""Which jobs use which Authorization: the index behind `usedBy` and the deletion guard (DESIGN.md §2).

The job controller owns it and keeps it current: one O(1) update per job event and per phase change.
The Authorization controller only reads it (the count for `status.usedBy`; while an Authorization is
being deleted, the jobs still holding it) and subscribes to changes, so an Authorization is woken when
its own count changes, never by every job event in its namespace. Nothing here scans all jobs: at
10,000 jobs the scan per job event it replaces made the operator's cost quadratic (issue 18).
"""

from __future__ import annotations

from collections.abc import Callable

from destinations.api.models import Phase

#: Phases in which a job still needs its Authorization (its deletion is refused meanwhile).
ACTIVE_PHASES = frozenset({Phase.PENDING, Phase.RUNNING, Phase.SLEEPING, Phase.PAUSED})
_ACTIVE = frozenset(phase.value for phase in ACTIVE_PHASES)

#: (namespace, authorization name, whether the number of users changed); False: only a user's phase did.
UsageListener = Callable[[str, str, bool], None]


class AuthorizationUsage:
    """Jobs by the Authorization they reference (same namespace), with each job's last known phase."""

    def __init__(self) -> None:
        #: (namespace, job) -> the Authorization name its spec references (None: no reference).
        self._reference: dict[tuple[str, str], str | None] = {}
        #: (namespace, authorization) -> {job name: phase, None while unknown}.
        self._users: dict[tuple[str, str], dict[str, str | None]] = {}
        self._listeners: list[UsageListener] = []

    def subscribe(self, listener: UsageListener) -> None:
        self._listeners.append(listener)

    # --- written by the job controller -------------------------------------------------------

    def update(self, namespace: str, job: str, authorization: str | None, phase: str | None) -> None:
        """Record what `job` references now and its phase; listeners hear only of real changes."""
        key = (namespace, job)
        previous = self._reference.get(key)
        if key in self._reference and previous != authorization:
            self._remove(namespace, job, previous)
        self._reference[key] = authorization
        if authorization is None:
            return
        users = self._users.setdefault((namespace, authorization), {})
        known = job in users
        before = users.get(job)
        users[job] = phase
        if not known or before != phase:
            self._notify(namespace, authorization, count_changed=not known)

    def forget(self, namespace: str, job: str) -> None:
        """The job is gone."""
        key = (namespace, job)
        if key in self._reference:
            self._remove(namespace, job, self._reference.pop(key))

    # --- read by the Authorization controller ------------------------------------------------

    def count(self, namespace: str, authorization: str) -> int:
        """How many jobs reference the Authorization: its `status.usedBy`."""
        return len(self._users.get((namespace, authorization), ()))

    def blocking(self, namespace: str, authorization: str) -> list[str]:
        """The jobs holding the Authorization: Pending, Running, Sleeping, Paused, or not decided yet."""
        users = self._users.get((namespace, authorization), {})
        return sorted(name for name, phase in users.items() if phase is None or phase in _ACTIVE)

    def users(self, namespace: str, authorization: str) -> list[str]:
        """Every job referencing the Authorization, sorted by name."""
        return sorted(self._users.get((namespace, authorization), ()))

    # --- internals ---------------------------------------------------------------------------

    def _remove(self, namespace: str, job: str, authorization: str | None) -> None:
        if authorization is None:
            return
        users = self._users.get((namespace, authorization))
        if users is None or job not in users:
            return
        del users[job]
        if not users:
            del self._users[(namespace, authorization)]
        self._notify(namespace, authorization, count_changed=True)

    def _notify(self, namespace: str, authorization: str, *, count_changed: bool) -> None:
        for listener in self._listeners:
            listener(namespace, authorization, count_changed)
