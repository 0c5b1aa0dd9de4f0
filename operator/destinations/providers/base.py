"""What a provider plug-in declares: its catalog entry, config models, credential check and sync code."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from destinations.api.models import AuthMethod, JobType, Schedule


class ProviderConfig(BaseModel):
    """Base of provider config models: camelCase in YAML, unknown fields refused, docstrings as docs."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", use_attribute_docstrings=True
    )


@dataclass(frozen=True)
class Credentials:
    """The keys of an Authorization's Secret. Never printed: repr hides the values."""

    method: AuthMethod
    values: Mapping[str, str] = field(repr=False)
    endpoint: str | None = None
    """The Authorization's `endpoint` override of the provider's API base address."""

    def __repr__(self) -> str:
        return f"Credentials(method={self.method.value!r}, keys={sorted(self.values)!r})"

    def get(self, key: str) -> str | None:
        return self.values.get(key)


@dataclass(frozen=True)
class CredentialCheck:
    """The result of a provider's credential check: a user-facing message, never a secret."""

    healthy: bool
    message: str


class Provider(abc.ABC):
    """A marketing tool or endpoint jobs can sync with.

    Subclasses declare the catalog entry as class attributes; the worker calls the sync code.
    """

    key: ClassVar[str]
    display_name: ClassVar[str]
    description: ClassVar[str]
    documentation_url: ClassVar[str]
    auth_methods: ClassVar[tuple[AuthMethod, ...]]
    config_models: ClassVar[Mapping[JobType, type[ProviderConfig]]]
    default_schedule: ClassVar[Schedule]
    min_interval: ClassVar[timedelta | None] = None
    """Runs more frequent than this are likely to hit the provider's rate limits (an admission warning)."""

    @property
    def job_types(self) -> tuple[JobType, ...]:
        return tuple(job_type for job_type in JobType if job_type in self.config_models)

    def parse_config(self, job_type: JobType, config: Mapping[str, Any]) -> ProviderConfig:
        """Validate a job's `config`; raises pydantic.ValidationError (field paths relative to config)."""
        return self.config_models[job_type].model_validate(dict(config))

    @abc.abstractmethod
    def check_credentials(self, credentials: Credentials) -> CredentialCheck:
        """Ask the provider whether the credentials work; network errors become an unhealthy check."""
