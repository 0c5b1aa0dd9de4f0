"""Running `kubectl destinations` in the test process, against a kubeconfig, capturing what it prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from destinations.plugin.main import main


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def fields(self) -> dict[str, str]:
        """The `Label:  value` lines of a status summary, label → value (the first occurrence of a label)."""
        found: dict[str, str] = {}
        for line in self.out.splitlines():
            label, separator, value = line.partition(":")
            label = label.strip()
            if separator and label and label not in found:
                found[label] = value.strip()
        return found


def invoke(capsys: pytest.CaptureFixture[str], kubeconfig: Path, *args: str) -> Result:
    """`kubectl destinations --kubeconfig KUBECONFIG ARGS…` in-process (no colour: output is captured)."""
    capsys.readouterr()
    code = main(["--kubeconfig", str(kubeconfig), *args])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)
