"""`destinations demo` end to end: each demo job reaches its state, then nothing is left running."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from destinations.demo import EXPECTATIONS
from tests.fixtures.sandbox import wait_until

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Finished:
    returncode: int
    output: str
    kubeconfig: Path

    def address(self, label: str) -> tuple[str, int]:
        """Host and port of a URL the demo printed after `label`."""
        found = re.search(rf"{label} https?://([\d.]+):(\d+)", self.output)
        assert found, f"the demo did not print its {label}:\n{self.output}"
        return found.group(1), int(found.group(2))

    @property
    def workdir(self) -> Path:
        found = re.search(r"the operator logs to (\S+)/operator\.log", self.output)
        assert found, self.output
        return Path(found.group(1))


def demo_command(kubeconfig: Path, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "destinations", "demo", "--kubeconfig", str(kubeconfig), *arguments]


def environment() -> dict[str, str]:
    return {**os.environ, "PATH": f"{REPOSITORY / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}"}


def processes_mentioning(marker: str) -> list[str]:
    """Live processes whose command line or environment mentions `marker` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if marker.encode() in text and state != "Z":
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {command}")
    return found


def is_listening(address: tuple[str, int]) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(address) == 0


@pytest.fixture(scope="module")
def short_demo(tmp_path_factory: pytest.TempPathFactory, control_plane: str) -> Finished:
    """One run of `destinations demo --until-ready` per backend, shared by the tests reading its outcome."""
    kubeconfig = tmp_path_factory.mktemp("demo") / "kubeconfig"
    result = subprocess.run(
        demo_command(kubeconfig, "--until-ready", "--timeout", "120", "--control-plane", control_plane),
        capture_output=True,
        text=True,
        timeout=240,
        env=environment(),
    )
    return Finished(result.returncode, result.stdout + result.stderr, kubeconfig)


def test_short_demo_exits_zero_once_every_job_reached_its_state(short_demo: Finished) -> None:
    assert short_demo.returncode == 0, short_demo.output
    assert "Every demo job reached its expected state." in short_demo.output


@pytest.mark.parametrize("expectation", EXPECTATIONS, ids=lambda expectation: expectation.job)
def test_short_demo_reports_each_job_in_its_expected_state(short_demo: Finished, expectation: object) -> None:
    assert f"ok  {expectation.job}: {expectation.phase} ({expectation.reason})" in short_demo.output  # type: ignore[attr-defined]


def test_short_demo_export_delivered_records_to_the_receiver(short_demo: Finished) -> None:
    assert re.search(r"POST /newsletter: [1-9]\d* records accepted", short_demo.output), short_demo.output


def test_short_demo_prints_the_kubeconfig_and_kubectl_commands(short_demo: Finished) -> None:
    assert f"Kubeconfig: {short_demo.kubeconfig}" in short_demo.output
    assert f"kubectl --kubeconfig {short_demo.kubeconfig} get dj -n demo" in short_demo.output
    assert f"kubectl --kubeconfig {short_demo.kubeconfig} get events -n demo" in short_demo.output


def test_short_demo_leaves_no_process_behind(short_demo: Finished) -> None:
    assert processes_mentioning(str(short_demo.kubeconfig)) == []
    assert processes_mentioning(str(short_demo.workdir)) == []


def test_short_demo_closes_its_ports(short_demo: Finished) -> None:
    assert not is_listening(short_demo.address("Sandbox API server"))
    assert not is_listening(short_demo.address(r"marketing tool\) at"))


def test_short_demo_removes_its_working_directory(short_demo: Finished) -> None:
    assert not short_demo.workdir.exists()


@pytest.fixture
def live_demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        demo_command(kubeconfig, "--refresh", "0.2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment(),
    )
    yield process, kubeconfig
    if process.poll() is None:
        process.kill()
        process.wait()


def test_interrupted_demo_stops_everything_it_started(live_demo: tuple[subprocess.Popen[str], Path]) -> None:
    process, kubeconfig = live_demo
    assert process.stdout is not None
    lines: list[str] = []
    while not any(line.startswith("NAME ") for line in lines):  # the live table is up
        line = process.stdout.readline()
        assert line, "the demo ended early:\n" + "".join(lines)
        lines.append(line)
    wait_until(lambda: processes_mentioning(str(kubeconfig)), message="the operator process")
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, "".join(lines) + output
    assert "Stopped; nothing is left running." in output
    assert processes_mentioning(str(kubeconfig)) == []
