"""Rotated OAuth2 refresh tokens, carried from a sync pod back into the Authorization's Secret.

A provider with refresh token rotation (Salesforce, when the connected app enables it:
https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm) answers
each refresh with a new refresh token and invalidates the one it was given. Whoever refreshes must
store the new one, or the next refresh fails with `invalid_grant` and a person has to re-authorize.

The operator is the only writer of the Secret. It learns new values two ways:

- its own credential check rotated the token: it patches the Secret right away;
- a sync pod rotated it: the worker puts the values in its termination report **sealed**
  (`RunReport.rotated_credentials`), and the operator opens them and patches the Secret when it reads
  the report. Pod status is readable by more people than Secrets are, so the seal is a Fernet token
  (AES-128-CBC + HMAC-SHA256, from `cryptography`) under a key derived with HKDF-SHA256 from the
  Secret's own `clientSecret` and bound to the run (`namespace/name#run`): only a reader of the
  Secret can open it, and a report cannot be replayed for another run.

The sealed payload names the refresh token it replaces (by SHA-256). The operator patches only when
the Secret still holds that token, so a person who re-authorized meanwhile is never overwritten, and
with the Secret's resourceVersion as a precondition, so two writers cannot interleave.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

# `cryptography` is imported when a token is sealed or unsealed: every sync pod imports this module,
# few ever rotate a token, and the import cost each worker process a tenth of its start-up.


#: Keys a run may hand back; anything else in a sealed payload is ignored.
ROTATABLE_KEYS = frozenset({"refreshToken"})
_SALT = b"destinations.dev/rotated-credentials/v1"


class SealError(ValueError):
    """A sealed payload that cannot be opened (another key, another run, tampered with)."""


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _fernet(client_secret: str, run_id: str) -> Fernet:
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    if not client_secret:
        raise SealError("the Secret has no clientSecret to derive the sealing key from")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=run_id.encode()).derive(
        client_secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def seal(values: Mapping[str, str], *, replaces: str, client_secret: str, run_id: str) -> str:
    """The rotated `values` (which replace refresh token `replaces`), sealed for the operator."""
    payload = {"values": dict(values), "replaces": fingerprint(replaces)}
    return _fernet(client_secret, run_id).encrypt(json.dumps(payload).encode()).decode()


def unseal(sealed: str, *, client_secret: str, run_id: str) -> tuple[dict[str, str], str]:
    """(values, fingerprint of the replaced refresh token); raises `SealError`."""
    from cryptography.fernet import InvalidToken

    try:
        payload = json.loads(_fernet(client_secret, run_id).decrypt(sealed.encode()))
    except (InvalidToken, ValueError):
        raise SealError("the sealed credentials do not open with this Secret's clientSecret") from None
    values = payload.get("values") if isinstance(payload, dict) else None
    replaces = payload.get("replaces") if isinstance(payload, dict) else None
    if not isinstance(values, dict) or not isinstance(replaces, str):
        raise SealError("the sealed credentials are not a rotation payload")
    return {k: v for k, v in values.items() if k in ROTATABLE_KEYS and isinstance(v, str) and v}, replaces


def secret_data_patch(
    current: Mapping[str, str], rotated: Mapping[str, str], *, replaces: str | None
) -> dict[str, str] | None:
    """The Secret `data` to merge (base64 values), or None when nothing should be written.

    `replaces` (a fingerprint) must match the Secret's current refreshToken when given: a Secret that
    a person re-authorized since the run started is left alone.
    """
    if replaces is not None and fingerprint(current.get("refreshToken", "")) != replaces:
        return None
    changed = {
        key: value
        for key, value in rotated.items()
        if key in ROTATABLE_KEYS and value and current.get(key) != value
    }
    if not changed:
        return None
    return {key: base64.b64encode(value.encode()).decode() for key, value in changed.items()}
