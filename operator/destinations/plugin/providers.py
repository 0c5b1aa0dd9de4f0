"""`kubectl destinations providers`: the catalog of the installed provider plug-ins.

The catalog is the plug-ins installed with the plugin (the same package as the operator), so this
command needs no cluster and no permissions. `-o yaml|json` adds each job type's config JSON schema.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from destinations.api.models import SyncMode
from destinations.plugin.output import dump, table
from destinations.providers.base import Provider
from destinations.providers.catalog import load_catalog
from destinations.providers.commands import catalog_entry, describe_schedule

if TYPE_CHECKING:
    from destinations.plugin.main import Session

HEADER = ("PROVIDER", "NAME", "JOB TYPES", "AUTH METHODS", "MODES", "DEFAULT SCHEDULE")


def sync_modes(provider: Provider) -> list[str]:
    """The sync modes a provider supports: its declared `modes`, else upsert (and mirror if it can remove)."""
    declared = getattr(provider, "modes", None)
    if declared:
        return [str(getattr(mode, "value", mode)) for mode in declared]
    return [SyncMode.UPSERT.value] + ([SyncMode.MIRROR.value] if provider.supports_mirror else [])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", choices=("table", "yaml", "json"), default="table", help="table, yaml or json"
    )


def run(args: argparse.Namespace, session: Session) -> int:
    catalog = load_catalog()
    if args.output == "table":
        rows = [
            (
                provider.key,
                provider.display_name,
                ",".join(job_type.value for job_type in provider.job_types),
                ",".join(method.value for method in provider.auth_methods),
                ",".join(sync_modes(provider)),
                describe_schedule(provider.default_schedule),
            )
            for provider in catalog.values()
        ]
        table(session.console, HEADER, rows)
        return 0
    entries: list[dict[str, Any]] = []
    for provider in catalog.values():
        entry = catalog_entry(provider)
        entry["modes"] = sync_modes(provider)
        entries.append(entry)
    session.console.file.write(dump(entries, args.output))
    return 0
