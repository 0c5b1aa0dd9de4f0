"""A bare kopf operator for the sandbox conformance test: it only reports what it sees.

Every handler writes a marker file into $MARKERS so the test can observe kopf from outside.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kopf

MARKERS = Path(os.environ["MARKERS"])


def _mark(name: str) -> None:
    (MARKERS / name).write_text("ok")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = 0
    settings.watching.server_timeout = 10
    settings.persistence.finalizer = "sandbox.test/kopf-finalizer"


@kopf.on.create("sandbox.test", "v1", "widgets")
def created(name: str, patch: kopf.Patch, **_: Any) -> dict[str, str]:
    patch.status["message"] = f"created {name}"
    _mark(f"created-{name}")
    return {"seen": "yes"}


@kopf.on.update("sandbox.test", "v1", "widgets", field="spec.size")
def resized(name: str, new: Any, patch: kopf.Patch, **_: Any) -> None:
    patch.status["message"] = f"resized to {new}"
    _mark(f"updated-{name}-{new}")


@kopf.on.delete("sandbox.test", "v1", "widgets")
def deleted(name: str, **_: Any) -> None:
    _mark(f"deleted-{name}")
