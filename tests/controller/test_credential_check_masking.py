"""An Authorization's health message never shows its Secret's values or a password in its endpoint.

The message is written to `status.message` and the `Ready` condition, which more people can read than
the Secret (issue 13: credentials masked everywhere they are shown).
"""

from __future__ import annotations

import asyncio

from destinations.api.models import AuthMethod
from destinations.controller.authorizations import _provider_check
from destinations.providers.base import Credentials
from tests.providers.servers import FakeServer, Request, Response, closed_port_url

KEY = "key-7c1e9a5d"


def test_a_password_in_an_unreachable_endpoint_is_masked() -> None:
    endpoint = closed_port_url().replace("http://", "http://probe:pw-4d2b9e@") + "/health"
    check = asyncio.run(
        _provider_check("webhook", Credentials(AuthMethod.API_KEY, {"apiKey": KEY}, endpoint))
    )
    assert not check.healthy
    assert "pw-4d2b9e" not in check.message
    assert check.message.startswith("webhook: no answer from GET http://probe:***@127.0.0.1:")


def test_a_key_the_provider_echoes_is_masked() -> None:
    def echo(request: Request) -> Response:
        return Response(401, f"unknown key {request.header('x-api-key')}")

    with FakeServer(echo) as server:
        check = asyncio.run(
            _provider_check("webhook", Credentials(AuthMethod.API_KEY, {"apiKey": KEY}, server.url + "/h"))
        )
    assert not check.healthy
    assert KEY not in check.message
    assert "unknown key ***" in check.message
