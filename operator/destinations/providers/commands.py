"""`destinations providers`: the provider catalog, as a table or with config schemas as YAML/JSON.

This is what users consult before writing a job: which providers exist, which job types and auth
methods each accepts, and (with `-o yaml`) the exact `spec.config` fields per job type.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from destinations.api.durations import format_duration
from destinations.api.models import Schedule
from destinations.providers.base import Provider
from destinations.providers.catalog import load_catalog

COLUMNS = ("KEY", "NAME", "JOB TYPES", "AUTH METHODS", "MODES", "DEFAULT SCHEDULE")


def describe_schedule(schedule: Schedule) -> str:
    """A schedule in one short phrase: `every 1h`, `cron 0 6 * * * (Europe/Paris)`, `once`."""
    if schedule.every is not None:
        return f"every {format_duration(schedule.every)}"
    if schedule.cron is not None:
        return f"cron {schedule.cron}" + (f" ({schedule.timezone})" if schedule.timezone else "")
    return "once"


def catalog_entry(provider: Provider) -> dict[str, Any]:
    """A provider's catalog entry with the JSON schema of its config per job type."""
    entry: dict[str, Any] = {
        "key": provider.key,
        "displayName": provider.display_name,
        "description": provider.description,
        "documentationUrl": provider.documentation_url,
        "jobTypes": [job_type.value for job_type in provider.job_types],
        "authMethods": [method.value for method in provider.auth_methods],
        "modes": [mode.value for mode in provider.modes],
        "defaultSchedule": provider.default_schedule.to_manifest(),
    }
    if provider.min_interval is not None:
        entry["minInterval"] = format_duration(provider.min_interval)
    entry["config"] = {
        job_type.value: provider.config_models[job_type].model_json_schema(by_alias=True)
        for job_type in provider.job_types
    }
    return entry


def render_table(catalog: Mapping[str, Provider]) -> str:
    """The catalog as a kubectl-style table: columns padded, three spaces apart."""
    rows: list[Sequence[str]] = [COLUMNS]
    for provider in catalog.values():
        rows.append(
            (
                provider.key,
                provider.display_name,
                ",".join(job_type.value for job_type in provider.job_types),
                ",".join(method.value for method in provider.auth_methods),
                ",".join(mode.value for mode in provider.modes),
                describe_schedule(provider.default_schedule),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    lines = [
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", "yaml", "json"),
        default="table",
        help="table (default), or yaml/json with each job type's config schema",
    )


def run(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    if args.output == "table":
        sys.stdout.write(render_table(catalog))
        return 0
    entries = [catalog_entry(provider) for provider in catalog.values()]
    if args.output == "json":
        sys.stdout.write(json.dumps(entries, indent=2) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(entries, sort_keys=False, allow_unicode=True, width=110))
    return 0
