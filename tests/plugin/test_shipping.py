"""What ships with the plugin: the krew manifest and archive, the shim, the k9s plugins and the docs."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

from destinations import __version__
from destinations.plugin.main import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "plugins" / "destinations.yaml"
SHIM = ROOT / "plugins" / "kubectl-destinations"
#: The keys k9s accepts for a plugin, and those it requires (k9s's JSON schema,
#: https://github.com/derailed/k9s/blob/master/internal/config/json/schemas/plugins.json).
K9S_KEYS = {
    "shortCut", "override", "description", "confirm", "dangerous", "scopes", "command", "background",
    "overwriteOutput", "args", "inputs",
}  # fmt: skip
K9S_REQUIRED = {"shortCut", "description", "scopes", "command"}


def test_the_krew_manifest_names_the_archive_the_build_script_makes(tmp_path: Path) -> None:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin"
    assert manifest["metadata"]["name"] == "destinations"
    spec = manifest["spec"]
    assert spec["version"] == f"v{__version__}"
    (platform,) = spec["platforms"]
    assert platform["uri"].endswith(f"/v{__version__}/kubectl-destinations-v{__version__}.tar.gz")
    built = subprocess.run(
        [sys.executable, str(ROOT / "plugins" / "build_krew_archive.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    archive = tmp_path / f"kubectl-destinations-v{__version__}.tar.gz"
    assert built.stdout.split()[0] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert platform["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest(), (
        "plugins/destinations.yaml: update sha256 to what `python plugins/build_krew_archive.py` prints"
    )
    with tarfile.open(archive) as opened:
        members = {member.name: member for member in opened.getmembers()}
    assert (
        set(members) == {entry["from"] for entry in platform["files"]} == {"kubectl-destinations", "LICENSE"}
    )
    assert members[platform["bin"]].mode == 0o755


def test_the_shim_runs_the_package_plugin_or_says_how_to_install_it() -> None:
    working = subprocess.run(
        ["/bin/sh", str(SHIM), "providers", "-o", "yaml"],
        capture_output=True,
        text=True,
        env={**os.environ, "DESTINATIONS_PYTHON": sys.executable},
        timeout=60,
        check=False,
    )
    assert working.returncode == 0, working.stderr
    assert "- key: webhook" in working.stdout
    missing = subprocess.run(
        ["/bin/sh", str(SHIM), "providers"],
        capture_output=True,
        text=True,
        env={"PATH": "/nonexistent"},
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1
    assert missing.stderr.startswith(
        "kubectl-destinations: the destinations-operator Python package is not installed for python3; "
        "install it with 'python3 -m pip install destinations-operator'"
    )


def test_every_k9s_plugin_is_valid_and_runs_a_plugin_command() -> None:
    plugins = yaml.safe_load((ROOT / "docs" / "k9s-plugins.yaml").read_text(encoding="utf-8"))["plugins"]
    shortcuts = [plugin["shortCut"] for plugin in plugins.values()]
    assert len(shortcuts) == len(set(shortcuts))
    used: set[str] = set()
    for name, plugin in plugins.items():
        assert set(plugin) <= K9S_KEYS, name
        assert set(plugin) >= K9S_REQUIRED, name
        assert plugin["scopes"] == ["destinationjobs"], name
        line = " ".join(str(arg) for arg in plugin["args"])
        match = re.search(r"destinations ([a-z-]+) \$NAME", line)
        assert match is not None, name
        used.add(match.group(1))
        assert "-n $NAMESPACE" in line and "--context $CONTEXT" in line, name
    assert used == set(COMMANDS) - {"providers", "new"}


def test_the_docs_cover_every_command_and_the_readme_shows_the_plugin() -> None:
    docs = (ROOT / "docs" / "kubectl-plugin.md").read_text(encoding="utf-8")
    headings = re.findall(r"^### `kubectl destinations ([a-z-]+)", docs, flags=re.MULTILINE)
    assert headings == list(COMMANDS)
    rbac_rows = re.findall(r"^\| `([a-z-]+)`", docs.split("## Permissions", 1)[1], flags=re.MULTILINE)
    assert rbac_rows == list(COMMANDS)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "kubectl destinations status" in readme
    assert "[docs/kubectl-plugin.md](docs/kubectl-plugin.md)" in readme
