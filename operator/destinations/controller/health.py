"""Authorization health as pure functions: from a spec and its Secret to `status`.

The Secret is checked here first (exists, holds the keys the method needs) so that the common
mistakes get a message naming the Secret or the key; only then is the provider's own credential check
asked, which may call the provider. Values never leave this module except to that check.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from destinations.api.models import (
    AuthMethod,
    AuthorizationSpec,
    AuthorizationStatus,
    Condition,
    Health,
    missing_secret_keys,
)
from destinations.lifecycle import format_time
from destinations.providers.base import CredentialCheck, Credentials
from destinations.validate import validate_authorization_spec


def parse_authorization(spec: Any, namespace: str) -> AuthorizationSpec | CredentialCheck:
    """The parsed spec, or an unhealthy check naming what is wrong with it (webhooks off)."""
    problems = validate_authorization_spec(spec, namespace)
    if problems:
        return CredentialCheck(False, "the spec is invalid: " + "; ".join(str(p) for p in problems))
    return AuthorizationSpec.model_validate(dict(spec))


def secret_values(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's keys and decoded values (`data` is base64, `stringData` is never returned by the API)."""
    values: dict[str, str] = {}
    for key, encoded in (secret.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(str(encoded)).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            values[key] = ""
    return values


def credentials_or_problem(
    spec: AuthorizationSpec, secret: Mapping[str, Any] | None, namespace: str
) -> Credentials | CredentialCheck:
    """The credentials to check, or an unhealthy result naming the missing Secret or key."""
    if spec.method == AuthMethod.NONE or spec.secret_ref is None:
        return Credentials(spec.method, {}, spec.endpoint)
    name = spec.secret_ref.name
    if secret is None:
        return CredentialCheck(False, f"Secret {name!r} not found in namespace {namespace!r}")
    values = secret_values(secret)
    missing = missing_secret_keys(spec.method, values)
    if missing:
        keys = ", ".join(repr(key) for key in missing)
        return CredentialCheck(
            False, f"Secret {name!r} lacks key(s) {keys} needed by method {spec.method.value!r}"
        )
    return Credentials(spec.method, values, spec.endpoint)


def authorization_status(
    previous: AuthorizationStatus,
    check: CredentialCheck | None,
    *,
    now: datetime,
    generation: int,
    used_by: int,
) -> AuthorizationStatus:
    """The status after a check (`check` None: keep the last health, update usedBy only)."""
    status = previous.model_copy(deep=True)
    status.used_by = used_by
    if check is not None:
        status.health = Health.HEALTHY if check.healthy else Health.UNHEALTHY
        status.message = check.message
        status.last_checked_at = format_time(now)
        status.observed_generation = generation
    ready = "True" if status.health == Health.HEALTHY else "False"
    if status.health == Health.UNKNOWN:
        ready = "Unknown"
    before = next((c for c in previous.conditions if c.type == "Ready"), None)
    changed = before is None or before.status != ready
    status.conditions = [
        Condition(
            type="Ready",
            status=ready,
            reason=status.health.value,
            message=status.message or "",
            last_transition_time=format_time(now)
            if changed or before is None
            else before.last_transition_time,
            observed_generation=status.observed_generation,
        )
    ]
    return status


def not_ready_message(name: str, namespace: str, status: AuthorizationStatus | None) -> str | None:
    """Why a job may not use Authorization `name` now (None: it is Healthy)."""
    if status is None:
        return f"Authorization {name!r} not found in namespace {namespace!r}"
    if status.health == Health.HEALTHY:
        return None
    if status.health == Health.UNKNOWN:
        return f"Authorization {name!r} has not been checked yet"
    return f"Authorization {name!r} is {status.health.value}: {status.message or 'no message'}"
