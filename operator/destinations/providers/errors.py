"""The exceptions a provider's sync code raises, and how each ends a run.

One readable hierarchy, as in httpx: the worker turns `RateLimited` into a `rate_limited` run (not an
error: the job sleeps until the provider's time), every other `SyncError` into a `failed` run whose
message is the exception's text, so each one must say what happened and what the user can do.
Records rejected one by one are never exceptions: they are counted as omitted.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of every error that ends a run with a message a user can act on."""


class ConfigurationError(SyncError):
    """The job's configuration cannot work (a missing table, an unsupported job type, a bad field)."""


class ProviderError(SyncError):
    """The provider answered, but not with something the run can continue from."""


class MalformedResponse(ProviderError):
    """The provider's answer could not be understood (not JSON, a missing field)."""


class AuthenticationFailed(SyncError):
    """The provider refused the credentials (401/403, an invalid token)."""


class EndpointUnreachable(SyncError):
    """No answer from the endpoint after the retries (DNS, refused connection, TLS, timeouts)."""


class RateLimited(SyncError):
    """The provider's limit outlasts a short wait inside the run: come back after `retry_after_seconds`."""

    def __init__(self, message: str, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class RemovalRefused(SyncError):
    """Mirror mode would remove more members than `spec.mirror.maxRemovePercent` allows; none were."""


class RecordRejected(ProviderError):
    """One record refused by the provider; sync code catches it and counts the record as omitted."""
