"""Providers are found through the `destinations.providers` entry-point group, wherever they are installed.

The plug-in in `plugin_package/` is "installed" the way pip would leave it, as a `*.dist-info` directory
with `entry_points.txt` next to the package on the path; importlib.metadata finds it there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from destinations.providers.catalog import load_catalog
from tests.worker.conftest import WorkerPod, file_endpoint, job

PLUGIN_SOURCE = Path(__file__).parent / "plugin_package"


@pytest.fixture
def installed_plugin(tmp_path: Path) -> Iterator[Path]:
    site = tmp_path / "site-packages"
    shutil.copytree(PLUGIN_SOURCE / "destinations_echo", site / "destinations_echo")
    dist_info = site / "destinations_echo-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: destinations-echo\nVersion: 0.1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[destinations.providers]\necho = destinations_echo:provider\n"
    )
    sys.path.insert(0, str(site))
    load_catalog.cache_clear()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("destinations_echo", None)
        load_catalog.cache_clear()


def test_a_provider_from_another_package_joins_the_catalog(installed_plugin: Path) -> None:
    catalog = load_catalog()
    assert catalog["echo"].display_name == "Echo"
    assert {"webhook", "mailchimp", "facebook"} <= set(catalog)


def test_the_worker_runs_a_plugin_provider(
    installed_plugin: Path, pod: WorkerPod, monkeypatch: pytest.MonkeyPatch
) -> None:
    (pod.source_dir / "in.jsonl").write_text("".join(json.dumps({"n": i}) + "\n" for i in range(3)))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(installed_plugin), os.environ.get("PYTHONPATH", "")])
    )
    done = pod.run(job("echo", "export", {}, source=file_endpoint("in.jsonl")))
    assert done.exit_code == 0, done.report
    assert done.records["added"] == 3
    assert "echoed" in [line["event"] for line in done.lines]


def test_a_sync_pod_imports_only_what_its_run_needs() -> None:
    """Start-up is a large share of a short run: a worker exporting from a file to `google` imports
    that provider's plug-in only, and neither psycopg (warehouse sources) nor cryptography and joserfc
    (sealing rotated tokens, signing service-account assertions)."""
    probe = (
        "import sys\n"
        "import destinations.worker.command\n"
        "from destinations.providers.catalog import get_provider\n"
        "get_provider('google')\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in "
        "('psycopg', 'cryptography', 'joserfc') or name.startswith('destinations.providers.')))\n"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(found.stdout.replace("'", '"')) == [
        "destinations.providers._checks",
        "destinations.providers._http",
        "destinations.providers._oauth",
        "destinations.providers._pacing",
        "destinations.providers._records",
        "destinations.providers.base",
        "destinations.providers.catalog",
        "destinations.providers.errors",
        "destinations.providers.google",
        "destinations.providers.identities",
        "destinations.providers.rotation",
    ]
