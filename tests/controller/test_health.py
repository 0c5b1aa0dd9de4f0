"""Authorization health: the Secret first, named in the message when it is missing or incomplete."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from destinations.api.models import AuthorizationSpec, AuthorizationStatus, Health
from destinations.controller.health import (
    authorization_status,
    credentials_or_problem,
    not_ready_message,
    parse_authorization,
)
from destinations.providers.base import CredentialCheck, Credentials

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _spec(method: str = "apiKey") -> AuthorizationSpec:
    return AuthorizationSpec.model_validate(
        {"provider": "webhook", "method": method, "secretRef": {"name": "creds"}}
    )


def _secret(**values: str) -> dict[str, object]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}


def test_a_missing_secret_is_named() -> None:
    result = credentials_or_problem(_spec(), None, "team")
    assert isinstance(result, CredentialCheck) and not result.healthy
    assert "Secret 'creds' not found in namespace 'team'" in result.message


def test_a_missing_key_is_named_without_showing_any_value() -> None:
    result = credentials_or_problem(_spec("basic"), _secret(username="ann", password=""), "team")
    assert isinstance(result, CredentialCheck)
    assert "'password'" in result.message and "ann" not in result.message


def test_a_complete_secret_yields_credentials_for_the_provider_check() -> None:
    result = credentials_or_problem(_spec(), _secret(apiKey="k"), "team")
    assert isinstance(result, Credentials) and result.get("apiKey") == "k"


def test_an_invalid_spec_is_unhealthy_with_the_field_named() -> None:
    result = parse_authorization({"provider": "webhook", "method": "carrierPigeon"}, "team")
    assert isinstance(result, CredentialCheck) and "spec.method" in result.message


def test_a_check_sets_health_ready_and_the_time() -> None:
    status = authorization_status(
        AuthorizationStatus(), CredentialCheck(True, "ok"), now=NOW, generation=2, used_by=3
    )
    assert status.health == Health.HEALTHY
    assert status.last_checked_at == "2030-01-01T00:00:00Z"
    assert (status.used_by, status.observed_generation) == (3, 2)
    assert [(c.type, c.status) for c in status.conditions] == [("Ready", "True")]


def test_jobs_are_told_why_an_authorization_is_not_ready() -> None:
    unhealthy = AuthorizationStatus(health=Health.UNHEALTHY, message="Secret 'creds' not found")
    assert not_ready_message("hook", "team", None) == "Authorization 'hook' not found in namespace 'team'"
    assert "Secret 'creds' not found" in (not_ready_message("hook", "team", unhealthy) or "")
    assert not_ready_message("hook", "team", AuthorizationStatus(health=Health.HEALTHY)) is None
