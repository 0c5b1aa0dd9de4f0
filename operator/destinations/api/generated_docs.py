"""The command line shared by the generated documentation pages (`python -m ... [--write FILE]`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def print_or_write(
    render: Callable[[], str], argv: Sequence[str] | None, *, prog: str, description: str | None
) -> int:
    """Print the page, or write it to `--write FILE` (what the staleness tests compare against)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--write", metavar="FILE", type=Path, help="write to FILE instead of printing")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(render())
    else:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(render(), encoding="utf-8")
    return 0
