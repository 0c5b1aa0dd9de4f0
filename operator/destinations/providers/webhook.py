"""`webhook`: POST batches of records to any HTTP endpoint, or enrich records through a lookup URL.

Signing follows the Standard Webhooks specification (https://www.standardwebhooks.com/) when the
Authorization's Secret holds a `signingSecret`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from destinations.api.models import AuthMethod, JobType, Schedule
from destinations.providers.base import ProviderConfig


class WebhookExportConfig(ProviderConfig):
    """Each batch of records is POSTed as `{"records": [...]}`."""

    url: str = Field(pattern=r"^https?://\S+$")
    """The endpoint receiving the batches."""
    batch_size: int = Field(default=100, ge=1, le=10_000)
    """Records per request."""
    concurrency: int = Field(default=4, ge=1, le=32)
    """Requests in flight at once."""
    api_key_header: str = Field(default="X-API-Key", pattern=r"^[A-Za-z0-9-]+$")
    """The header carrying the key when the Authorization's method is `apiKey`."""
    headers: dict[str, str] = {}
    """Extra, non-secret request headers."""
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    """Per-request timeout."""


class WebhookEnrichmentConfig(ProviderConfig):
    """One lookup per record: the response's fields are merged into the record written to the sink."""

    url: str = Field(pattern=r"^https?://\S+$")
    """Lookup address; `{field}` placeholders are filled from the record, e.g. `https://api/x?email={email}`."""
    method: Literal["GET", "POST"] = "GET"
    """GET with the placeholders filled, or POST with the record as the JSON body."""
    mapping: dict[str, str] = {}
    """Target field → dotted path in the JSON response (e.g. `company: data.company.name`); empty: merge all."""
    concurrency: int = Field(default=4, ge=1, le=32)
    """Lookups in flight at once."""
    api_key_header: str = Field(default="X-API-Key", pattern=r"^[A-Za-z0-9-]+$")
    """The header carrying the key when the Authorization's method is `apiKey`."""
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    """Per-request timeout."""


CONFIG_MODELS = {JobType.EXPORT: WebhookExportConfig, JobType.ENRICHMENT: WebhookEnrichmentConfig}
AUTH_METHODS = (AuthMethod.NONE, AuthMethod.API_KEY, AuthMethod.BASIC, AuthMethod.OAUTH2)
DEFAULT_SCHEDULE = Schedule(every="1h")  # type: ignore[arg-type]
