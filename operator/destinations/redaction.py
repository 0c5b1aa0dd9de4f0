"""Masking credentials in text a person may read: status messages, Events, pod logs, termination messages.

Secrets reach a run in more forms than the Secret values the worker mounts: a password in a URL's
user-info (`https://user:s3cret@host/path`), a token in its query string (`?api_key=…`), a header
value in the job's config, a connection string (`postgresql://user:pw@host/db`,
`host=db password=pw`). Error messages echo such text (an unreachable URL, a refused connection
string), so every message shown is passed through two nets:

- `redact_credentials(text)`: a pattern net that needs no knowledge of the values: the password of
  every URL's user-info and every query-string value become `***`, as do `password=` pairs of
  keyword connection strings and the credentials after `Bearer`/`Basic`;
- `credential_fragments(value)`: the parts of a known value (a Secret's connection string, a URL or a
  header in the spec) that are secret on their own, so the worker's scrubber also masks them where
  they appear without their surroundings (a driver quoting just the password, say).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

REDACTED = "***"

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>`]+")
_USER_INFO = re.compile(r"^(?P<scheme>[^:]+://)(?P<user>[^:@/?#]*)(?::(?P<password>[^@/?#]*))?@")
_QUERY_VALUE = re.compile(r"(?P<name>[?&;][^=&#;\s]*=)(?P<value>[^&#;\s]*)")
_KEYWORD_PASSWORD = re.compile(
    r"(?P<name>\b(?:password|passwd|pwd|sslpassword|secret|token|api[_-]?key)\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s,;&'\"]+)",
    re.IGNORECASE,
)
#: A credential after an authorization scheme: 8+ token characters with a digit (not a word like "expired").
_AUTHORIZATION_SCHEME = re.compile(
    r"(?P<scheme>\b(?:Bearer|Basic|Token|OAuth)\s+)(?P<value>(?=[A-Za-z0-9._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{8,})"
)


def redact_credentials(text: str) -> str:
    """`text` with URL passwords, query values, keyword passwords and authorization credentials masked.

    `https://jane:s3cret@api.example/x?token=abc&page=2` → `https://jane:***@api.example/x?token=***&page=***`;
    `host=db password='p w' user=u` → `host=db password=*** user=u`; `Bearer eyJ…` → `Bearer ***`.
    Query values are all masked: which parameter names carry tokens is not knowable.
    """
    text = _URL.sub(lambda match: _redact_url(match.group(0)), text)
    text = _KEYWORD_PASSWORD.sub(lambda match: match.group("name") + REDACTED, text)
    return _AUTHORIZATION_SCHEME.sub(lambda match: match.group("scheme") + REDACTED, text)


def _redact_url(url: str) -> str:
    def user_info(match: re.Match[str]) -> str:
        if match.group("password") is None:
            return match.group(0)  # `user@host`: a name, not a secret
        return f"{match.group('scheme')}{match.group('user')}:{REDACTED}@"

    url = _USER_INFO.sub(user_info, url, count=1)
    return _QUERY_VALUE.sub(lambda match: match.group("name") + REDACTED, url)


#: Shorter values are not masked: they would mangle ordinary words (and are poor secrets anyway).
MIN_SECRET_LENGTH = 4


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with each known secret value, and each secret part of one (`credential_fragments`), masked,
    then `redact_credentials`: for messages built where the values are known (a credential check)."""
    candidates = {
        candidate
        for secret in secrets
        for candidate in (secret, secret.strip(), *credential_fragments(secret))
        if len(candidate) >= MIN_SECRET_LENGTH
    }
    for candidate in sorted(candidates, key=len, reverse=True):
        text = text.replace(candidate, REDACTED)
    return redact_credentials(text)


def credential_fragments(value: str) -> list[str]:
    """The secret parts of a URL or connection string: its password and query values.

    `postgresql://app:pw@db/x?sslpassword=k` → `["pw", "k"]`; `host=db password=pw` → `["pw"]`.
    Anything else yields nothing (the value as a whole is the scrubber's business).
    """
    fragments: list[str] = []
    text = value.strip()
    if "://" in text:
        try:
            parts = urlsplit(text)
            password = parts.password
            query = parse_qsl(parts.query, keep_blank_values=False)
        except ValueError:
            password, query = None, []
        if password:
            fragments.append(password)
        fragments.extend(item for _, item in query if item)
    for match in _KEYWORD_PASSWORD.finditer(text):
        fragments.append(match.group("value").strip("'\""))
    return list(dict.fromkeys(fragments))


def spec_credentials(spec: Mapping[str, Any]) -> list[str]:
    """Secret parts written in a job's spec: URL passwords and query values anywhere in it, and the
    values of every `headers` map (request headers often carry tokens)."""
    return list(_spec_credentials(spec))


def _spec_credentials(value: Any, key: str = "") -> Iterator[str]:
    if isinstance(value, Mapping):
        for name, item in value.items():
            if name == "headers" and isinstance(item, Mapping):
                yield from (str(header) for header in item.values() if header is not None)
            else:
                yield from _spec_credentials(item, str(name))
    elif isinstance(value, list):
        for item in value:
            yield from _spec_credentials(item, key)
    elif isinstance(value, str) and ("://" in value or "=" in value):
        yield from credential_fragments(value)
