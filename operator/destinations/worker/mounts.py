"""What the sync pod mounts: the Authorization's credentials, endpoint Secrets and data volumes.

Secret volumes hold one file per key, next to Kubernetes' own `..data` links and timestamped
directories, which start with a dot and are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from destinations.api.models import AuthMethod
from destinations.providers.base import Credentials
from destinations.providers.errors import ConfigurationError


@dataclass(frozen=True)
class Mounts:
    credentials_dir: Path
    secrets_dir: Path
    data_dir: Path

    def credentials(self, method: AuthMethod, endpoint: str | None) -> Credentials:
        """The Authorization's Secret keys (an absent directory means no Secret, as for method none)."""
        return Credentials(
            method=method,
            values=read_secret_dir(self.credentials_dir),
            endpoint=endpoint,
            reread=lambda key: read_secret_dir(self.credentials_dir).get(key),
        )

    def secret(self, name: str) -> dict[str, str]:
        """Every key of an endpoint Secret."""
        directory = self.secrets_dir / name
        if not directory.is_dir():
            raise ConfigurationError(f"Secret {name!r} is not mounted at {directory}; does it exist?")
        return read_secret_dir(directory)

    def secret_key(self, name: str, key: str) -> str:
        values = self.secret(name)
        if key not in values:
            raise ConfigurationError(
                f"Secret {name!r} has no key {key!r} (it has: {', '.join(sorted(values)) or 'none'})"
            )
        return values[key]

    def data_file(self, role: str, relative: str) -> Path:
        """A path inside the `source` or `sink` volume; refuses paths that climb out of it."""
        root = (self.data_dir / role).resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise ConfigurationError(f"{role}.file.path {relative!r} leaves the volume; use a path inside it")
        return path


def read_secret_dir(directory: Path) -> dict[str, str]:
    if not directory.is_dir():
        return {}
    values: dict[str, str] = {}
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        # A trailing newline is an artefact of `kubectl create secret --from-file` on a text file.
        values[entry.name] = entry.read_text(encoding="utf-8").rstrip("\r\n")
    return values


__all__ = ["AuthMethod", "Mounts", "read_secret_dir"]
