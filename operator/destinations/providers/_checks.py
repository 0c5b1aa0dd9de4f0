"""Turns a credential probe into the `CredentialCheck` the operator writes to an Authorization's health."""

from __future__ import annotations

from collections.abc import Callable

from destinations.api.models import missing_secret_keys
from destinations.providers.base import CredentialCheck, Credentials
from destinations.providers.errors import ConfigurationError, SyncError


def run_check(probe: Callable[[], str]) -> CredentialCheck:
    """`probe()` returns the healthy message or raises a `SyncError` whose text is the unhealthy one."""
    try:
        return CredentialCheck(healthy=True, message=probe())
    except SyncError as error:
        return CredentialCheck(healthy=False, message=str(error))


def missing_keys(credentials: Credentials) -> list[str]:
    """The Secret keys the method needs that are absent or empty."""
    return missing_secret_keys(credentials.method, credentials.values)


def access_token(credentials: Credentials, why: str) -> str:
    """The Secret's `accessToken`, for providers that cannot refresh one; `why` says why it is needed."""
    token = (credentials.get("accessToken") or "").strip()
    if not token:
        raise ConfigurationError(f"the Secret lacks accessToken: {why}")
    return token


def require_keys(credentials: Credentials) -> None:
    """Raise `ConfigurationError` naming the Secret keys the method needs but lacks."""
    missing = missing_keys(credentials)
    if missing:
        raise ConfigurationError(
            f"the Secret lacks {', '.join(missing)} needed by method {credentials.method.value}"
        )
