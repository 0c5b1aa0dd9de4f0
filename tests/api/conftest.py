"""A small, fixed provider catalog, so validation tests do not depend on the real providers' evolution."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import Field

from destinations.api.models import AuthMethod, JobType, Schedule
from destinations.providers.base import CredentialCheck, Credentials, Provider, ProviderConfig


class AcmeExportConfig(ProviderConfig):
    """Settings of an export to the Acme test provider."""

    list_id: str = Field(pattern=r"^[0-9]+$")
    """The Acme list."""
    batch_size: int = Field(default=100, ge=1, le=500)
    """Records per request."""


class AcmeProvider(Provider):
    key = "acme"
    display_name = "Acme"
    description = "A provider that exists only in tests."
    documentation_url = "https://example.invalid/acme"
    auth_methods = (AuthMethod.API_KEY,)
    config_models = {JobType.EXPORT: AcmeExportConfig}
    default_schedule = Schedule(every=timedelta(hours=1))
    min_interval = timedelta(minutes=15)

    def check_credentials(self, credentials: Credentials) -> CredentialCheck:
        return CredentialCheck(healthy=True, message="ok")


@pytest.fixture
def catalog() -> dict[str, Provider]:
    return {"acme": AcmeProvider()}
