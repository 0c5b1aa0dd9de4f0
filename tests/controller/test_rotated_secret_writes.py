"""The operator's own write of a rotated refresh token is not a Secret change to re-check for.

A re-check refreshes again and, with a rotating provider, invalidates the token the operator just
wrote and a sync pod may already hold. On a real API server the watch event of the write can be handled
before the write's own response; the controller must not mistake it for a change either way.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from destinations.controller.authorizations import AuthorizationController, AuthorizationEntry
from destinations.controller.kube import KubeError
from destinations.controller.usage import AuthorizationUsage


def encoded(**values: str) -> dict[str, str]:
    return {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}


SECRET: dict[str, Any] = {
    "metadata": {"namespace": "team", "name": "salesforce", "resourceVersion": "7"},
    "data": encoded(refreshToken="old", clientId="client", clientSecret="shh"),
}


class Kube:
    """Answers the Secret patch; `echo_first` delivers the write's watch event before the response."""

    def __init__(self, controller: AuthorizationController, *, echo_first: bool, fail: bool = False) -> None:
        self.controller = controller
        self.echo_first = echo_first
        self.fail = fail
        self.patches: list[dict[str, Any]] = []

    async def patch_secret(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(patch)
        if self.fail:
            raise KubeError(409, "the object has been modified")
        written = {"metadata": {**SECRET["metadata"], "resourceVersion": "8"}}
        written["data"] = {**SECRET["data"], **patch["data"]}
        if self.echo_first:
            await self.controller.on_secret_event("MODIFIED", written)
        return written


def controller_with_entry(*, echo_first: bool, fail: bool = False) -> tuple[AuthorizationController, Kube]:
    kube: Kube | None = None
    controller = AuthorizationController(
        AuthorizationUsage(), kube=lambda: kube, clock=lambda: datetime.now(UTC), tell_jobs=lambda *a: None
    )
    kube = Kube(controller, echo_first=echo_first, fail=fail)
    controller.remember(
        {
            "metadata": {"namespace": "team", "name": "salesforce", "uid": "u1"},
            "spec": {"provider": "salesforce", "method": "oauth2", "secretRef": {"name": "salesforce"}},
        }
    )
    return controller, kube


async def first_listing(controller: AuthorizationController) -> AuthorizationEntry:
    """The Secret as first listed; the check it asks for (health still unknown) is taken as done."""
    await controller.on_secret_event(None, SECRET)
    entry = controller.get("team", "salesforce")
    assert entry is not None and entry.secret_fingerprint is not None
    entry.secret_changed = False
    return entry


@pytest.mark.parametrize("echo_first", [True, False], ids=["event-before-response", "response-first"])
def test_the_operators_own_write_does_not_trigger_a_recheck(echo_first: bool) -> None:
    controller, kube = controller_with_entry(echo_first=echo_first)

    async def scenario() -> None:
        entry = await first_listing(controller)
        await controller._save_rotated("team", "salesforce", SECRET, {"refreshToken": "new"}, None)
        assert kube.patches and base64.b64decode(kube.patches[0]["data"]["refreshToken"]) == b"new"
        if not echo_first:  # the watch event after the response
            written = {"metadata": SECRET["metadata"], "data": {**SECRET["data"], **kube.patches[0]["data"]}}
            await controller.on_secret_event("MODIFIED", written)
        assert not entry.secret_changed

    asyncio.run(scenario())


def test_a_change_by_someone_else_after_our_write_is_still_rechecked() -> None:
    controller, _ = controller_with_entry(echo_first=True)

    async def scenario() -> None:
        entry = await first_listing(controller)
        await controller._save_rotated("team", "salesforce", SECRET, {"refreshToken": "new"}, None)
        assert not entry.secret_changed
        reauthorized = {
            "metadata": SECRET["metadata"],
            "data": {**SECRET["data"], **encoded(refreshToken="b")},
        }
        await controller.on_secret_event("MODIFIED", reauthorized)
        assert entry.secret_changed

    asyncio.run(scenario())


def test_a_refused_write_leaves_the_known_fingerprint_as_it_was() -> None:
    controller, _ = controller_with_entry(echo_first=False, fail=True)

    async def scenario() -> None:
        entry = await first_listing(controller)
        before = entry.secret_fingerprint
        with pytest.raises(KubeError):
            await controller._save_rotated("team", "salesforce", SECRET, {"refreshToken": "new"}, None)
        assert entry.secret_fingerprint == before
        # The Secret, unchanged, is listed again: nothing to re-check.
        await controller.on_secret_event("MODIFIED", SECRET)
        assert not entry.secret_changed

    asyncio.run(scenario())
