"""The smallest JSON merge patch (RFC 7386) turning one document into another.

The operator keeps the status it last wrote and sends only what changed: small patches are cheap for
the API server and for every watcher, and a `null` removes fields that no longer apply (`currentRun`
once a run ends), which a plain "send the whole status" patch would leave behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merge_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns `before` into `after` (lists are replaced whole, as RFC 7386 does)."""
    patch: dict[str, Any] = {}
    for key in before.keys() - after.keys():
        patch[key] = None
    for key, value in after.items():
        old = before.get(key)
        if key in before and old == value:
            continue
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            nested = merge_patch(old, value)
            if nested:
                patch[key] = nested
        else:
            patch[key] = value
    return patch
