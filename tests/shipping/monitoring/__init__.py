"""The shipped alerting rules and dashboard, read the way Prometheus and Grafana read them.

Shared by tests/shipping/test_monitoring.py and the operator scrape test
(tests/operator/test_alerts.py), which checks that every metric named here is exported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
RULES_FILE = REPO_ROOT / "manifests" / "monitoring" / "prometheus-rules.yaml"
DASHBOARD_FILE = REPO_ROOT / "manifests" / "monitoring" / "grafana-dashboard.json"
CHART_DASHBOARD_FILE = REPO_ROOT / "helm" / "destinations-operator" / "files" / "grafana-dashboard.json"
RULE_TESTS_FILE = Path(__file__).resolve().parent / "prometheus-rules.test.yaml"

#: Debian's packages that ship the tools (bookworm: prometheus 2.42, prometheus-alertmanager 0.25).
TOOL_PACKAGES = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}
_METRIC = re.compile(r"\b(destinations_[a-z0-9_]+)\b")


def require_tool(name: str) -> Path:
    """The tool's path; a clear failure when DESTINATIONS_REQUIRE_TOOLS=1 and it is missing, else a skip."""
    found = shutil.which(name)
    if found is not None:
        return Path(found)
    message = (
        f"{name} is not installed: `apt-get install -y {TOOL_PACKAGES[name]}` "
        f"(Debian's {TOOL_PACKAGES[name]} package ships {name})"
    )
    if os.environ.get("DESTINATIONS_REQUIRE_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def rules() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return loaded


def alerts() -> list[dict[str, Any]]:
    return [rule for group in rules()["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return loaded


def variable_queries() -> list[str]:
    """The PromQL of the dashboard's template variables (`label_values(...)`)."""
    queries = []
    for variable in dashboard()["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            queries.append(query["query"])
    return queries


def metric_names(expressions: list[str]) -> set[str]:
    """The operator's metric names an expression reads (`destinations_*`)."""
    return {name for expression in expressions for name in _METRIC.findall(expression)}


def metrics_used() -> dict[str, set[str]]:
    """Metric name → where it is used (alert names and dashboard panel titles)."""
    used: dict[str, set[str]] = {}
    for alert in alerts():
        for name in metric_names([alert["expr"]]):
            used.setdefault(name, set()).add(f"alert {alert['alert']}")
    for panel in dashboard()["panels"]:
        for name in metric_names([target["expr"] for target in panel.get("targets", [])]):
            used.setdefault(name, set()).add(f"panel {panel['title']!r}")
    for name in metric_names(variable_queries()):
        used.setdefault(name, set()).add("dashboard variable")
    return used
