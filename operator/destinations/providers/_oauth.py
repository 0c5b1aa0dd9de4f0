"""OAuth2 access tokens for provider calls: obtained, cached for their lifetime, refreshed, never shown.

An Authorization with method `oauth2` holds `accessToken` and/or `refreshToken` + `clientId` +
`clientSecret` (optionally `tokenUrl`); one with method `serviceAccount` holds a Google service-account
key (`serviceAccountJson`). A `TokenSource` turns those into a bearer token for `ProviderHttpClient`:

- the token is cached and refreshed `REFRESH_MARGIN_SECONDS` before its `expires_in` runs out
  (RFC 6749 §5.1), or as soon as the provider answers 401 to it (a token may be revoked or expire
  early; Salesforce sends no `expires_in` at all), once per stale token: concurrent 401s share one refresh;
- a refresh the authorization server refuses with `invalid_grant` (RFC 6749 §5.2: the refresh token
  or signed assertion is expired, revoked or was issued to another client) raises `ReauthorizationNeeded`,
  whose message says to re-authorize and how; the health check uses the same flow, so the
  Authorization turns Unhealthy with that message;
- a provider that rotates refresh tokens (Salesforce with "refresh token rotation" on:
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm) answers a
  refresh with a new `refresh_token` and invalidates the old one. The source keeps using the newest
  one for the rest of the run and hands it to `on_rotation` (see `RotatedCredentials`), so it is not lost.

Token values never reach a message: errors quote only the server's `error` and `error_description`.
Service-account assertions (RFC 7523 JWT bearer grant, as Google documents at
https://developers.google.com/identity/protocols/oauth2/service-account#httprest) are signed with
joserfc.
"""

from __future__ import annotations

import abc
import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from destinations.api.models import AuthMethod
from destinations.providers.errors import (
    AuthenticationFailed,
    ConfigurationError,
    EndpointUnreachable,
    ProviderError,
)

if TYPE_CHECKING:  # base imports _http, which imports this module
    from destinations.providers.base import Credentials

#: Refresh this long before the token's announced expiry, so no request goes out with a dying token.
REFRESH_MARGIN_SECONDS = 60.0
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Lifetime Google allows for a service-account assertion (at most one hour).
ASSERTION_LIFETIME_SECONDS = 3600
TOKEN_REQUEST_ATTEMPTS = 3

Clock = Callable[[], float]


class ReauthorizationNeeded(AuthenticationFailed):
    """The refresh token or service-account key no longer works: a person has to re-authorize."""


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and what came with it. repr never shows the value."""

    value: str = field(repr=False)
    expires_at: float | None = None
    """`time.time()` at which the token expires; None when the server did not say."""
    instance_url: str | None = None
    """Salesforce: the org's API host, from the token response."""

    def fresh(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at - REFRESH_MARGIN_SECONDS


@dataclass
class RotatedCredentials:
    """Secret keys a run learned new values for (a rotated `refreshToken`); values hidden from repr.

    The worker collects them here and the Authorization's Secret is updated from them (see
    docs/providers.md, "OAuth2 tokens"), because the old refresh token stops working once rotated.
    """

    values: dict[str, str] = field(default_factory=dict, repr=False)

    def __call__(self, key: str, value: str) -> None:
        self.values[key] = value

    def __repr__(self) -> str:
        return f"RotatedCredentials(keys={sorted(self.values)!r})"


class TokenSource(abc.ABC):
    """Hands out a valid bearer token; `invalidate` after a 401 forces the next `token()` to refresh."""

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._current: AccessToken | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0
        """How many times a token was obtained from the authorization server (for logs and tests)."""

    @property
    def can_refresh(self) -> bool:
        return True

    async def token(self, http: TokenHttp) -> AccessToken:
        async with self._lock:
            current = self._current
            if current is not None and current.fresh(self._clock()):
                return current
            if not self.can_refresh and current is not None:
                return current  # a bare access token: use it until the provider refuses it
            self._current = await self._obtain(http)
            self.refreshes += 1
            return self._current

    async def invalidate(self, stale: AccessToken) -> bool:
        """Forget `stale` (the provider refused it); False when no new token can be obtained."""
        async with self._lock:
            if self._current is stale:
                self._current = None
            return self.can_refresh

    @abc.abstractmethod
    async def _obtain(self, http: TokenHttp) -> AccessToken:
        """Ask the authorization server for a new token."""


class StaticToken(TokenSource):
    """An `accessToken` without the means to refresh it: used until the provider refuses it."""

    def __init__(self, value: str) -> None:
        super().__init__()
        self._current = AccessToken(value)

    @property
    def can_refresh(self) -> bool:
        return False

    async def _obtain(self, http: TokenHttp) -> AccessToken:  # pragma: no cover - can_refresh is False
        raise AssertionError("a static token is never refreshed")


class RefreshTokenGrant(TokenSource):
    """RFC 6749 §6: `grant_type=refresh_token` with the client's id and secret in the form body."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        access_token: str | None = None,
        reauthorize: str,
        on_rotation: Callable[[str, str], None] | None = None,
        reread: Callable[[], str | None] | None = None,
        reread_wait: tuple[float, int] = (0.0, 0),
        clock: Clock = time.time,
    ) -> None:
        super().__init__(clock=clock)
        self.token_url = token_url
        self._reread = reread
        self._reread_wait = reread_wait
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._reauthorize = reauthorize
        self._on_rotation = on_rotation
        if access_token:
            # Its lifetime is unknown: use it first, and refresh on the first 401.
            self._current = AccessToken(access_token)

    async def _obtain(self, http: TokenHttp) -> AccessToken:
        try:
            body = await self._refresh(http)
        except ReauthorizationNeeded:
            if not await self._newer_refresh_token(http):
                raise
            body = await self._refresh(http)
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != self._refresh_token:
            self._refresh_token = rotated
            if self._on_rotation is not None:
                self._on_rotation("refreshToken", rotated)
        return token_from_response(body, self._clock())

    async def _refresh(self, http: TokenHttp) -> dict[str, Any]:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        return await http.post_form(self.token_url, form, reauthorize=self._reauthorize)

    async def _newer_refresh_token(self, http: TokenHttp) -> bool:
        """After `invalid_grant`: has someone stored a newer refresh token (the operator, after a rotation)?

        The kubelet brings a changed Secret into the pod's volume within its sync period (about a
        minute). The mounted value is read again (`reread_wait`: seconds between tries, and how many
        more tries; by default once, at once): a run that refreshes within that minute of a rotation by
        the operator fails, and its retry, in a new pod, mounts the new token.
        """
        if self._reread is None:
            return False
        interval, tries = self._reread_wait
        for attempt in range(tries + 1):
            current = (self._reread() or "").strip()
            if current and current != self._refresh_token:
                self._refresh_token = current
                return True
            if attempt < tries:
                await http.sleep(interval)
        return False


class ServiceAccountGrant(TokenSource):
    """RFC 7523 JWT bearer grant with a Google service-account key (`serviceAccountJson`)."""

    def __init__(self, key_json: str, *, scopes: tuple[str, ...], reauthorize: str, clock: Clock = time.time):
        super().__init__(clock=clock)
        try:
            info = json.loads(key_json)
        except ValueError:
            raise ConfigurationError(
                "the Secret's serviceAccountJson is not JSON; paste the whole key file Google gave you"
            ) from None
        missing = [
            key
            for key in ("client_email", "private_key", "token_uri")
            if not isinstance(info, dict) or not isinstance(info.get(key), str)
        ]
        if missing:
            raise ConfigurationError(
                f"the Secret's serviceAccountJson lacks {', '.join(missing)}; it must be a service-account "
                "key file (type service_account)"
            )
        # joserfc (and the cryptography it loads) only where a service-account key is used: importing it
        # cost every worker process about a tenth of a second of start-up.
        from joserfc.errors import JoseError
        from joserfc.jwk import RSAKey

        try:
            self._key = RSAKey.import_key(info["private_key"])
        except (JoseError, ValueError, TypeError):
            raise ConfigurationError(
                "the Secret's serviceAccountJson private_key is not a PEM RSA key"
            ) from None
        self._email: str = info["client_email"]
        self._key_id = info.get("private_key_id")
        self.token_url: str = info["token_uri"]
        self._scopes = scopes
        self._reauthorize = reauthorize

    def assertion(self) -> str:
        """The signed JWT: iss = the service account, aud = its token_uri, one hour of validity."""
        now = int(self._clock())
        header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
        if isinstance(self._key_id, str):
            header["kid"] = self._key_id
        claims = {
            "iss": self._email,
            "scope": " ".join(self._scopes),
            "aud": self.token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
        }
        from joserfc import jwt

        return jwt.encode(header, claims, self._key)

    async def _obtain(self, http: TokenHttp) -> AccessToken:
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": self.assertion()}
        body = await http.post_form(self.token_url, form, reauthorize=self._reauthorize)
        return token_from_response(body, self._clock())


def token_from_response(body: Mapping[str, Any], now: float) -> AccessToken:
    """An `AccessToken` from a successful token response (RFC 6749 §5.1)."""
    value = body.get("access_token")
    if not isinstance(value, str) or not value:
        raise ProviderError("the authorization server's token response has no access_token")
    expires_in = body.get("expires_in")
    expires_at = (
        now + float(expires_in) if isinstance(expires_in, int | float | str) and _number(expires_in) else None
    )
    instance_url = body.get("instance_url")
    return AccessToken(value, expires_at, instance_url if isinstance(instance_url, str) else None)


def _number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


@dataclass
class TokenHttp:
    """Sends token requests: a few tries for transport trouble and 5xx, errors mapped to `SyncError`s."""

    client: httpx.AsyncClient
    name: str
    sleep: Callable[[float], Any] = asyncio.sleep

    async def post_form(self, url: str, form: Mapping[str, str], *, reauthorize: str) -> dict[str, Any]:
        where = f"the {self.name} token endpoint {httpx.URL(url).copy_with(query=None)}"
        for attempt in range(1, TOKEN_REQUEST_ATTEMPTS + 1):
            try:
                response = await self.client.post(
                    url, data=dict(form), headers={"Accept": "application/json"}
                )
            except httpx.TransportError as error:
                if attempt == TOKEN_REQUEST_ATTEMPTS:
                    raise EndpointUnreachable(
                        f"no answer from {where} after {attempt} attempts ({type(error).__name__})"
                    ) from None
                await self.sleep(0.5 * attempt)
                continue
            if response.status_code >= 500 and attempt < TOKEN_REQUEST_ATTEMPTS:
                await self.sleep(0.5 * attempt)
                continue
            return _token_answer(response, where, reauthorize)
        raise AssertionError("unreachable")  # pragma: no cover


def _token_answer(response: httpx.Response, where: str, reauthorize: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success and isinstance(body, dict):
        return body
    error = body.get("error") if isinstance(body, dict) else None
    description = body.get("error_description") if isinstance(body, dict) else None
    detail = f"{error}: {description}" if description else str(error or f"HTTP {response.status_code}")
    detail = " ".join(detail.split())[:200]
    if error == "invalid_grant":
        raise ReauthorizationNeeded(
            f"{where} refused the grant ({detail}): the refresh token or key was revoked or has expired. "
            f"Re-authorize: {reauthorize}"
        )
    if error in ("invalid_client", "unauthorized_client"):
        raise AuthenticationFailed(
            f"{where} refused the client ({detail}); check clientId and clientSecret in the Secret"
        )
    if response.status_code in (401, 403):
        raise AuthenticationFailed(f"{where} refused the credentials ({detail})")
    raise ProviderError(f"{where} answered HTTP {response.status_code} ({detail})")


def _key_reader(credentials: Credentials, key: str) -> Callable[[], str | None] | None:
    reread = credentials.reread
    if reread is None:
        return None

    def read() -> str | None:
        return reread(key)

    return read


def token_source(
    credentials: Credentials,
    *,
    default_token_url: str,
    scopes: tuple[str, ...] = (),
    reauthorize: str,
    on_rotation: Callable[[str, str], None] | None = None,
    clock: Clock = time.time,
) -> TokenSource:
    """The token source for an `oauth2` or `serviceAccount` Authorization's credentials."""
    if credentials.method == AuthMethod.SERVICE_ACCOUNT:
        return ServiceAccountGrant(
            credentials.get("serviceAccountJson") or "", scopes=scopes, reauthorize=reauthorize, clock=clock
        )
    if credentials.method != AuthMethod.OAUTH2:
        raise ConfigurationError(f"method {credentials.method.value!r} carries no OAuth2 token")
    refresh_token = (credentials.get("refreshToken") or "").strip()
    access_token = (credentials.get("accessToken") or "").strip()
    if refresh_token:
        client_id = (credentials.get("clientId") or "").strip()
        client_secret = (credentials.get("clientSecret") or "").strip()
        missing = [
            name for name, value in (("clientId", client_id), ("clientSecret", client_secret)) if not value
        ]
        if missing:
            raise ConfigurationError(
                f"the Secret has a refreshToken but lacks {' and '.join(missing)}, needed to refresh it"
            )
        return RefreshTokenGrant(
            token_url=(credentials.get("tokenUrl") or "").strip() or default_token_url,
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
            access_token=access_token or None,
            reauthorize=reauthorize,
            on_rotation=on_rotation,
            reread=_key_reader(credentials, "refreshToken"),
            clock=clock,
        )
    if not access_token:
        raise ConfigurationError(
            "the Secret has neither accessToken nor refreshToken (with clientId and clientSecret)"
        )
    return StaticToken(access_token)
