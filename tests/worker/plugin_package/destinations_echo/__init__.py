"""`echo`: a third-party provider plug-in that accepts every record (proves entry-point discovery)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from destinations.api.models import AuthMethod, JobType, Schedule
from destinations.providers.base import (
    CredentialCheck,
    Credentials,
    Provider,
    ProviderConfig,
    RecordBatches,
    SyncContext,
)


class EchoExportConfig(ProviderConfig):
    """Nothing to configure."""

    note: str = ""
    """Free text."""


class EchoProvider(Provider):
    key: ClassVar[str] = "echo"
    display_name: ClassVar[str] = "Echo"
    description: ClassVar[str] = "Accepts every record; for tests."
    documentation_url: ClassVar[str] = "https://example.invalid/echo"
    auth_methods: ClassVar[tuple[AuthMethod, ...]] = (AuthMethod.NONE,)
    config_models: ClassVar[Mapping[JobType, type[ProviderConfig]]] = {JobType.EXPORT: EchoExportConfig}
    default_schedule: ClassVar[Schedule] = Schedule(once=True)

    def check_credentials(self, credentials: Credentials) -> CredentialCheck:
        return CredentialCheck(healthy=True, message="echo needs no credentials")

    async def export(self, context: SyncContext, batches: RecordBatches) -> None:
        async for batch in batches:
            context.counts.added += len(batch)
            context.log("echoed", records=len(batch))


provider = EchoProvider()
