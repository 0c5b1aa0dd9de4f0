"""`kubectl destinations`: the entry point, the options every command shares, and error printing.

kubectl runs any executable named `kubectl-<name>` on PATH as `kubectl <name>`; this one is the console
script `kubectl-destinations` (https://kubernetes.io/docs/tasks/extend-kubectl/kubectl-plugins/).
Each command is one module of this package exposing `add_arguments(parser)` and
`run(args, session) -> int`, imported only when used, like CloudNativePG's `internal/cmd/plugin`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console

from destinations import __version__
from destinations.plugin.errors import PluginError
from destinations.plugin.output import make_console

if TYPE_CHECKING:
    from destinations.plugin.kube import Kube

COMMANDS: dict[str, tuple[str, str]] = {
    "providers": ("providers", "the provider catalog: job types, auth methods, modes, default schedule"),
    "status": ("status", "a job's summary, or the jobs of the namespace when no job is named"),
    "logs": ("logs", "a run's history entries and its sync pod's log"),
    "run": ("run", "run a job now (annotation destinations.dev/requested-at)"),
    "dry-run": (
        "dry_run",
        "compute what a run would do, writing nothing (destinations.dev/dry-run-requested-at)",
    ),
    "pause": ("pause", "pause a job (spec.paused: true), optionally with a reason"),
    "resume": ("resume", "resume a paused job (spec.paused: false)"),
    "new": ("new", "create a job step by step: provider, type, authorization, config, source/sink, schedule"),
    "report": ("report", "a redacted zip of a job's objects, pods, logs and events for a support ticket"),
}


@dataclass
class Session:
    """What every command gets: its arguments, consoles, and the cluster connection (opened on first use)."""

    args: argparse.Namespace
    console: Console
    errors: Console
    _kube: Kube | None = field(default=None, repr=False)

    def kube(self) -> Kube:
        if self._kube is None:
            from destinations.plugin.kube import connect  # the kubernetes client, only when needed

            self._kube = connect(
                self.args.kubeconfig, self.args.context, self.args.namespace, self.args.all_namespaces
            )
        return self._kube


def _global_options(parser: argparse.ArgumentParser, *, after_command: bool) -> None:
    # After the command the defaults are suppressed, so `-n team status` is not reset by the sub-parser.
    value_default: Any = argparse.SUPPRESS if after_command else None
    switch_default: Any = argparse.SUPPRESS if after_command else False
    group = parser.add_argument_group("cluster options (as in kubectl)")
    group.add_argument(
        "--kubeconfig",
        help="path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)",
        default=value_default,
    )
    group.add_argument(
        "--context",
        help="the kubeconfig context to use (default: the current context)",
        default=value_default,
    )
    group.add_argument(
        "-n", "--namespace", help="the namespace (default: the context's namespace)", default=value_default
    )
    group.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="list across all namespaces (status without JOB)",
        default=switch_default,
    )
    group.add_argument(
        "--no-color",
        action="store_true",
        help="never colour the output (NO_COLOR works too)",
        default=switch_default,
    )


#: Options that take a value: the token after one of these is never the command's name.
VALUE_OPTIONS = frozenset({"--kubeconfig", "--context", "-n", "--namespace"})


def selected_command(arguments: Sequence[str]) -> str | None:
    """The command named in `arguments`, skipping option values (`--context run status` → status)."""
    skip = False
    for argument in arguments:
        if skip:
            skip = False
        elif argument in VALUE_OPTIONS:
            skip = True
        elif argument in COMMANDS:
            return argument
    return None


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the `selected` command's module is imported (all of them when None, for tests).

    Importing one command's module keeps `kubectl destinations providers` from loading the kubernetes
    client or `status` from loading the wizard's prompt library.
    """
    parser = argparse.ArgumentParser(
        prog="kubectl destinations",
        description="Inspect, run, pause, resume, create and debug DestinationJobs.",
    )
    parser.add_argument("--version", action="version", version=f"kubectl-destinations {__version__}")
    _global_options(parser, after_command=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        subparser = commands.add_parser(name, help=help_text, description=help_text)
        _global_options(subparser, after_command=True)
        if selected in (None, name):
            module = importlib.import_module(f"destinations.plugin.{module_name}")
            module.add_arguments(subparser)
            subparser.set_defaults(module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit 0 on success, 1 on an API or operator problem, 2 on a usage error."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(selected_command(arguments) or "").parse_args(arguments)
    session = Session(args, make_console(args.no_color), make_console(args.no_color, sys.stderr))
    try:
        return int(args.module.run(args, session))
    except PluginError as error:
        session.errors.print(f"error: {error}")
        return error.exit_code
    except KeyboardInterrupt:
        session.errors.print("interrupted")
        return 130


def entry_point() -> None:
    """The `kubectl-destinations` console script."""
    sys.exit(main())
