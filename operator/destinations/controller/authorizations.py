"""The Authorization controller: credential health, usedBy, and the finalizer that guards jobs in use.

One small task per Authorization checks its health when it is created or its spec changes, when its
Secret changes, and every `checkInterval`; it keeps `usedBy` current and, while the Authorization is
being deleted, holds the deletion (a finalizer) until no Pending, Running, Sleeping or Paused job
references it, saying which jobs in `status.message`. Jobs waiting for an Authorization are told when
its health changes, so a job created before its credentials starts as soon as they are Healthy.

Secrets are read only to check them; their values never reach a log, an Event or a status.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from destinations.api.models import AuthorizationSpec, AuthorizationStatus, Health
from destinations.controller.health import (
    authorization_status,
    credentials_or_problem,
    not_ready_message,
    parse_authorization,
    secret_values,
)
from destinations.controller.kube import KubeClient, KubeError
from destinations.controller.patches import merge_patch
from destinations.controller.usage import AuthorizationUsage
from destinations.lifecycle import AuthorizationNotReady, AuthorizationReady, Observation, parse_time
from destinations.providers.base import CredentialCheck, Credentials
from destinations.providers.catalog import get_provider
from destinations.providers.errors import SyncError
from destinations.providers.rotation import SealError, secret_data_patch, unseal
from destinations.redaction import credential_fragments, mask_secrets

logger = logging.getLogger("destinations.operator.authorizations")

PLURAL = "authorizations"
FINALIZER = "destinations.dev/authorization-in-use"
#: Job and Secret changes come in bursts (1,000 jobs applied at once): usedBy is written once per burst.
SETTLE_SECONDS = 0.5
CHECK_TIMEOUT_SECONDS = 60.0


@dataclass
class AuthorizationEntry:
    """What the operator keeps of one Authorization."""

    namespace: str
    name: str
    uid: str = ""
    generation: int = 1
    resource_version: str = ""
    spec: Mapping[str, Any] = field(default_factory=dict)
    status: AuthorizationStatus = field(default_factory=AuthorizationStatus)
    written: dict[str, Any] = field(default_factory=dict)
    finalizers: tuple[str, ...] = ()
    deleting: bool = False
    secret_changed: bool = False
    secret_fingerprint: str | None = None
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def parsed(self) -> AuthorizationSpec | None:
        result = parse_authorization(self.spec, self.namespace)
        return result if isinstance(result, AuthorizationSpec) else None

    @property
    def secret_name(self) -> str | None:
        reference = self.spec.get("secretRef")
        name = reference.get("name") if isinstance(reference, Mapping) else None
        return name if isinstance(name, str) else None

    @property
    def check_interval(self) -> timedelta:
        parsed = self.parsed
        return parsed.check_interval if parsed is not None else timedelta(hours=24)

    def update(self, body: Mapping[str, Any]) -> None:
        metadata = body.get("metadata") or {}
        self.uid = str(metadata.get("uid", ""))
        self.generation = int(metadata.get("generation") or 1)
        self.resource_version = str(metadata.get("resourceVersion", ""))
        spec = body.get("spec")
        self.spec = spec if isinstance(spec, Mapping) else {}
        self.finalizers = tuple(metadata.get("finalizers") or ())
        self.deleting = bool(metadata.get("deletionTimestamp"))


class AuthorizationController:
    def __init__(
        self,
        usage: AuthorizationUsage,
        kube: Callable[[], KubeClient],
        clock: Callable[[], datetime],
        tell_jobs: Callable[[str, str, Observation], None],
    ) -> None:
        """`usage` is the job controller's index of who uses which Authorization (read here, never
        written); `tell_jobs(namespace, name, observation)` reaches the jobs using an Authorization."""
        self.usage = usage
        self._kube = kube
        self.clock = clock
        self._tell_jobs = tell_jobs
        self.entries: dict[tuple[str, str], AuthorizationEntry] = {}
        usage.subscribe(self._usage_changed)

    @property
    def kube(self) -> KubeClient:
        return self._kube()

    # --- what jobs ask -----------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> AuthorizationEntry | None:
        return self.entries.get((namespace, name))

    def not_ready_message(self, namespace: str, name: str) -> str | None:
        entry = self.entries.get((namespace, name))
        if entry is not None and entry.deleting:
            return f"Authorization {name!r} is being deleted"
        return not_ready_message(name, namespace, entry.status if entry is not None else None)

    def _usage_changed(self, namespace: str, name: str, count_changed: bool) -> None:
        """A job started or stopped using the Authorization (usedBy changes), or changed phase (which
        matters only while a deletion waits for the active jobs to go)."""
        entry = self.entries.get((namespace, name))
        if entry is not None and (count_changed or entry.deleting):
            entry.wakeup.set()

    # --- watch events ------------------------------------------------------------------------

    def remember(self, body: Mapping[str, Any]) -> AuthorizationEntry:
        """Keep the Authorization (with its persisted health): listed at start-up, before any job
        decides (controller/priming.py), then from each event."""
        metadata = body.get("metadata") or {}
        key = (str(metadata.get("namespace", "")), str(metadata.get("name", "")))
        entry = self.entries.get(key)
        if entry is None or entry.uid != metadata.get("uid"):
            status_body = body.get("status") or {}
            try:
                status = AuthorizationStatus.model_validate(status_body)
            except ValueError:
                status = AuthorizationStatus()
            entry = AuthorizationEntry(*key, status=status, written=dict(status_body))
            self.entries[key] = entry
        entry.update(body)
        return entry

    def forget(self, namespace: str, name: str) -> None:
        """The Authorization is gone (its DELETED event, or deleted before kopf's watch began)."""
        entry = self.entries.pop((namespace, name), None)
        if entry is not None and entry.task is not None:
            entry.task.cancel()
        message = f"Authorization {name!r} not found in namespace {namespace!r}"
        self._tell_jobs(namespace, name, AuthorizationNotReady(message))

    async def on_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        metadata = body.get("metadata") or {}
        key = (str(metadata.get("namespace", "")), str(metadata.get("name", "")))
        if event_type == "DELETED":
            self.forget(*key)
            return
        entry = self.remember(body)
        if entry.task is None or entry.task.done():
            entry.task = asyncio.create_task(self._run(entry), name=f"authorization {key[0]}/{key[1]}")
        entry.wakeup.set()

    async def on_secret_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A Secret changed: re-check the Authorizations that use it (never keeping its values)."""
        metadata = body.get("metadata") or {}
        namespace, name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
        users = [e for e in self.entries.values() if e.namespace == namespace and e.secret_name == name]
        if not users:
            return
        fingerprint = None if event_type == "DELETED" else _secret_fingerprint(body)
        for entry in users:
            first_sight = entry.secret_fingerprint is None and event_type is None
            changed = entry.secret_fingerprint != fingerprint or event_type == "DELETED"
            # On the first listing only an unhealthy Authorization is re-checked (its Secret may have
            # been fixed while the operator was down); a healthy one waits for its interval.
            if changed and (not first_sight or entry.status.health != Health.HEALTHY):
                entry.secret_changed = True
                entry.wakeup.set()
            entry.secret_fingerprint = fingerprint

    async def close(self) -> None:
        for entry in self.entries.values():
            if entry.task is not None:
                entry.task.cancel()

    # --- one Authorization's loop ------------------------------------------------------------

    async def _run(self, entry: AuthorizationEntry) -> None:
        while (entry.namespace, entry.name) in self.entries:
            entry.wakeup.clear()
            try:
                if entry.deleting:
                    if await self._handle_deletion(entry):
                        return
                else:
                    await self._ensure_finalizer(entry)
                    await self._refresh(entry)
            except KubeError as error:
                logger.warning("%s/%s: %s", entry.namespace, entry.name, error)
                await asyncio.sleep(1)
                entry.wakeup.set()
            except Exception:
                logger.exception("%s/%s: the Authorization's loop failed", entry.namespace, entry.name)
                await asyncio.sleep(5)
                entry.wakeup.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry.wakeup.wait(), self._seconds_to_next_check(entry))
            await asyncio.sleep(SETTLE_SECONDS)  # let a burst of job or Secret events settle

    def _seconds_to_next_check(self, entry: AuthorizationEntry) -> float | None:
        if entry.deleting or entry.status.last_checked_at is None:
            return None
        due = parse_time(entry.status.last_checked_at) + entry.check_interval
        return max(0.0, (due - self.clock()).total_seconds()) + 0.05

    def _check_due(self, entry: AuthorizationEntry) -> bool:
        status = entry.status
        if entry.secret_changed or status.last_checked_at is None:
            return True
        if status.observed_generation != entry.generation:
            return True
        return self.clock() >= parse_time(status.last_checked_at) + entry.check_interval

    async def _refresh(self, entry: AuthorizationEntry) -> None:
        used_by = self.usage.count(entry.namespace, entry.name)
        check = None
        if self._check_due(entry):
            entry.secret_changed = False
            check = await self._check(entry)
        before = entry.status
        entry.status = authorization_status(
            before, check, now=self.clock(), generation=entry.generation, used_by=used_by
        )
        # Jobs are told before the status write: the in-memory status is what they consult, and a
        # failed write (retried by the loop, with no new check) must not swallow the news.
        if check is not None and (before.health != entry.status.health or before.last_checked_at is None):
            logger.info(
                "%s/%s: %s: %s", entry.namespace, entry.name, entry.status.health, entry.status.message
            )
            observation = (
                AuthorizationReady()
                if entry.status.health == Health.HEALTHY
                else AuthorizationNotReady(entry.status.message or "not healthy")
            )
            self._tell_jobs(entry.namespace, entry.name, observation)
        await self._write_status(entry)

    async def _check(self, entry: AuthorizationEntry) -> CredentialCheck:
        parsed = parse_authorization(entry.spec, entry.namespace)
        if isinstance(parsed, CredentialCheck):
            return parsed
        secret = None
        if parsed.secret_ref is not None:
            try:
                secret = await self.kube.get_secret(entry.namespace, parsed.secret_ref.name)
            except KubeError as error:
                if error.status != 404:
                    raise
        credentials = credentials_or_problem(parsed, secret, entry.namespace)
        if isinstance(credentials, CredentialCheck):
            return credentials
        check = await _provider_check(parsed.provider, credentials)
        if check.rotated and secret is not None and parsed.secret_ref is not None:
            # The check itself refreshed a rotating token: the old one no longer works.
            try:
                await self._save_rotated(entry.namespace, parsed.secret_ref.name, secret, check.rotated, None)
            except KubeError as error:
                logger.warning(
                    "%s/%s: the rotated refresh token was not stored: %s", entry.namespace, entry.name, error
                )
        return check

    async def store_rotated(self, namespace: str, name: str, run_id: str, sealed: str) -> None:
        """A sync pod rotated the Authorization's refresh token: open its sealed report, update the Secret.

        Never raises: a token that cannot be stored is logged (keys only), and the next refresh that
        needs it fails with the re-authorize message.
        """
        entry = self.entries.get((namespace, name))
        secret_name = entry.secret_name if entry is not None else None
        if secret_name is None:
            logger.warning(
                "%s/%s: rotated credentials of run %s, but no Secret to store them", namespace, name, run_id
            )
            return
        try:
            secret = await self.kube.get_secret(namespace, secret_name)
            values = secret_values(secret)
            rotated, replaces = unseal(sealed, client_secret=values.get("clientSecret", ""), run_id=run_id)
            await self._save_rotated(namespace, secret_name, secret, rotated, replaces)
        except (KubeError, SealError) as error:
            logger.warning(
                "%s/%s: the refresh token rotated by run %s was not stored: %s",
                namespace,
                name,
                run_id,
                error,
            )

    async def _save_rotated(
        self,
        namespace: str,
        secret_name: str,
        secret: Mapping[str, Any],
        rotated: Mapping[str, str],
        replaces: str | None,
    ) -> None:
        data = secret_data_patch(secret_values(secret), rotated, replaces=replaces)
        if data is None:
            logger.info(
                "%s/%s: rotated credentials not written (the Secret changed since)", namespace, secret_name
            )
            return
        version = (secret.get("metadata") or {}).get("resourceVersion")
        patch: dict[str, Any] = {"data": data}
        if version:
            patch["metadata"] = {"resourceVersion": version}
        # Our own write is not a change to re-check for (a check would refresh and rotate again). The
        # fingerprint is recorded before the write: the watch event of the write may be handled before
        # the write's own response is (seen on a real API server).
        users = [
            entry
            for entry in self.entries.values()
            if entry.namespace == namespace and entry.secret_name == secret_name
        ]
        previous = [(entry, entry.secret_fingerprint) for entry in users]
        expected = _secret_fingerprint({"data": {**(secret.get("data") or {}), **data}})
        for entry in users:
            entry.secret_fingerprint = expected
        try:
            await self.kube.patch_secret(namespace, secret_name, patch)
        except BaseException:
            for entry, fingerprint in previous:
                if entry.secret_fingerprint == expected:
                    entry.secret_fingerprint = fingerprint
            raise
        logger.info("%s/%s: stored rotated %s", namespace, secret_name, ", ".join(sorted(rotated)))

    async def _ensure_finalizer(self, entry: AuthorizationEntry) -> None:
        if FINALIZER in entry.finalizers:
            return
        finalizers = [*entry.finalizers, FINALIZER]
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": entry.resource_version}}
        try:
            await self.kube.patch_object(PLURAL, entry.namespace, entry.name, patch)
        except KubeError as error:
            if error.status not in (404, 409):
                raise
            return  # changed meanwhile: the next watch event brings the new version
        entry.finalizers = tuple(finalizers)

    async def _handle_deletion(self, entry: AuthorizationEntry) -> bool:
        """Hold the deletion while active jobs use the Authorization; True once it is let go."""
        if FINALIZER not in entry.finalizers:
            return True
        blocking = self.usage.blocking(entry.namespace, entry.name)
        if blocking:
            shown = ", ".join(blocking[:10]) + (
                f" and {len(blocking) - 10} more" if len(blocking) > 10 else ""
            )
            entry.status = entry.status.model_copy(
                update={
                    "message": (
                        f"deletion is held: used by {len(blocking)} Pending, Running, Sleeping or Paused "
                        f"job(s): {shown}; delete those jobs or point them at another Authorization"
                    ),
                    "used_by": self.usage.count(entry.namespace, entry.name),
                }
            )
            await self._write_status(entry)
            return False
        finalizers = [name for name in entry.finalizers if name != FINALIZER]
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": entry.resource_version}}
        try:
            await self.kube.patch_object(PLURAL, entry.namespace, entry.name, patch)
        except KubeError as error:
            if error.status == 409:
                return False
            if error.status != 404:
                raise
        logger.info("%s/%s: no active job uses it; deletion released", entry.namespace, entry.name)
        entry.finalizers = tuple(finalizers)
        return True

    async def _write_status(self, entry: AuthorizationEntry) -> None:
        wanted = entry.status.model_dump(mode="json", by_alias=True, exclude_none=True)
        patch = merge_patch(entry.written, wanted)
        if not patch:
            return
        try:
            await self.kube.patch_status(PLURAL, entry.namespace, entry.name, patch)
        except KubeError as error:
            if error.status == 404:
                return
            raise
        entry.written = wanted


def _secret_fingerprint(secret: Mapping[str, Any]) -> str:
    """Identifies a Secret's data without keeping it."""
    return hashlib.sha256(json.dumps(secret.get("data") or {}, sort_keys=True).encode()).hexdigest()


async def _provider_check(provider_key: str, credentials: Credentials) -> CredentialCheck:
    """The provider's own check, off the event loop (it may call the provider) and bounded in time.

    Its message lands in the Authorization's status, which more people read than its Secret: the
    Secret's values, and credentials in the endpoint's URL, are masked in it."""
    check = await _unmasked_provider_check(provider_key, credentials)
    secrets = [*credentials.values.values(), *credential_fragments(credentials.endpoint or "")]
    # `replace` keeps the rest of the check, such as a rotated refresh token to write back.
    return replace(check, message=mask_secrets(check.message, secrets))


async def _unmasked_provider_check(provider_key: str, credentials: Credentials) -> CredentialCheck:
    try:
        provider = get_provider(provider_key)
        return await asyncio.wait_for(
            asyncio.to_thread(provider.check_credentials, credentials), CHECK_TIMEOUT_SECONDS
        )
    except TimeoutError:
        return CredentialCheck(False, f"the {provider_key} credential check timed out")
    except SyncError as error:
        return CredentialCheck(False, str(error))
    except Exception as error:  # a plug-in's bug must not stop the controller; its text may hold values
        return CredentialCheck(False, f"the {provider_key} credential check failed ({type(error).__name__})")
