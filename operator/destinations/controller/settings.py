"""The operator's settings: command-line flags, each with an environment variable for Deployments.

Flags win over environment variables, which win over the defaults. The Helm chart and the kustomize
base set the environment variables; `destinations operator --help` lists both.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from destinations import DEFAULT_IMAGE
from destinations.api.durations import format_duration, parse_duration


class WebhookMode(StrEnum):
    """How the admission webhooks are served."""

    OFF = "off"
    """No webhooks; the operator's own checks mark bad jobs Stalled."""
    MANAGED = "managed"
    """The operator makes its own self-signed certificate and patches the webhook configurations' caBundle."""
    EXTERNAL = "external"
    """The installer provides the certificate (e.g. cert-manager) in --webhook-cert-dir."""


@dataclass(frozen=True)
class OperatorSettings:
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means all namespaces."""
    sync_image: str = DEFAULT_IMAGE
    """The image of sync pods."""
    sync_image_pull_policy: str = "IfNotPresent"
    sync_resources: Mapping[str, Mapping[str, str]] | None = None
    """Default resources of sync containers (`{"requests": {...}, "limits": {...}}`); a job's
    podTemplate.resources wins. None uses the built-in defaults of destinations.controller.pods."""
    default_purge_after: timedelta | None = timedelta(days=90)
    """Used when a job omits purgeAfter; None never purges."""
    max_concurrent_runs: int = 0
    """Cluster-wide cap on runs in flight; 0 means no cap."""
    metrics_port: int = 9090
    per_job_metrics: bool = True
    """Export the per-job gauges (up to 21 series per job, controller/job_metrics.py); off for very large
    installations, leaving the aggregates and the Authorization health."""
    liveness_port: int = 8080
    webhooks: WebhookMode = WebhookMode.OFF
    webhook_port: int = 9443
    webhook_host: str | None = None
    """The address the API server uses to reach the webhooks (managed mode); a Service when in-cluster."""
    webhook_cert_dir: str | None = None
    webhook_configuration: str = "destinations-operator"
    """The Validating/MutatingWebhookConfigurations whose caBundle the operator keeps (managed mode)."""
    peering: str | None = None
    """A kopf peering name, for a standby replica; None runs standalone."""
    verbose: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)


ENVIRONMENT: dict[str, str] = {
    "namespaces": "DESTINATIONS_NAMESPACES",
    "sync_image": "DESTINATIONS_SYNC_IMAGE",
    "sync_image_pull_policy": "DESTINATIONS_SYNC_IMAGE_PULL_POLICY",
    "sync_resources": "DESTINATIONS_SYNC_RESOURCES",
    "default_purge_after": "DESTINATIONS_PURGE_AFTER",
    "max_concurrent_runs": "DESTINATIONS_MAX_CONCURRENT_RUNS",
    "metrics_port": "DESTINATIONS_METRICS_PORT",
    "per_job_metrics": "DESTINATIONS_PER_JOB_METRICS",
    "liveness_port": "DESTINATIONS_LIVENESS_PORT",
    "webhooks": "DESTINATIONS_WEBHOOKS",
    "webhook_port": "DESTINATIONS_WEBHOOK_PORT",
    "webhook_host": "DESTINATIONS_WEBHOOK_HOST",
    "webhook_cert_dir": "DESTINATIONS_WEBHOOK_CERT_DIR",
    "webhook_configuration": "DESTINATIONS_WEBHOOK_CONFIGURATION",
    "peering": "DESTINATIONS_PEERING",
}
"""Setting → environment variable. DESTINATIONS_NAMESPACES is comma-separated."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = OperatorSettings()
    parser.add_argument(
        "--namespace",
        "-n",
        dest="namespaces",
        action="append",
        metavar="NS",
        help=f"watch this namespace (repeatable); all namespaces when omitted [{ENVIRONMENT['namespaces']}]",
    )
    parser.add_argument(
        "--sync-image",
        help=f"image of sync pods (default {defaults.sync_image}) [{ENVIRONMENT['sync_image']}]",
    )
    parser.add_argument("--sync-image-pull-policy", choices=["Always", "IfNotPresent", "Never"])
    parser.add_argument(
        "--sync-resources",
        help='default resources of sync pods as JSON, e.g. \'{"requests": {"cpu": "100m"}}\' '
        f"[{ENVIRONMENT['sync_resources']}]",
    )
    parser.add_argument(
        "--purge-after",
        dest="default_purge_after",
        help="default purgeAfter of jobs: a duration or 'never' (default 90d)",
    )
    parser.add_argument(
        "--max-concurrent-runs", type=int, help="cap on runs in flight across the cluster; 0: no cap"
    )
    parser.add_argument(
        "--metrics-port", type=int, help=f"port of /metrics (default {defaults.metrics_port})"
    )
    parser.add_argument(
        "--per-job-metrics",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="export per-job gauges (default on; up to 21 series per job) "
        f"[{ENVIRONMENT['per_job_metrics']}: true/false]",
    )
    parser.add_argument(
        "--liveness-port", type=int, help=f"port of /healthz (default {defaults.liveness_port})"
    )
    parser.add_argument(
        "--webhooks", choices=[mode.value for mode in WebhookMode], help="admission webhooks (default off)"
    )
    parser.add_argument("--webhook-port", type=int)
    parser.add_argument(
        "--webhook-host", help="address the API server uses to reach the webhooks (managed mode)"
    )
    parser.add_argument("--webhook-cert-dir", help="directory with tls.crt and tls.key (external mode)")
    parser.add_argument(
        "--webhook-configuration",
        help="name of the webhook configurations whose caBundle a managed operator keeps "
        f"(default {defaults.webhook_configuration}) [{ENVIRONMENT['webhook_configuration']}]",
    )
    parser.add_argument("--peering", help="kopf peering name, for a standby replica; standalone when omitted")
    parser.add_argument("--verbose", "-v", action="store_true", default=None)


def settings_from(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> OperatorSettings:
    """Merge flags, environment and defaults; raise ValueError naming the setting on bad values."""
    defaults = OperatorSettings()

    def pick(name: str) -> str | None:
        flag = getattr(args, name, None)
        if flag is not None:
            return ",".join(flag) if isinstance(flag, list) else str(flag)
        return environ.get(ENVIRONMENT[name]) if name in ENVIRONMENT else None

    def integer(name: str, default: int, minimum: int) -> int:
        text = pick(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{name.replace('_', '-')}: {text!r} is not an integer") from None
        if value < minimum:
            raise ValueError(f"{name.replace('_', '-')}: {value} must be at least {minimum}")
        return value

    namespaces_text = pick("namespaces")
    namespaces = (
        tuple(ns.strip() for ns in namespaces_text.split(",") if ns.strip()) if namespaces_text else ()
    )
    purge_text = pick("default_purge_after")
    try:
        purge_after = (
            defaults.default_purge_after
            if purge_text is None
            else None
            if purge_text == "never"
            else parse_duration(purge_text)
        )
    except ValueError as error:
        raise ValueError(f"purge-after: {error}") from None
    for namespace in namespaces:
        # Exact names only: a glob would make kopf watch Namespaces, which the ClusterRole does not grant.
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", namespace):
            raise ValueError(
                f"namespace: {namespace!r} is not a namespace name (lower-case letters, digits, '-')"
            )
    sync_resources = _parse_resources(pick("sync_resources"))
    per_job_text = pick("per_job_metrics")
    if per_job_text is None:
        per_job_metrics = defaults.per_job_metrics
    elif per_job_text.lower() in _TRUE or per_job_text.lower() in _FALSE:
        per_job_metrics = per_job_text.lower() in _TRUE
    else:
        raise ValueError(
            f"per-job-metrics: {per_job_text!r} is not a boolean; expected one of "
            f"{', '.join(sorted(_TRUE | _FALSE))}"
        )
    webhooks_text = pick("webhooks") or defaults.webhooks.value
    try:
        webhooks = WebhookMode(webhooks_text)
    except ValueError:
        accepted = ", ".join(mode.value for mode in WebhookMode)
        raise ValueError(f"webhooks: {webhooks_text!r} is not one of {accepted}") from None
    return OperatorSettings(
        namespaces=namespaces,
        sync_image=pick("sync_image") or defaults.sync_image,
        sync_image_pull_policy=pick("sync_image_pull_policy") or defaults.sync_image_pull_policy,
        sync_resources=sync_resources,
        default_purge_after=purge_after,
        max_concurrent_runs=integer("max_concurrent_runs", defaults.max_concurrent_runs, 0),
        metrics_port=integer("metrics_port", defaults.metrics_port, 0),
        per_job_metrics=per_job_metrics,
        liveness_port=integer("liveness_port", defaults.liveness_port, 0),
        webhooks=webhooks,
        webhook_port=integer("webhook_port", defaults.webhook_port, 0),
        webhook_host=pick("webhook_host"),
        webhook_cert_dir=pick("webhook_cert_dir"),
        webhook_configuration=pick("webhook_configuration") or defaults.webhook_configuration,
        peering=pick("peering"),
        verbose=bool(getattr(args, "verbose", None)),
    )


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _parse_resources(text: str | None) -> dict[str, dict[str, str]] | None:
    """Read `{"requests": {...}, "limits": {...}}` (quantities as strings); None when unset or empty."""
    if text is None or not text.strip():
        return None
    accepted = 'a JSON object such as {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {...}}'
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(f"sync-resources: {text!r} is not JSON; expected {accepted}") from None
    if not isinstance(value, dict):
        raise ValueError(f"sync-resources: {text!r} is not {accepted}")
    resources: dict[str, dict[str, str]] = {}
    for section, quantities in value.items():
        if section not in ("requests", "limits") or not isinstance(quantities, dict):
            raise ValueError(f"sync-resources: {section!r} is not accepted; expected {accepted}")
        resources[section] = {str(name): str(quantity) for name, quantity in quantities.items()}
    return resources or None


def describe(settings: OperatorSettings) -> str:
    """One log line summarising the settings (no secrets exist among them)."""
    purge = "never" if settings.default_purge_after is None else format_duration(settings.default_purge_after)
    scope = ",".join(settings.namespaces) or "all namespaces"
    return (
        f"watching {scope}; sync image {settings.sync_image}; purge after {purge}; "
        f"max concurrent runs {settings.max_concurrent_runs or 'unlimited'}; "
        f"webhooks {settings.webhooks.value}; "
        f"per-job metrics {'on' if settings.per_job_metrics else 'off'}"
    )
