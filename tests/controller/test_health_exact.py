"""Authorization health, exactly: the whole status and each message a user reads (DESIGN.md §2).

Expected values are literal: a changed word, a lost field or a wrong transition time fails here.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from destinations.api.models import AuthMethod, AuthorizationSpec, AuthorizationStatus, Condition, Health
from destinations.controller.health import (
    authorization_status,
    credentials_or_problem,
    not_ready_message,
    parse_authorization,
    secret_values,
)
from destinations.providers.base import CredentialCheck, Credentials

NOW = datetime(2030, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(hours=6)


def _spec(method: str = "apiKey", **fields: Any) -> AuthorizationSpec:
    manifest = {"provider": "webhook", "method": method, "secretRef": {"name": "creds"}, **fields}
    return AuthorizationSpec.model_validate(manifest)


def _secret(**values: str) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}


def _dump(status: AuthorizationStatus) -> dict[str, Any]:
    return status.model_dump(by_alias=True, exclude_none=True, mode="json")


# ------------------------------------------------------------------------------ the spec and Secret


def test_an_invalid_spec_is_unhealthy_naming_the_field_the_value_and_the_choices() -> None:
    result = parse_authorization({"provider": "webhook", "method": "carrierPigeon"}, "team")
    assert result == CredentialCheck(
        False,
        "the spec is invalid: spec.method: must be one of: apiKey, basic, oauth2, serviceAccount, none "
        '(got "carrierPigeon")',
    )


def test_a_valid_spec_is_parsed_with_its_fields() -> None:
    result = parse_authorization(
        {"provider": "webhook", "method": "apiKey", "secretRef": {"name": "creds"}, "checkInterval": "6h"},
        "team",
    )
    assert isinstance(result, AuthorizationSpec)
    assert (result.provider, result.method, result.check_interval) == (
        "webhook",
        AuthMethod.API_KEY,
        timedelta(hours=6),
    )
    assert result.secret_ref is not None and result.secret_ref.name == "creds"


def test_secret_values_are_decoded_and_undecodable_ones_are_empty() -> None:
    secret = {
        "data": {
            "apiKey": base64.b64encode(b"k-123").decode(),
            "broken": "not base64!",
            "binary": base64.b64encode(b"\xff\xfe").decode(),
        }
    }
    assert secret_values(secret) == {"apiKey": "k-123", "broken": "", "binary": ""}
    assert secret_values({}) == {}
    assert secret_values({"data": None}) == {}


def test_method_none_needs_no_secret() -> None:
    spec = AuthorizationSpec.model_validate({"provider": "webhook", "method": "none"})
    assert credentials_or_problem(spec, None, "team") == Credentials(AuthMethod.NONE, {}, None)


def test_a_missing_secret_is_unhealthy_naming_it_and_its_namespace() -> None:
    assert credentials_or_problem(_spec(), None, "team") == CredentialCheck(
        False, "Secret 'creds' not found in namespace 'team'"
    )


def test_missing_keys_are_all_named_with_the_method() -> None:
    assert credentials_or_problem(_spec("basic"), _secret(username="ann"), "team") == CredentialCheck(
        False, "Secret 'creds' lacks key(s) 'password' needed by method 'basic'"
    )
    assert credentials_or_problem(_spec("basic"), _secret(), "team") == CredentialCheck(
        False, "Secret 'creds' lacks key(s) 'username', 'password' needed by method 'basic'"
    )


def test_a_complete_secret_yields_its_values_and_the_endpoint() -> None:
    spec = _spec(endpoint="https://hooks.example.com")
    assert credentials_or_problem(spec, _secret(apiKey="k-123"), "team") == Credentials(
        AuthMethod.API_KEY, {"apiKey": "k-123"}, "https://hooks.example.com"
    )


# ------------------------------------------------------------------------------------------ status


def test_a_first_healthy_check_writes_the_whole_status() -> None:
    status = authorization_status(
        AuthorizationStatus(), CredentialCheck(True, "the key works"), now=NOW, generation=2, used_by=3
    )
    assert _dump(status) == {
        "health": "Healthy",
        "message": "the key works",
        "lastCheckedAt": "2030-01-01T00:00:00Z",
        "usedBy": 3,
        "observedGeneration": 2,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Healthy",
                "message": "the key works",
                "lastTransitionTime": "2030-01-01T00:00:00Z",
                "observedGeneration": 2,
            }
        ],
    }


def test_an_unhealthy_check_makes_ready_false() -> None:
    status = authorization_status(
        AuthorizationStatus(), CredentialCheck(False, "HTTP 401"), now=NOW, generation=1, used_by=0
    )
    assert (status.health, status.message) == (Health.UNHEALTHY, "HTTP 401")
    assert [(c.status, c.reason, c.message) for c in status.conditions] == [
        ("False", "Unhealthy", "HTTP 401")
    ]


def test_without_a_check_only_used_by_changes_and_an_unchecked_authorization_is_unknown() -> None:
    status = authorization_status(AuthorizationStatus(), None, now=NOW, generation=4, used_by=2)
    assert _dump(status) == {
        "health": "Unknown",
        "usedBy": 2,
        "conditions": [
            {
                "type": "Ready",
                "status": "Unknown",
                "reason": "Unknown",
                "message": "",
                "lastTransitionTime": "2030-01-01T00:00:00Z",
            }
        ],
    }


def test_the_ready_transition_time_moves_only_when_ready_changes() -> None:
    first = authorization_status(
        AuthorizationStatus(), CredentialCheck(True, "ok"), now=NOW, generation=1, used_by=1
    )
    again = authorization_status(first, CredentialCheck(True, "still ok"), now=LATER, generation=1, used_by=1)
    assert again.last_checked_at == "2030-01-01T06:00:00Z"
    assert again.conditions == [
        Condition(
            type="Ready",
            status="True",
            reason="Healthy",
            message="still ok",
            last_transition_time="2030-01-01T00:00:00Z",
            observed_generation=1,
        )
    ]
    broken = authorization_status(
        again, CredentialCheck(False, "HTTP 401"), now=LATER, generation=1, used_by=1
    )
    assert broken.conditions[0].last_transition_time == "2030-01-01T06:00:00Z"


def test_the_previous_status_is_not_changed() -> None:
    previous = AuthorizationStatus()
    authorization_status(previous, CredentialCheck(True, "ok"), now=NOW, generation=1, used_by=5)
    assert previous == AuthorizationStatus()


# ------------------------------------------------------------------------------------- for the jobs


def test_jobs_read_why_an_authorization_is_not_ready() -> None:
    assert not_ready_message("hook", "team", None) == "Authorization 'hook' not found in namespace 'team'"
    assert (
        not_ready_message("hook", "team", AuthorizationStatus())
        == "Authorization 'hook' has not been checked yet"
    )
    unhealthy = AuthorizationStatus(health=Health.UNHEALTHY, message="HTTP 401")
    assert not_ready_message("hook", "team", unhealthy) == "Authorization 'hook' is Unhealthy: HTTP 401"
    silent = AuthorizationStatus(health=Health.UNHEALTHY)
    assert not_ready_message("hook", "team", silent) == "Authorization 'hook' is Unhealthy: no message"
    assert not_ready_message("hook", "team", AuthorizationStatus(health=Health.HEALTHY)) is None
