"""`destinations crds`: print the CustomResourceDefinitions, or regenerate `crds/` with `--write`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from destinations.api import crds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--write",
        metavar="DIR",
        type=Path,
        help="write one file per CRD into DIR (e.g. crds/) instead of printing them",
    )


def run(args: argparse.Namespace) -> int:
    if args.write is None:
        sys.stdout.write(crds.render_all())
        return 0
    for path in crds.write_all(args.write):
        print(f"wrote {path}")
    return 0
