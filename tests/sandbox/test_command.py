"""`destinations sandbox` runs in the foreground, announces its kubeconfig and stops on SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.sandbox import Kubectl


def test_the_command_writes_a_kubeconfig_serves_and_stops_on_sigterm(
    kubectl_binary: Path, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    destinations = Path(sys.executable).parent / "destinations"
    process = subprocess.Popen(
        [
            str(destinations),
            "sandbox",
            "--kubeconfig",
            str(kubeconfig),
            "--request-log",
            str(tmp_path / "requests.jsonl"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "kubeconfig written to" in line and str(kubeconfig) in line
        kubectl = Kubectl(kubectl_binary, kubeconfig, tmp_path / "cache")
        assert "destinationjobs.destinations.dev" in kubectl("get", "crds").stdout
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert '"resource": "customresourcedefinitions"' in (tmp_path / "requests.jsonl").read_text()


def test_an_invalid_fault_spec_is_reported(tmp_path: Path) -> None:
    destinations = Path(sys.executable).parent / "destinations"
    result = subprocess.run(
        [str(destinations), "sandbox", "--kubeconfig", str(tmp_path / "kc"), "--faults", "bogus=1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "unknown fault" in result.stdout


@pytest.mark.real_only
def test_the_command_runs_on_the_real_control_plane_and_leaves_nothing_behind(
    kubectl_binary: Path, tmp_path: Path, control_plane: str
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    destinations = Path(sys.executable).parent / "destinations"
    process = subprocess.Popen(
        [str(destinations), "sandbox", "--kubeconfig", str(kubeconfig), "--control-plane", control_plane],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "Sandbox API server (real) listening on https://127.0.0.1:" in line, line
        kubectl = Kubectl(kubectl_binary, kubeconfig, tmp_path / "cache")
        assert "destinationjobs.destinations.dev" in kubectl("get", "crds").stdout
        assert "sandbox-node   Ready" in kubectl("get", "nodes").stdout
        # This sandbox's own directory (other tests' real sandboxes may run beside it): the one in
        # the command line of the API server that listens on the announced port.
        port = line.split("https://127.0.0.1:", 1)[1].split(";", 1)[0]
        (apiserver,) = _command_lines_with(f"--secure-port {port} ")
        workdir = re.search(r"(\S*/destinations-real-sandbox-[^/\s]+)/", apiserver)
        assert workdir is not None, apiserver
        assert len(_command_lines_with(workdir.group(1))) == 3  # etcd, kube-apiserver, controller-manager
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert _command_lines_with(workdir.group(1)) == []
    assert not Path(workdir.group(1)).exists()


def _command_lines_with(text: str) -> list[str]:
    """The command lines of the running processes that contain `text` (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command_line:
            found.append(command_line)
    return found


def test_emulator_only_options_are_refused_on_the_real_control_plane(tmp_path: Path) -> None:
    destinations = Path(sys.executable).parent / "destinations"
    result = subprocess.run(
        [
            str(destinations), "sandbox", "--kubeconfig", str(tmp_path / "kc"),
            "--control-plane", "real", "--faults", "error=0.1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--faults, --request-log and --port need --control-plane embedded" in result.stdout
