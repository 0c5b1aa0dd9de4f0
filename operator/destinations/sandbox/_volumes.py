"""The sandbox's stand-in for a container filesystem: per-pod directories and path rewriting.

A pod's processes run on the host, where they cannot (and must not) write to `/var/run/...` or
`/dev/termination-log`. So each pod gets a root directory, `<workdir>/pods/<namespace>/<name>-<uid>/fs`,
and every absolute path the pod spec declares - each volumeMount's `mountPath` and each container's
`terminationMessagePath` (default `/dev/termination-log`) - is mapped to the same path under that root:
`/var/run/secrets/destinations` becomes `<root>/fs/var/run/secrets/destinations`.

Those absolute path prefixes are then rewritten wherever they appear in the container's `command`,
`args` and `env` values (as whole path prefixes: `--credentials=/var/run/secrets/x/apiKey` is rewritten,
`/opt/var/run/secrets/x` is not). A program that should find its files must therefore receive their
paths through its command line or environment, which is good practice for containers anyway. The
environment variable `SANDBOX_POD_ROOT` names the root for anything else.

Secret and ConfigMap volumes are materialised read-only: files get the requested mode without write
bits (0444 by default, 0400 stays 0400) and the volume directory is made read-only (0555).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Json = dict[str, Any]


class MissingSource(Exception):
    """A volume's Secret or ConfigMap does not exist (yet): the pod waits in ContainerCreating."""

    def __init__(self, volume: str, kind: str, name: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume}" : {kind} "{name}" not found')
        self.volume = volume


@dataclass
class PodFilesystem:
    root: Path
    #: absolute in-container path → host path, longest first (so nested mounts win).
    mapping: list[tuple[str, Path]] = field(default_factory=list)

    @property
    def fs(self) -> Path:
        return self.root / "fs"

    def host_path(self, container_path: str) -> Path:
        return self.fs / container_path.lstrip("/")

    def add_mapping(self, container_path: str) -> Path:
        """Map a mount path, and its parent directories below the top level, into the pod's root.

        Parents matter because programs are often given a directory that holds several mounts
        (`--data-dir /var/run/app/data` with volumes at `.../data/source` and `.../data/sink`); in a
        real container that directory exists too. Top-level directories (`/var`, `/tmp`) are left
        alone so that unrelated host paths in arguments keep working.
        """
        host = self.host_path(container_path)
        path = container_path.rstrip("/")
        while path.count("/") >= 2:
            if all(existing != path for existing, _ in self.mapping):
                self.mapping.append((path, self.host_path(path)))
            path = path.rsplit("/", 1)[0]
        self.mapping.sort(key=lambda item: len(item[0]), reverse=True)
        return host

    def rewrite(self, text: str) -> str:
        """Replace the mapped absolute path prefixes in one command-line argument or env value."""
        if not self.mapping:
            return text
        # One pass over all prefixes (longest first): a host path that itself starts with a mapped
        # prefix (a workdir under /tmp, with an emptyDir at /tmp) must not be rewritten a second time.
        hosts = {container_path.rstrip("/"): str(host) for container_path, host in self.mapping}
        alternatives = "|".join(re.escape(path) for path in sorted(hosts, key=len, reverse=True))
        pattern = r"(?<![\w./-])(" + alternatives + r")(?=$|[/\s:;,=\"'])"
        return re.sub(pattern, lambda match: hosts[match.group(1)], text)

    def remove(self) -> None:
        if not self.root.exists():
            return
        for directory, _, _ in os.walk(self.root):
            os.chmod(directory, stat.S_IRWXU)
        shutil.rmtree(self.root, ignore_errors=True)


def _decode(data: Json | None, binary: bool) -> dict[str, bytes]:
    decoded = {}
    for key, value in (data or {}).items():
        decoded[key] = base64.b64decode(value) if binary else str(value).encode()
    return decoded


def _write_files(target: Path, contents: dict[str, bytes], source: Json) -> None:
    target.mkdir(parents=True, exist_ok=True)
    default_mode = int(source.get("defaultMode", 0o644))
    items = source.get("items")
    selected: list[tuple[str, str, int]] = (
        [
            (item["key"], item.get("path", item["key"]), int(item.get("mode", default_mode)))
            for item in items
            if item.get("key") in contents
        ]
        if items
        else [(key, key, default_mode) for key in contents]
    )
    for key, relative, mode in selected:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(contents[key])
        os.chmod(path, mode & 0o555)


def seal(directory: Path) -> None:
    """Make a materialised volume read-only, directories included."""
    for current, directories, _ in os.walk(directory):
        for name in directories:
            os.chmod(Path(current) / name, 0o555)
    os.chmod(directory, 0o555)


def materialise_volume(
    filesystem: PodFilesystem,
    volume: Json,
    mount_paths: list[str],
    lookup: Any,
) -> None:
    """Write one volume's files at each of its mount paths; `lookup(plural, name)` finds the source."""
    contents: dict[str, bytes] | None = None
    source: Json = {}
    if "secret" in volume:
        source = volume["secret"]
        secret = lookup("secrets", source.get("secretName", ""))
        if secret is None:
            if source.get("optional"):
                contents = {}
            else:
                raise MissingSource(volume["name"], "secret", source.get("secretName", ""))
        else:
            contents = _decode(secret.get("data"), binary=True)
    elif "configMap" in volume:
        source = volume["configMap"]
        config_map = lookup("configmaps", source.get("name", ""))
        if config_map is None:
            if source.get("optional"):
                contents = {}
            else:
                raise MissingSource(volume["name"], "configmap", source.get("name", ""))
        else:
            contents = {
                **_decode(config_map.get("data"), binary=False),
                **_decode(config_map.get("binaryData"), binary=True),
            }
    elif "projected" in volume:
        contents = {}
        for projection in volume["projected"].get("sources") or []:
            for kind, plural, name_field in (
                ("secret", "secrets", "name"),
                ("configMap", "configmaps", "name"),
            ):
                if kind in projection:
                    found = lookup(plural, projection[kind].get(name_field, ""))
                    if found is None and not projection[kind].get("optional"):
                        raise MissingSource(
                            volume["name"], kind.lower(), projection[kind].get(name_field, "")
                        )
                    data = _decode((found or {}).get("data"), binary=(kind == "secret"))
                    wanted = projection[kind].get("items")
                    if wanted:
                        data = {
                            item.get("path", item["key"]): data[item["key"]]
                            for item in wanted
                            if item["key"] in data
                        }
                    contents.update(data)
        source = {"defaultMode": volume["projected"].get("defaultMode", 0o644)}
    for mount_path in mount_paths:
        target = filesystem.add_mapping(mount_path)
        if contents is None:  # emptyDir and anything else: a writable directory
            target.mkdir(parents=True, exist_ok=True)
            continue
        if target.exists():
            continue
        _write_files(target, contents, source)
        seal(target)
