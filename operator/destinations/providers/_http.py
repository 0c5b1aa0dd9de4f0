"""The HTTP client every provider's sync code goes through: timeouts, retries with jitter, Retry-After.

Providers speak to rate-limited public APIs from a pod that may run for hours, so transient trouble
(a refused connection, a timeout, a 5xx, a short 429) is retried inside the run with jittered
exponential backoff, and a `Retry-After` (seconds or an HTTP date) is honoured. When the provider asks
for a wait longer than a short one, blocking the pod would only hold resources: the run ends
`rate_limited` (`RateLimited`) and the operator sleeps the job until the provider's time instead.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from destinations.providers._oauth import AccessToken, TokenHttp, TokenSource
from destinations.providers.errors import (
    AuthenticationFailed,
    EndpointUnreachable,
    ProviderError,
    RateLimited,
)

Sleep = Callable[[float], Awaitable[None]]
ErrorDescriber = Callable[[httpx.Response], str]
ResponseInspector = Callable[[httpx.Response], None]
"""Sees every answer first and may raise (a provider's throttling code in a 403, a quota header)."""
RetryDelay = Callable[[httpx.Response], float | None]
"""A provider's wait for a 429 or 503 when it says so in the body instead of `Retry-After`."""

#: Statuses retried inside the run: the server says it is momentarily unable, not that the request is wrong.
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504, 507, 520, 521, 522, 523, 524})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a run tries before giving up on one request."""

    attempts: int = 5
    """Tries per request, the first included."""
    initial_delay: float = 0.5
    """Backoff before the second try, doubled for each further one, with jitter."""
    max_delay: float = 30.0
    """The longest backoff between two tries."""
    max_short_wait: float = 60.0
    """A Retry-After up to this long is waited out inside the run; a longer one ends it `rate_limited`."""
    default_rate_limit_wait: float = 60.0
    """When 429s keep coming without a Retry-After: how long the job should sleep."""

    def backoff(self, attempt: int) -> float:
        """Equal jitter: half the exponential delay, plus a random share of the other half."""
        delay: float = min(self.max_delay, self.initial_delay * 2.0 ** (attempt - 1))
        return delay / 2 + random.uniform(0, delay / 2)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date, RFC 9110 §10.2.3)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
        return max(0.0, seconds)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # An HTTP date is a bound with whole seconds: wait until it has passed, never a fraction short.
    return float(max(0, math.ceil(moment.timestamp() - (time.time() if now is None else now))))


def default_error_description(response: httpx.Response) -> str:
    """A short, single-line excerpt of an error body for messages (never the request, which holds secrets)."""
    text = " ".join(response.text.split())
    return text[:200] + ("…" if len(text) > 200 else "")


def redact_url(url: httpx.URL | str) -> str:
    """The address without its query string, which may carry tokens."""
    parsed = httpx.URL(str(url))
    return str(parsed.copy_with(query=None, fragment=None))


class ProviderHttpClient:
    """An httpx.AsyncClient that retries transient failures and maps the rest to `SyncError`s.

    401 and 403 raise `AuthenticationFailed`; other 4xx answers are returned for the provider to
    interpret (a per-record rejection, a throttling code in the body, a missing audience).

    With a `TokenSource`, every attempt carries its current bearer token; a 401 to a token that can
    be refreshed invalidates it and the request is sent once more with a new one (not counted as an
    attempt), so an access token that expires mid-run never fails the run.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        name: str,
        policy: RetryPolicy,
        sleep: Sleep,
        describe_error: ErrorDescriber = default_error_description,
        token: TokenSource | None = None,
        inspect: ResponseInspector | None = None,
        retry_delay: RetryDelay | None = None,
    ) -> None:
        self._client = client
        self._name = name
        self._policy = policy
        self._sleep = sleep
        self._describe_error = describe_error
        self._token = token
        self._token_http = TokenHttp(client, name, sleep)
        self._inspect = inspect
        self._retry_delay = retry_delay

    async def access_token(self) -> AccessToken:
        """The current bearer token (obtained or refreshed if needed); for its `instance_url`."""
        if self._token is None:
            raise AssertionError("this client was made without a token source")
        return await self._token.token(self._token_http)

    async def __aenter__(self) -> ProviderHttpClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        sign: Callable[[bytes], Mapping[str, str]] | None = None,
    ) -> httpx.Response:
        """Send one request, retrying what is transient; `sign(body)` adds headers computed per attempt."""
        policy = self._policy
        attempt = 0
        refreshed_after_401 = False
        while attempt < policy.attempts:
            attempt += 1
            request = self._client.build_request(
                method, url, json=json, content=content, params=params, headers=headers
            )
            if sign is not None:
                request.headers.update(sign(request.content))
            bearer = None
            if self._token is not None:
                bearer = await self._token.token(self._token_http)
                request.headers["Authorization"] = f"Bearer {bearer.value}"
            try:
                response = await self._client.send(request)
            except httpx.TransportError as error:
                if attempt == policy.attempts:
                    raise EndpointUnreachable(
                        f"{self._name}: no answer from {_where(request)} after {attempt} attempts "
                        f"({_describe_transport_error(error)}); check the address and that the cluster can "
                        "reach it"
                    ) from None
                await self._sleep(policy.backoff(attempt))
                continue
            status = response.status_code
            if self._inspect is not None:
                self._inspect(response)
            if status == 401 and bearer is not None and self._token is not None and not refreshed_after_401:
                refreshed_after_401 = True
                if await self._token.invalidate(bearer):
                    attempt -= 1  # a refresh is not a retry
                    continue
            if status in (401, 403):
                raise AuthenticationFailed(
                    f"{self._name} refused the credentials (HTTP {status} from {_where(request)}: "
                    f"{self._describe_error(response)}); check the Authorization's Secret"
                )
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None and self._retry_delay is not None and status in (429, 503):
                retry_after = self._retry_delay(response)
            if status == 429:
                if retry_after is not None and retry_after > policy.max_short_wait:
                    raise RateLimited(
                        f"{self._name} rate limit reached ({_where(request)}); it allows the next call in "
                        f"{retry_after:.0f}s",
                        retry_after,
                    )
                if attempt == policy.attempts:
                    wait = retry_after if retry_after is not None else policy.default_rate_limit_wait
                    raise RateLimited(
                        f"{self._name} kept answering 429 Too Many Requests ({_where(request)}) "
                        f"after {attempt} attempts",
                        max(wait, policy.initial_delay),
                    )
                await self._sleep(retry_after if retry_after is not None else policy.backoff(attempt))
                continue
            if status in TRANSIENT_STATUSES:
                if attempt == policy.attempts:
                    raise ProviderError(
                        f"{self._name} answered HTTP {status} from {_where(request)} {attempt} times in a "
                        f"row: {self._describe_error(response)}"
                    )
                if retry_after is not None and retry_after <= policy.max_short_wait:
                    await self._sleep(retry_after)
                else:
                    await self._sleep(policy.backoff(attempt))
                continue
            return response
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


@dataclass(frozen=True)
class HttpClientFactory:
    """Makes the run's HTTP clients; tests swap the sleep, the policy or the transport."""

    policy: RetryPolicy = RetryPolicy()
    sleep: Sleep = asyncio.sleep
    transport: httpx.AsyncBaseTransport | None = None
    user_agent: str = "destinations-operator-worker"
    default_headers: Mapping[str, str] = field(default_factory=dict)

    def __call__(
        self,
        *,
        name: str,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        timeout: float = 30.0,
        max_connections: int = 10,
        describe_error: ErrorDescriber = default_error_description,
        token: TokenSource | None = None,
        inspect: ResponseInspector | None = None,
        retry_delay: RetryDelay | None = None,
    ) -> ProviderHttpClient:
        all_headers = {"User-Agent": self.user_agent, **self.default_headers, **(headers or {})}
        client = httpx.AsyncClient(
            base_url=base_url,
            headers=all_headers,
            auth=auth,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=self.transport,
            follow_redirects=False,
        )
        return ProviderHttpClient(
            client,
            name=name,
            policy=self.policy,
            sleep=self.sleep,
            describe_error=describe_error,
            token=token,
            inspect=inspect,
            retry_delay=retry_delay,
        )


def probe(
    method: str,
    url: str,
    *,
    name: str,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | None = None,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Response:
    """One synchronous request for credential checks, which the operator runs outside the sync loop.

    No retries: the operator re-checks on its own schedule. Raises `AuthenticationFailed` on 401/403 and
    `EndpointUnreachable` when nothing answers; every other answer is returned.
    """
    where = f"{method} {redact_url(url)}"
    try:
        with httpx.Client(timeout=timeout, auth=auth, transport=transport, follow_redirects=False) as client:
            response = client.request(method, url, headers=headers)
    except httpx.TransportError as error:
        raise EndpointUnreachable(
            f"{name}: no answer from {where} ({_describe_transport_error(error)})"
        ) from None
    if response.status_code in (401, 403):
        raise AuthenticationFailed(
            f"{name} refused the credentials (HTTP {response.status_code} from {where}: "
            f"{default_error_description(response)})"
        )
    return response


def _where(request: httpx.Request) -> str:
    """`METHOD address` for messages, without the query string; built only when a message needs it."""
    return f"{request.method} {redact_url(request.url)}"


def _describe_transport_error(error: httpx.TransportError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    detail = str(error) or type(error).__name__
    return f"{type(error).__name__}: {detail}"[:200]
