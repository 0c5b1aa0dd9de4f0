"""The `destinations` command: one console script, one sub-command per tool.

Each sub-command lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`;
modules are imported only when their sub-command is used, so `destinations validate` never pays for
kopf or the sandbox.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "crds": ("destinations.api.commands", "print the CustomResourceDefinitions as YAML"),
    "validate": ("destinations.validate", "validate DestinationJob/Authorization manifests offline"),
    "providers": ("destinations.providers.commands", "list the provider catalog"),
    "sandbox": ("destinations.sandbox.command", "run a local Kubernetes API server and kubelet"),
    "operator": ("destinations.controller.command", "run the operator"),
    "worker": ("destinations.worker.command", "run one sync (the entrypoint of sync pods)"),
    "demo": ("destinations.demo", "start the sandbox, the operator and demo jobs"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser, for `--help` and errors; sub-command arguments are added lazily in main()."""
    parser = argparse.ArgumentParser(
        prog="destinations",
        description="Run data-sync jobs between customer data and marketing tools on Kubernetes.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        commands.add_parser(name, help=help_text, description=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if arguments and arguments[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[arguments[0]][0])
        subparser = argparse.ArgumentParser(
            prog=f"destinations {arguments[0]}", description=SUBCOMMANDS[arguments[0]][1]
        )
        module.add_arguments(subparser)
        args = subparser.parse_args(arguments[1:])
        return int(module.run(args))
    parser.parse_args(arguments)
    return 2


if __name__ == "__main__":
    sys.exit(main())
