"""The shipped alerts and dashboard: promtool checks and unit-tests the rules, the chart ships the same
rules and dashboard as the plain files, every alert can be acted on, and the documented Alertmanager and
kubernetes-event-exporter examples are valid and route what they say.

promtool and amtool come from Debian's `prometheus` and `prometheus-alertmanager` packages; without
them these tests skip, or fail when DESTINATIONS_REQUIRE_TOOLS=1 (CI).
Rule unit tests: https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.docs.test_guides import github_anchors
from tests.shipping.monitoring import (
    CHART_DASHBOARD_FILE,
    DASHBOARD_FILE,
    REPO_ROOT,
    RULE_TESTS_FILE,
    RULES_FILE,
    alerts,
    dashboard,
    require_tool,
    rules,
)
from tests.shipping.rendering import Manifest, environment, one
from tests.shipping.test_chart import operator_container

Render = Callable[..., list[Manifest]]
RULES_ON = {"metrics": {"prometheusRule": {"enabled": True}}}
DASHBOARD_ON = {"metrics": {"grafanaDashboard": {"enabled": True}}}
ALERTS = {
    "DestinationJobFailed",
    "DestinationJobBackingOff",
    "DestinationJobNoRecentSuccess",
    "DestinationJobThresholdExceeded",
    "AuthorizationUnhealthy",
    "DestinationsOperatorDown",
}
ALERTING_DOC = REPO_ROOT / "docs" / "alerting.md"
TROUBLESHOOTING = REPO_ROOT / "docs" / "troubleshooting.md"


def run_tool(command: list[str | Path], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def documented_block(page: Path, name: str) -> str:
    """The fenced block that follows `<!-- tested: NAME -->` in a docs page."""
    text = page.read_text(encoding="utf-8")
    match = re.search(rf"<!-- tested: {re.escape(name)} -->\s*```\w*\n(.*?)```", text, re.DOTALL)
    assert match is not None, f"{page.name} has no block marked <!-- tested: {name} -->"
    return match.group(1)


# ------------------------------------------------------------------------------------------ tools


def test_a_missing_promtool_fails_with_the_install_line_when_tools_are_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("DESTINATIONS_REQUIRE_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y prometheus`"):
        require_tool("promtool")


def test_a_missing_amtool_skips_when_tools_are_not_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("DESTINATIONS_REQUIRE_TOOLS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y prometheus-alertmanager"):
        require_tool("amtool")


# ------------------------------------------------------------------------------------------ rules


def test_the_six_alerts_ship() -> None:
    assert {alert["alert"] for alert in alerts()} == ALERTS


def test_rules_pass_promtool_check_rules() -> None:
    promtool = require_tool("promtool")
    result = run_tool([promtool, "check", "rules", RULES_FILE])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_rule_unit_tests_pass_promtool_test_rules() -> None:
    promtool = require_tool("promtool")
    result = run_tool([promtool, "test", "rules", RULE_TESTS_FILE.name], cwd=RULE_TESTS_FILE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_fail_when_a_rule_is_broken(tmp_path: Path) -> None:
    """The unit tests can fail: DestinationJobBackingOff waiting 10m instead of 30m is caught."""
    promtool = require_tool("promtool")
    broken = RULES_FILE.read_text(encoding="utf-8").replace("for: 30m", "for: 10m")
    (tmp_path / "rules.yaml").write_text(broken, encoding="utf-8")
    cases = yaml.safe_load(RULE_TESTS_FILE.read_text(encoding="utf-8"))
    cases["rule_files"] = ["rules.yaml"]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(cases), encoding="utf-8")
    result = run_tool([promtool, "test", "rules", "tests.yaml"], cwd=tmp_path)
    assert result.returncode != 0
    assert "DestinationJobBackingOff" in result.stdout + result.stderr


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_every_alert_has_unit_tests_that_fire_it_and_that_do_not(alert: str) -> None:
    cases = yaml.safe_load(RULE_TESTS_FILE.read_text(encoding="utf-8"))["tests"]
    checks = [check for case in cases for check in case["alert_rule_test"] if check["alertname"] == alert]
    assert any(check["exp_alerts"] for check in checks), f"no test fires {alert}"
    assert any(not check["exp_alerts"] for check in checks), f"no test shows {alert} silent"


@pytest.mark.parametrize("alert", alerts(), ids=lambda alert: alert["alert"])
def test_every_alert_has_a_severity_a_summary_naming_its_object_and_a_runbook(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in {"critical", "warning"}
    summary = alert["annotations"]["summary"]
    if alert["alert"].startswith("DestinationJob"):
        assert "{{ $labels.namespace }}/{{ $labels.job }}" in summary
    elif alert["alert"] == "AuthorizationUnhealthy":
        assert "{{ $labels.namespace }}/{{ $labels.authorization }}" in summary
    base, _, anchor = alert["annotations"]["runbook_url"].partition("#")
    assert base == "https://github.com/destinations-dev/destinations/blob/main/docs/troubleshooting.md"
    assert anchor == alert["alert"].lower()
    assert anchor in github_anchors(TROUBLESHOOTING.read_text(encoding="utf-8")), (
        f"docs/troubleshooting.md has no heading for #{anchor}"
    )


def test_the_chart_ships_the_plain_rules_with_the_switch_on(render_chart: Render) -> None:
    rule = one(render_chart(RULES_ON), "PrometheusRule")
    assert rule["metadata"]["name"] == "destinations-operator"
    assert rule["spec"]["groups"] == rules()["groups"]


def test_the_chart_ships_no_rule_by_default(render_chart: Render) -> None:
    assert [m for m in render_chart() if m["kind"] == "PrometheusRule"] == []


def test_chart_values_set_the_backoff_time_labels_and_runbooks(render_chart: Render, tmp_path: Path) -> None:
    values = {
        "metrics": {
            "prometheusRule": {
                "enabled": True,
                "labels": {"release": "prom"},
                "backingOffFor": "2h",
                "noRecentSuccessHours": 26,
                "runbookBaseUrl": "https://wiki.example/destinations",
            }
        }
    }
    rule = one(render_chart(values), "PrometheusRule")
    by_name = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    assert rule["metadata"]["labels"]["release"] == "prom"
    assert by_name["DestinationJobBackingOff"]["for"] == "2h"
    assert by_name["DestinationJobBackingOff"]["annotations"]["summary"].endswith("backing off for 2h")
    assert "> 26 * 3600" in by_name["DestinationJobNoRecentSuccess"]["expr"]
    assert by_name["AuthorizationUnhealthy"]["annotations"]["runbook_url"] == (
        "https://wiki.example/destinations#authorizationunhealthy"
    )
    promtool = require_tool("promtool")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
    result = run_tool([promtool, "check", "rules", tmp_path / "rules.yaml"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_operator_down_watches_the_scrape_job_of_the_release(render_chart: Render) -> None:
    rule = one(render_chart({**RULES_ON, "fullnameOverride": "syncs"}), "PrometheusRule")
    down = next(r for r in rule["spec"]["groups"][0]["rules"] if r["alert"] == "DestinationsOperatorDown")
    assert down["expr"] == 'absent(up{job="syncs-metrics"} == 1)'


def test_the_service_monitor_keeps_the_jobs_own_labels(render_chart: Render) -> None:
    monitor = one(render_chart({"metrics": {"serviceMonitor": {"enabled": True}}}), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True


def test_the_per_job_switch_reaches_the_operator(render_chart: Render) -> None:
    assert environment(operator_container(render_chart()))["DESTINATIONS_PER_JOB_METRICS"] == "true"
    off = render_chart({"metrics": {"perJob": False}})
    assert environment(operator_container(off))["DESTINATIONS_PER_JOB_METRICS"] == "false"


# -------------------------------------------------------------------------------------- dashboard


def test_the_dashboard_ships_in_the_chart_for_the_grafana_sidecar(render_chart: Render) -> None:
    config_map = one(render_chart(DASHBOARD_ON), "ConfigMap", "destinations-operator-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["destinations-operator.json"]) == dashboard()
    assert CHART_DASHBOARD_FILE.read_text(encoding="utf-8") == DASHBOARD_FILE.read_text(encoding="utf-8"), (
        "helm/destinations-operator/files/grafana-dashboard.json differs from manifests/monitoring/"
    )


def test_the_dashboard_config_map_can_go_to_grafanas_namespace(render_chart: Render) -> None:
    values = {"metrics": {"grafanaDashboard": {"enabled": True, "namespace": "monitoring"}}}
    config_map = one(render_chart(values), "ConfigMap", "destinations-operator-dashboard")
    assert config_map["metadata"]["namespace"] == "monitoring"


def test_the_dashboard_has_the_panels_the_issue_asks_for() -> None:
    titles = {panel["title"] for panel in dashboard()["panels"]}
    assert {
        "Jobs by phase",
        "Runs per minute by result",
        "Records per minute by operation",
        "Rejected records of the last run, per job (%)",
        "Run duration",
        "Failing jobs",
    } <= titles


def test_every_dashboard_panel_queries_the_selected_prometheus() -> None:
    for panel in dashboard()["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ids)) == len(ids), panel["title"]
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(set(ids)) == len(ids)


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each panel query as a recording rule (Grafana's $variables filled in)."""
    promtool = require_tool("promtool")
    filled = {"$__rate_interval": "5m", "$namespace": ".*"}
    queries = []
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            expression = target["expr"]
            for variable, value in filled.items():
                expression = expression.replace(variable, value)
            queries.append(expression)
    recording = [{"record": f"dashboard:query_{index}", "expr": expr} for index, expr in enumerate(queries)]
    (tmp_path / "queries.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recording}]}), encoding="utf-8"
    )
    result = run_tool([promtool, "check", "rules", tmp_path / "queries.yaml"])
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------- notifications


def test_the_documented_alertmanager_config_passes_amtool_check_config(tmp_path: Path) -> None:
    amtool = require_tool("amtool")
    config = tmp_path / "alertmanager.yml"
    config.write_text(documented_block(ALERTING_DOC, "alertmanager.yml"), encoding="utf-8")
    result = run_tool([amtool, "check-config", config])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (
            ["alertname=DestinationJobFailed", "severity=critical", "namespace=marketing", "job=vip"],
            "data-team-slack,data-team-email",
        ),
        (
            ["alertname=DestinationJobThresholdExceeded", "severity=warning", "namespace=marketing"],
            "data-team-email",
        ),
        (["alertname=DestinationsOperatorDown", "severity=critical"], "platform-slack"),
        (["alertname=KubePodCrashLooping", "severity=warning"], "default"),
    ],
    ids=["failed-job-to-slack-and-email", "threshold-to-email", "operator-down-to-platform", "others"],
)
def test_the_documented_alertmanager_config_routes_as_the_docs_say(
    tmp_path: Path, labels: list[str], receivers: str
) -> None:
    amtool = require_tool("amtool")
    config = tmp_path / "alertmanager.yml"
    config.write_text(documented_block(ALERTING_DOC, "alertmanager.yml"), encoding="utf-8")
    result = run_tool([amtool, "config", "routes", "test", f"--config.file={config}", *labels])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def _event_exporter_receivers(config: dict[str, Any], event: dict[str, Any]) -> list[str]:
    """Route an Event the way kubernetes-event-exporter's README describes: every key of a match rule
    (except `receiver`) is a regular expression the event's field must match; drop rules go first.
    https://github.com/resmoio/kubernetes-event-exporter#configuration
    """

    def matches(rule: dict[str, Any]) -> bool:
        return all(
            re.fullmatch(str(pattern), str(event.get(key, "")))
            for key, pattern in rule.items()
            if key != "receiver"
        )

    receivers = []
    for route in config["route"]["routes"]:
        if any(matches(rule) for rule in route.get("drop", [])):
            continue
        receivers += [rule["receiver"] for rule in route.get("match", []) if matches(rule)]
    return receivers


@pytest.mark.parametrize(
    ("event", "receivers"),
    [
        ({"kind": "DestinationJob", "type": "Warning", "reason": "ThresholdExceeded"}, ["slack"]),
        ({"kind": "DestinationJob", "type": "Warning", "reason": "Failed"}, ["slack"]),
        ({"kind": "DestinationJob", "type": "Normal", "reason": "Synced"}, []),
        ({"kind": "Pod", "type": "Warning", "reason": "BackOff"}, []),
    ],
    ids=["threshold", "failed", "synced-is-quiet", "other-kinds-are-quiet"],
)
def test_the_documented_event_exporter_config_forwards_job_warnings(
    event: dict[str, str], receivers: list[str]
) -> None:
    config = yaml.safe_load(documented_block(ALERTING_DOC, "event-exporter.yaml"))
    assert {receiver["name"] for receiver in config["receivers"]} == {"slack"}
    assert _event_exporter_receivers(config, event) == receivers
