"""OAuth2 tokens in the shared HTTP layer, and the sealing of rotated refresh tokens.

- Refresh grant and its errors: https://www.rfc-editor.org/rfc/rfc6749#section-6 and #section-5.2
- Bearer tokens refused with 401: https://www.rfc-editor.org/rfc/rfc6750#section-3.1
"""

from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest

from destinations.api.models import AuthMethod, JobType
from destinations.providers._http import HttpClientFactory
from destinations.providers._oauth import RotatedCredentials, StaticToken, token_source
from destinations.providers.base import Credentials
from destinations.providers.catalog import get_provider
from destinations.providers.errors import AuthenticationFailed, ConfigurationError
from destinations.providers.rotation import SealError, seal, secret_data_patch, unseal
from destinations.providers.webhook import provider as webhook
from tests.providers.conftest import batches_of, make_context, run
from tests.providers.oauth_fake import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, TokenEndpoint
from tests.providers.servers import FakeServer, Request, Response


class Api:
    """An API that takes the tokens its token endpoint issued, each for `uses_per_token` calls."""

    def __init__(self, tokens: TokenEndpoint) -> None:
        self.tokens = tokens

    def __call__(self, request: Request) -> Response:
        if self.tokens.handles(request):
            return self.tokens(request)
        if not self.tokens.api_accepts(request.header("authorization")):
            return Response(
                401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        return Response(200, {"ok": True})


def credentials(server: FakeServer, **values: str) -> Credentials:
    base = {
        "refreshToken": REFRESH_TOKEN,
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "tokenUrl": f"{server.url}/token",
    }
    return Credentials(AuthMethod.OAUTH2, {**base, **values}, server.url)


async def calls(
    http: HttpClientFactory, source: object, url: str, count: int, concurrently: bool
) -> list[int]:
    async with http(name="test", token=source) as client:  # type: ignore[arg-type]
        if concurrently:
            answers = await asyncio.gather(*(client.request("GET", url) for _ in range(count)))
        else:
            answers = [await client.request("GET", url) for _ in range(count)]
    return [answer.status_code for answer in answers]


def test_a_token_is_obtained_once_and_reused_while_fresh(http: HttpClientFactory) -> None:
    tokens = TokenEndpoint()
    with FakeServer(Api(tokens)) as server:
        source = token_source(credentials(server), default_token_url="unused", reauthorize="x")
        assert run(calls(http, source, f"{server.url}/api", 5, concurrently=False)) == [200] * 5
    assert tokens.issued == ["access-1"]


def test_concurrent_401s_share_one_refresh(http: HttpClientFactory) -> None:
    tokens = TokenEndpoint()
    with FakeServer(Api(tokens)) as server:
        # An access token the API no longer knows: every request's first try gets a 401.
        source = token_source(
            credentials(server, accessToken="expired"), default_token_url="unused", reauthorize="x"
        )
        assert run(calls(http, source, f"{server.url}/api", 6, concurrently=True)) == [200] * 6
    assert tokens.issued == ["access-1"]


def test_a_bare_access_token_refused_with_401_fails_without_a_refresh(http: HttpClientFactory) -> None:
    with FakeServer(Api(TokenEndpoint())) as server, pytest.raises(AuthenticationFailed, match="HTTP 401"):
        run(calls(http, StaticToken("never-issued"), f"{server.url}/api", 1, concurrently=False))


def test_a_refused_client_says_to_check_client_id_and_secret(http: HttpClientFactory) -> None:
    with FakeServer(Api(TokenEndpoint())) as server:
        source = token_source(
            credentials(server, clientSecret="wrong"), default_token_url="unused", reauthorize="x"
        )
        with pytest.raises(AuthenticationFailed, match="check clientId and clientSecret"):
            run(calls(http, source, f"{server.url}/api", 1, concurrently=False))


def test_a_refresh_token_without_client_credentials_is_refused_naming_the_keys() -> None:
    values = {"refreshToken": REFRESH_TOKEN}
    with pytest.raises(ConfigurationError, match="lacks clientId and clientSecret"):
        token_source(Credentials(AuthMethod.OAUTH2, values), default_token_url="u", reauthorize="x")


def test_rotated_refresh_tokens_are_handed_over(http: HttpClientFactory) -> None:
    tokens = TokenEndpoint(rotate=True, uses_per_token=1)
    rotated = RotatedCredentials()
    with FakeServer(Api(tokens)) as server:
        source = token_source(
            credentials(server), default_token_url="unused", reauthorize="x", on_rotation=rotated
        )
        assert run(calls(http, source, f"{server.url}/api", 3, concurrently=False)) == [200] * 3
    assert rotated.values == {"refreshToken": "rotated-3"}
    assert tokens.refused == []
    assert "rotated-3" not in repr(rotated)


# ------------------------------------------------------------------------------------------ sealing


def test_sealed_credentials_open_with_the_same_client_secret_and_run() -> None:
    sealed = seal({"refreshToken": "new"}, replaces="old", client_secret="s3cret", run_id="ns/job#4")
    assert "new" not in sealed
    values, replaces = unseal(sealed, client_secret="s3cret", run_id="ns/job#4")
    assert values == {"refreshToken": "new"}
    assert replaces == hashlib.sha256(b"old").hexdigest()


@pytest.mark.parametrize(("client_secret", "run_id"), [("other", "ns/job#4"), ("s3cret", "ns/job#5")])
def test_sealed_credentials_do_not_open_with_another_secret_or_for_another_run(
    client_secret: str, run_id: str
) -> None:
    sealed = seal({"refreshToken": "new"}, replaces="old", client_secret="s3cret", run_id="ns/job#4")
    with pytest.raises(SealError):
        unseal(sealed, client_secret=client_secret, run_id=run_id)


def test_the_secret_is_patched_only_while_it_holds_the_replaced_token() -> None:
    replaces = hashlib.sha256(b"old").hexdigest()
    assert secret_data_patch({"refreshToken": "old"}, {"refreshToken": "new"}, replaces=replaces) == {
        "refreshToken": base64.b64encode(b"new").decode()
    }
    assert (
        secret_data_patch({"refreshToken": "re-authorized"}, {"refreshToken": "new"}, replaces=replaces)
        is None
    )
    assert secret_data_patch({"refreshToken": "old"}, {"clientSecret": "x"}, replaces=replaces) is None


def test_a_refused_refresh_token_is_retried_once_with_a_newer_one_from_the_mounted_secret(
    http: HttpClientFactory,
) -> None:
    # The operator rotated the token (its own credential check) and stored the new one in the Secret.
    tokens = TokenEndpoint(refresh_tokens={"stored-by-the-operator"})
    with FakeServer(Api(tokens)) as server:
        mounted = {"refreshToken": "stored-by-the-operator"}
        values = {**credentials(server).values}
        source = token_source(
            Credentials(AuthMethod.OAUTH2, values, server.url, reread=mounted.get),
            default_token_url="unused",
            reauthorize="x",
        )
        assert run(calls(http, source, f"{server.url}/api", 1, concurrently=False)) == [200]
    assert tokens.refused == ["refresh_token"] and tokens.issued == ["access-1"]


def test_a_refused_refresh_token_with_no_newer_one_mounted_says_to_reauthorize(
    http: HttpClientFactory,
) -> None:
    tokens = TokenEndpoint(refresh_tokens=set())
    with FakeServer(Api(tokens)) as server:
        source = token_source(
            Credentials(AuthMethod.OAUTH2, credentials(server).values, server.url, reread={}.get),
            default_token_url="unused",
            reauthorize="do it again",
        )
        with pytest.raises(AuthenticationFailed, match="Re-authorize: do it again"):
            run(calls(http, source, f"{server.url}/api", 1, concurrently=False))
    assert tokens.refused == ["refresh_token"]


def test_the_webhook_provider_refreshes_oauth2_tokens_mid_run(http: HttpClientFactory) -> None:
    tokens = TokenEndpoint(uses_per_token=1)
    with FakeServer(Api(tokens)) as server:
        sync = make_context(
            webhook,
            JobType.EXPORT,
            {"url": f"{server.url}/api", "batchSize": 2, "concurrency": 1},
            method=AuthMethod.OAUTH2,
            values=dict(credentials(server).values),
            endpoint=None,
            http=http,
        )
        run(webhook.export(sync, batches_of([{"email": f"e{i}@x.io"} for i in range(6)])))
    assert sync.counts.added == 6
    assert tokens.issued == ["access-1", "access-2", "access-3"]


def test_a_webhook_refresh_token_without_a_token_url_is_refused_naming_it() -> None:
    values = {"refreshToken": REFRESH_TOKEN, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}
    check = webhook.check_credentials(Credentials(AuthMethod.OAUTH2, values, "http://127.0.0.1:9"))
    assert not check.healthy and "tokenUrl" in check.message


@pytest.mark.parametrize(
    ("key", "why"),
    [("facebook", "Meta issues no refresh tokens"), ("mailchimp", "do not expire")],
)
def test_providers_without_refresh_tokens_want_an_access_token(key: str, why: str) -> None:
    values = {"refreshToken": REFRESH_TOKEN, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}
    check = get_provider(key).check_credentials(Credentials(AuthMethod.OAUTH2, values, "http://127.0.0.1:9"))
    assert not check.healthy
    assert "lacks accessToken" in check.message and why in check.message
