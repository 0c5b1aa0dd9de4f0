"""`destinations operator`: run the operator against the current kubeconfig or in-cluster config."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from destinations.controller.operator import Operator
from destinations.controller.settings import add_arguments as add_settings_arguments
from destinations.controller.settings import settings_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except ValueError as error:
        print(f"destinations operator: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if settings.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # kopf's own per-object chatter (handler succeeded, …) is debug detail.
    logging.getLogger("kopf").setLevel(logging.DEBUG if settings.verbose else logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.DEBUG if settings.verbose else logging.WARNING)
    try:
        asyncio.run(Operator(settings).run())
    except KeyboardInterrupt:
        return 130
    return 0
