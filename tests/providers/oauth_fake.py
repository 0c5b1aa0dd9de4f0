"""A local OAuth2 authorization server, written from the RFCs and the providers' token docs.

- Refresh grant (`grant_type=refresh_token`, client id and secret in the form), errors
  `invalid_grant` / `invalid_client` with HTTP 400: https://www.rfc-editor.org/rfc/rfc6749#section-6 and
  https://www.rfc-editor.org/rfc/rfc6749#section-5.2
- Google: `expires_in` in seconds, `invalid_grant` "Token has been expired or revoked.":
  https://developers.google.com/identity/protocols/oauth2/web-server#offline
- Google service accounts: JWT bearer grant, RS256 assertion with iss, scope, aud = token_uri, iat, exp:
  https://developers.google.com/identity/protocols/oauth2/service-account#httprest
- Salesforce: no `expires_in`, an `instance_url`, and a new `refresh_token` on every refresh when
  rotation is on: https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.providers.servers import Request, Response

CLIENT_ID = "client-123.apps.example"
CLIENT_SECRET = "client-secret-xyz"
REFRESH_TOKEN = "1//refresh-token-abc"


@dataclass
class TokenEndpoint:
    """Issues `access-N` tokens; `api_accepts(token)` tells the API fakes whether one is still good."""

    path: str = "/token"
    expires_in: int | None = 3599
    refresh_tokens: set[str] = field(default_factory=lambda: {REFRESH_TOKEN})
    rotate: bool = False
    """Salesforce-style rotation: each refresh answers a new refresh token and revokes the used one."""
    instance_url: str | None = None
    service_account_key: RSAKey | None = None
    service_account_email: str = "sync@project.iam.gserviceaccount.com"
    scope: str | None = None
    token_url: str = ""
    """The absolute URL of this endpoint (the service-account assertion's `aud`)."""
    uses_per_token: int | None = None
    """The API refuses a token after this many calls: an access token expiring mid-run."""
    issued: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _uses: dict[str, int] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handles(self, request: Request) -> bool:
        return request.method == "POST" and request.path == self.path

    def __call__(self, request: Request) -> Response:
        form = {key: values[-1] for key, values in parse_qs(request.body.decode()).items()}
        grant = form.get("grant_type")
        if grant == "refresh_token":
            if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
                return self._error("invalid_client", "The OAuth client was not found.", 401)
            with self._lock:
                if form.get("refresh_token") not in self.refresh_tokens:
                    self.refused.append("refresh_token")
                    return self._error("invalid_grant", "Token has been expired or revoked.")
                body = self._issue()
                if self.rotate:
                    self.refresh_tokens.discard(form["refresh_token"])
                    rotated = f"rotated-{len(self.issued)}"
                    self.refresh_tokens.add(rotated)
                    body["refresh_token"] = rotated
            return Response(200, body)
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            if self.service_account_key is None:
                return self._error("unsupported_grant_type", "no service accounts here")
            try:
                claims = jwt.decode(form.get("assertion", ""), self.service_account_key).claims
            except Exception:
                return self._error("invalid_grant", "Invalid JWT Signature.")
            if claims.get("iss") != self.service_account_email or claims.get("aud") != self.token_url:
                return self._error("invalid_grant", "Invalid JWT: iss or aud")
            if self.scope and self.scope not in str(claims.get("scope", "")).split():
                return self._error("invalid_scope", "scope missing")
            if not isinstance(claims.get("exp"), int) or claims["exp"] - claims["iat"] > 3600:
                return self._error("invalid_grant", "Invalid JWT: Token must be a short-lived token")
            with self._lock:
                return Response(200, self._issue())
        return self._error("unsupported_grant_type", f"grant {grant!r}")

    def _issue(self) -> dict[str, object]:
        token = f"access-{next(self._counter)}"
        self.issued.append(token)
        self._uses[token] = 0
        body: dict[str, object] = {"access_token": token, "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        if self.instance_url is not None:
            body["instance_url"] = self.instance_url
        return body

    def api_accepts(self, authorization: str | None) -> bool:
        """Whether the API takes this `Authorization` header (and counts one use of the token)."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        token = authorization.removeprefix("Bearer ")
        with self._lock:
            if token not in self._uses:
                return False
            self._uses[token] += 1
            return self.uses_per_token is None or self._uses[token] <= self.uses_per_token

    def accept_static(self, token: str) -> None:
        """Make a bare access token (one not issued here) valid."""
        self._uses[token] = 0

    @staticmethod
    def _error(code: str, description: str, status: int = 400) -> Response:
        return Response(status, {"error": code, "error_description": description})


def service_account_json(
    key: RSAKey, token_url: str, email: str = "sync@project.iam.gserviceaccount.com"
) -> str:
    """A service-account key file in the format Google's console downloads."""
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "project",
            "private_key_id": "key-1",
            "private_key": key.as_pem(private=True).decode(),
            "client_email": email,
            "client_id": "1234567890",
            "token_uri": token_url,
        }
    )
