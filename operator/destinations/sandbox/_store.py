"""The object store: indexed in memory, versioned cluster-wide, with a bounded watch history.

Objects live in `resource → namespace → name` dictionaries, so get, create, update and delete never scan,
and a namespaced list touches only its namespace. Stored objects are never mutated in place: every
write stores a fresh dict. That makes a stored object a safe snapshot to serialise, to hand to a
watcher, or to keep in the history, without copying.

Each change gets the next cluster-wide resourceVersion and is appended to its resource's history, a
bounded deque. A watch resuming from a version still in the history replays what it missed; one older
than the oldest retained event gets 410 Gone, as etcd compaction causes on a real server. The same
history decides whether a `continue` token has expired.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ._selectors import FieldRequirement, LabelRequirement, fields_match, labels_match

Json = dict[str, Any]
StorageKey = tuple[str, str]
ObjectRef = tuple[StorageKey, str, str]

#: resourceVersions start high enough that "0" and small numbers are clearly "older than anything".
FIRST_RESOURCE_VERSION = 1000


@dataclass(frozen=True)
class Change:
    """One committed change: what a watch stream reports as an event."""

    type: str  # ADDED, MODIFIED, DELETED
    key: StorageKey
    obj: Json
    old: Json | None
    resource_version: int


@dataclass(eq=False)
class Watcher:
    """A watch stream's subscription: its filters and a queue the store fills."""

    key: StorageKey
    namespace: str | None
    labels: tuple[LabelRequirement, ...] = ()
    fields: tuple[FieldRequirement, ...] = ()
    queue: asyncio.Queue[Change | None] = field(default_factory=asyncio.Queue)

    def matches(self, obj: Json) -> bool:
        if self.namespace is not None and (obj.get("metadata") or {}).get("namespace", "") != self.namespace:
            return False
        return labels_match(self.labels, obj) and fields_match(self.fields, obj)

    def translate(self, change: Change) -> Change | None:
        """The event this watcher sees: objects moving in or out of its selection appear or vanish."""
        now = self.matches(change.obj)
        before = change.old is not None and self.matches(change.old)
        if change.type == "MODIFIED":
            if now and not before:
                return Change("ADDED", change.key, change.obj, change.old, change.resource_version)
            if before and not now:
                return Change("DELETED", change.key, change.obj, change.old, change.resource_version)
        return change if now else None


def metadata(obj: Json) -> Json:
    result: Json = obj.get("metadata") or {}
    return result


class Store:
    """All objects of the sandbox, their history and the subscriptions to their changes."""

    def __init__(self, *, history_size: int = 5000) -> None:
        self._objects: dict[StorageKey, dict[str, dict[str, Json]]] = {}
        self._counter = itertools.count(FIRST_RESOURCE_VERSION + 1)
        self.resource_version = FIRST_RESOURCE_VERSION
        self._history_size = history_size
        self._history: dict[StorageKey, deque[Change]] = {}
        #: The newest version dropped from each resource's history: older watches get 410 Gone.
        self._compacted: dict[StorageKey, int] = {}
        self._watchers: dict[StorageKey, set[Watcher]] = {}
        self._listeners: list[Callable[[Change], None]] = []
        self._by_uid: dict[str, ObjectRef] = {}
        #: (label key, label value) → objects carrying it, so equality selectors skip non-matching objects.
        self._by_label: dict[StorageKey, dict[tuple[str, str], set[tuple[str, str]]]] = {}
        self._dependents: dict[str, set[ObjectRef]] = {}

    # --- reads -------------------------------------------------------------------------------

    def get(self, key: StorageKey, namespace: str, name: str) -> Json | None:
        return self._objects.get(key, {}).get(namespace, {}).get(name)

    def get_by_uid(self, uid: str) -> Json | None:
        ref = self._by_uid.get(uid)
        return None if ref is None else self.get(*ref)

    def iter_objects(self, key: StorageKey, namespace: str | None) -> Iterator[Json]:
        by_namespace = self._objects.get(key, {})
        if namespace is not None:
            yield from by_namespace.get(namespace, {}).values()
            return
        for objects in by_namespace.values():
            yield from objects.values()

    def sorted_objects(self, key: StorageKey, namespace: str | None) -> list[Json]:
        """Objects in (namespace, name) order, the order list pagination walks."""
        by_namespace = self._objects.get(key, {})
        namespaces = [namespace] if namespace is not None else sorted(by_namespace)
        result: list[Json] = []
        for each in namespaces:
            objects = by_namespace.get(each, {})
            result.extend(objects[name] for name in sorted(objects))
        return result

    def labelled(
        self, key: StorageKey, namespace: str | None, label: str, values: frozenset[str]
    ) -> list[Json]:
        """Objects whose `label` has one of `values`, in (namespace, name) order, from the label index."""
        index = self._by_label.get(key, {})
        refs: set[tuple[str, str]] = set()
        for value in values:
            refs |= index.get((label, value), set())
        objects = self._objects.get(key, {})
        return [
            objects[ns][name]
            for ns, name in sorted(refs)
            if (namespace is None or ns == namespace) and name in objects.get(ns, {})
        ]

    def count(self, key: StorageKey | None = None) -> int:
        keys: Iterable[StorageKey] = [key] if key is not None else list(self._objects)
        return sum(len(objects) for k in keys for objects in self._objects.get(k, {}).values())

    def namespaces_in_use(self, key: StorageKey) -> list[str]:
        return [ns for ns, objects in self._objects.get(key, {}).items() if objects]

    def keys(self) -> list[StorageKey]:
        return list(self._objects)

    def dependents(self, owner_uid: str) -> list[ObjectRef]:
        return list(self._dependents.get(owner_uid, ()))

    # --- writes ------------------------------------------------------------------------------

    def next_resource_version(self) -> int:
        self.resource_version = next(self._counter)
        return self.resource_version

    def put(self, key: StorageKey, obj: Json) -> Json:
        """Store a new or changed object, stamping the next resourceVersion; returns the stored object."""
        meta = obj["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        objects = self._objects.setdefault(key, {}).setdefault(namespace, {})
        old = objects.get(name)
        version = self.next_resource_version()
        meta["resourceVersion"] = str(version)
        objects[name] = obj
        self._index(key, namespace, name, old, obj)
        self._publish(Change("MODIFIED" if old is not None else "ADDED", key, obj, old, version))
        return obj

    def remove(self, key: StorageKey, namespace: str, name: str) -> Json | None:
        """Remove an object for good; watchers see it DELETED with a fresh resourceVersion."""
        objects = self._objects.get(key, {}).get(namespace, {})
        old = objects.pop(name, None)
        if old is None:
            return None
        version = self.next_resource_version()
        final = {**old, "metadata": {**old["metadata"], "resourceVersion": str(version)}}
        self._index(key, namespace, name, old, None)
        self._publish(Change("DELETED", key, final, old, version))
        return final

    def drop_resource(self, key: StorageKey) -> None:
        """Forget a whole resource's history and watchers (its CRD is gone)."""
        for watcher in self._watchers.pop(key, set()):
            watcher.queue.put_nowait(None)
        self._history.pop(key, None)

    def _index(self, key: StorageKey, namespace: str, name: str, old: Json | None, new: Json | None) -> None:
        ref = (key, namespace, name)
        old_labels = (metadata(old).get("labels") or {}) if old is not None else {}
        new_labels = (metadata(new).get("labels") or {}) if new is not None else {}
        if old_labels != new_labels:
            by_label = self._by_label.setdefault(key, {})
            for pair in old_labels.items():
                members = by_label.get(pair)
                if members is not None:
                    members.discard((namespace, name))
                    if not members:
                        del by_label[pair]
            for pair in new_labels.items():
                by_label.setdefault(pair, set()).add((namespace, name))
        if old is not None:
            old_meta = metadata(old)
            self._by_uid.pop(old_meta.get("uid", ""), None)
            for owner in old_meta.get("ownerReferences") or ():
                dependents = self._dependents.get(owner.get("uid", ""))
                if dependents is not None:
                    dependents.discard(ref)
                    if not dependents:
                        del self._dependents[owner.get("uid", "")]
        if new is not None:
            new_meta = metadata(new)
            if new_meta.get("uid"):
                self._by_uid[new_meta["uid"]] = ref
            for owner in new_meta.get("ownerReferences") or ():
                self._dependents.setdefault(owner.get("uid", ""), set()).add(ref)

    # --- history and subscriptions -----------------------------------------------------------

    def _publish(self, change: Change) -> None:
        history = self._history.setdefault(change.key, deque())
        history.append(change)
        if len(history) > self._history_size:
            dropped = history.popleft()
            self._compacted[change.key] = dropped.resource_version
        for watcher in self._watchers.get(change.key, ()):
            translated = watcher.translate(change)
            if translated is not None:
                watcher.queue.put_nowait(translated)
        for listener in self._listeners:
            listener(change)

    def add_listener(self, listener: Callable[[Change], None]) -> None:
        """Call `listener` synchronously on every change (the kubelet and the garbage collector use it)."""
        self._listeners.append(listener)

    def oldest_resumable(self, key: StorageKey) -> int:
        """Watches and continue tokens from versions below this one are too old (410 Gone)."""
        return self._compacted.get(key, 0)

    def changes_since(self, key: StorageKey, version: int) -> list[Change]:
        history = self._history.get(key, ())
        # The history is in version order: walk back from the newest end, usually a few entries.
        newer: list[Change] = []
        for change in reversed(history):
            if change.resource_version <= version:
                break
            newer.append(change)
        newer.reverse()
        return newer

    def subscribe(self, watcher: Watcher) -> None:
        self._watchers.setdefault(watcher.key, set()).add(watcher)

    def unsubscribe(self, watcher: Watcher) -> None:
        watchers = self._watchers.get(watcher.key)
        if watchers is not None:
            watchers.discard(watcher)
