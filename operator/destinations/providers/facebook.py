"""`facebook`: Meta Custom Audiences, per the Marketing API.

https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences/ —
identifiers are normalised and SHA-256 hashed before upload, at most 10,000 users per request.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from destinations.api.models import AuthMethod, JobType, Schedule
from destinations.providers.base import ProviderConfig

IdentifierKey = Literal["EMAIL", "PHONE", "FN", "LN", "CT", "ST", "ZIP", "COUNTRY", "GEN", "DOBY", "EXTERN_ID"]


class FacebookExportConfig(ProviderConfig):
    """Add the source's records to a Custom Audience (and remove departed ones in mirror mode)."""

    audience_id: str = Field(pattern=r"^[0-9]+$")
    """The Custom Audience ID."""
    identifiers: dict[IdentifierKey, str] = Field(default={"EMAIL": "email"}, min_length=1)
    """Meta schema key → record field, e.g. `EMAIL: email`, `PHONE: phone`, `FN: first_name`."""
    api_version: str = Field(default="v21.0", pattern=r"^v[0-9]+\.[0-9]+$")
    """Graph API version."""
    batch_size: int = Field(default=10_000, ge=1, le=10_000)
    """Users per request (Meta's maximum is 10,000)."""


CONFIG_MODELS = {JobType.EXPORT: FacebookExportConfig}
AUTH_METHODS = (AuthMethod.OAUTH2,)
DEFAULT_SCHEDULE = Schedule(every="24h")  # type: ignore[arg-type]
MIN_INTERVAL = timedelta(hours=1)
