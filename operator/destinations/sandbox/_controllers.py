"""The control-plane loops a cluster runs besides the API server: garbage collector and namespace cleanup.

- Garbage collection follows ownerReferences: when an owner goes, its dependents are deleted in the
  background (or, for `propagationPolicy: Foreground`, before the owner, which waits behind the
  `foregroundDeletion` finalizer). A dependent created for an owner that no longer exists is collected
  too, which is what keeps a pod created just after its job was deleted from running forever.
- Deleting a namespace deletes everything in it, waits for finalizers, then removes the namespace.
- Deleting a CRD deletes its custom resources, waits for their finalizers, then lets the CRD go
  (apiextensions' `customresourcecleanup` finalizer controller).

Both react to store changes synchronously and do their work in tasks, so like the real controllers they
are asynchronous with respect to the request that triggered them.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Coroutine
from typing import Any

from . import _objects
from ._cluster import CRD_CLEANUP_FINALIZER, CRD_KEY, NAMESPACE_KEY, Cluster, Options
from ._errors import ApiError
from ._store import Change

Json = dict[str, Any]

#: How often a waiting controller re-checks (deletions of dependents or namespace contents).
_POLL_SECONDS = 0.05


class Controllers:
    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: set[str] = set()
        cluster.store.add_listener(self._on_change)

    def _spawn(self, token: str, coroutine: Coroutine[Any, Any, None]) -> None:
        if token in self._pending:
            coroutine.close()
            return
        self._pending.add(token)
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            self._pending.discard(token)

        task.add_done_callback(done)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Wait until no controller work is in flight (tests use it to observe a settled cluster)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _on_change(self, change: Change) -> None:
        meta = change.obj.get("metadata") or {}
        uid = meta.get("uid", "")
        if change.type == "DELETED":
            if uid and self._cluster.store.dependents(uid):
                self._spawn(f"collect/{uid}", self._collect_dependents(uid))
            return
        owners = meta.get("ownerReferences") or ()
        if owners and all(self._cluster.store.get_by_uid(owner.get("uid", "")) is None for owner in owners):
            self._spawn(
                f"dangling/{uid}", self._delete(change.key, meta.get("namespace", ""), meta["name"], uid)
            )
        if meta.get("deletionTimestamp"):
            if change.key == NAMESPACE_KEY:
                self._spawn(f"namespace/{uid}", self._clean_namespace(meta["name"]))
            elif change.key == CRD_KEY and CRD_CLEANUP_FINALIZER in (meta.get("finalizers") or ()):
                self._spawn(f"crd/{uid}", self._clean_crd(meta["name"], uid))
            elif "foregroundDeletion" in (meta.get("finalizers") or ()):
                self._spawn(
                    f"foreground/{uid}",
                    self._delete_foreground(change.key, meta.get("namespace", ""), meta["name"], uid),
                )

    async def _delete(
        self, key: tuple[str, str], namespace: str, name: str, uid: str, policy: str = "Background"
    ) -> None:
        resource_type = self._cluster.registry.by_storage_key(key)
        current = self._cluster.store.get(key, namespace, name)
        if resource_type is None or current is None or current["metadata"].get("uid") != uid:
            return
        with contextlib.suppress(ApiError):  # gone or replaced meanwhile: nothing left to collect
            await self._cluster.delete(
                resource_type, namespace, name, {"propagationPolicy": policy, "preconditions": {"uid": uid}}
            )

    async def _collect_dependents(self, owner_uid: str) -> None:
        await asyncio.sleep(0)
        for key, namespace, name in self._cluster.store.dependents(owner_uid):
            dependent = self._cluster.store.get(key, namespace, name)
            if dependent is None:
                continue
            meta = dependent["metadata"]
            others = [ref for ref in meta.get("ownerReferences") or [] if ref.get("uid") != owner_uid]
            if any(self._cluster.store.get_by_uid(ref.get("uid", "")) is not None for ref in others):
                await self._drop_reference(key, dependent, owner_uid)
            else:
                await self._delete(key, namespace, name, meta.get("uid", ""))

    async def _drop_reference(self, key: tuple[str, str], dependent: Json, owner_uid: str) -> None:
        resource_type = self._cluster.registry.by_storage_key(key)
        if resource_type is None:
            return
        new = copy.deepcopy(dependent)
        new["metadata"]["ownerReferences"] = [
            ref for ref in new["metadata"].get("ownerReferences") or [] if ref.get("uid") != owner_uid
        ]
        meta = new["metadata"]
        with contextlib.suppress(ApiError):
            await self._cluster.update(resource_type, meta.get("namespace", ""), meta["name"], new, Options())

    async def _delete_foreground(self, key: tuple[str, str], namespace: str, name: str, uid: str) -> None:
        for dep_key, dep_namespace, dep_name in self._cluster.store.dependents(uid):
            dependent = self._cluster.store.get(dep_key, dep_namespace, dep_name)
            if dependent is not None:
                await self._delete(
                    dep_key, dep_namespace, dep_name, dependent["metadata"].get("uid", ""), "Foreground"
                )
        while self._cluster.store.dependents(uid):
            await asyncio.sleep(_POLL_SECONDS)
        owner = self._cluster.store.get(key, namespace, name)
        resource_type = self._cluster.registry.by_storage_key(key)
        if owner is None or resource_type is None or owner["metadata"].get("uid") != uid:
            return
        new = copy.deepcopy(owner)
        new["metadata"]["finalizers"] = [
            f for f in new["metadata"].get("finalizers") or [] if f != "foregroundDeletion"
        ]
        with contextlib.suppress(ApiError):
            await self._cluster.update(resource_type, namespace, name, new, Options())

    async def _clean_namespace(self, namespace: str) -> None:
        while True:
            remaining = 0
            for resource_type in list(self._cluster.registry):
                if not resource_type.namespaced:
                    continue
                for obj in list(self._cluster.store.iter_objects(resource_type.storage_key, namespace)):
                    remaining += 1
                    if not obj["metadata"].get("deletionTimestamp"):
                        await self._delete(
                            resource_type.storage_key,
                            namespace,
                            obj["metadata"]["name"],
                            obj["metadata"].get("uid", ""),
                        )
            if remaining == 0:
                break
            await asyncio.sleep(_POLL_SECONDS)
        namespace_obj = self._cluster.store.get(NAMESPACE_KEY, "", namespace)
        if namespace_obj is None:
            return
        namespaces = self._cluster.registry.lookup("", "v1", "namespaces")
        assert namespaces is not None
        if namespace_obj["metadata"].get("finalizers"):
            # The `kubernetes` spec finalizer is done; metadata finalizers of other controllers still hold it.
            new = copy.deepcopy(namespace_obj)
            new["spec"] = {}
            self._cluster.store.put(NAMESPACE_KEY, new)
            return
        self._cluster.store.remove(NAMESPACE_KEY, "", namespace)

    async def _clean_crd(self, name: str, uid: str) -> None:
        """Delete a terminating CRD's custom resources, wait until they are gone, drop the finalizer."""
        await asyncio.sleep(0)
        crds = self._cluster.registry.by_storage_key(CRD_KEY)
        assert crds is not None
        await self._set_crd_condition(
            name, uid, "InstanceDeletionInProgress", "CustomResource deletion is in progress"
        )
        while True:
            remaining = 0
            for resource_type in self._cluster.registry.crd_types(name):
                for namespace in list(self._cluster.store.namespaces_in_use(resource_type.storage_key)):
                    for obj in list(self._cluster.store.iter_objects(resource_type.storage_key, namespace)):
                        remaining += 1
                        if not obj["metadata"].get("deletionTimestamp"):
                            await self._delete(
                                resource_type.storage_key,
                                namespace,
                                obj["metadata"]["name"],
                                obj["metadata"].get("uid", ""),
                            )
            if remaining == 0:
                break
            await asyncio.sleep(_POLL_SECONDS)
        crd = await self._set_crd_condition(name, uid, "InstanceDeletionCompleted", "removed all instances")
        if crd is None:
            return
        new = copy.deepcopy(crd)
        new["metadata"]["finalizers"] = [
            f for f in new["metadata"].get("finalizers") or [] if f != CRD_CLEANUP_FINALIZER
        ]
        with contextlib.suppress(ApiError):
            await self._cluster.update(crds, "", name, new, Options())

    async def _set_crd_condition(self, name: str, uid: str, reason: str, message: str) -> Json | None:
        crds = self._cluster.registry.by_storage_key(CRD_KEY)
        crd = self._cluster.store.get(CRD_KEY, "", name)
        if crds is None or crd is None or crd["metadata"].get("uid") != uid:
            return None
        new = copy.deepcopy(crd)
        new["status"] = _objects.crd_terminating(crd, reason, message)
        try:
            return await self._cluster.update(crds, "", name, new, Options(), subresource="status")
        except ApiError:
            return None
