"""Every command shown in the README and the docs is run, so a reader can paste it and it works.

Commands are the lines of fenced `sh` blocks and the `$ ` lines of `console` blocks in README.md,
examples/README.md and docs/*.md. Each one must be classified below:

- `LOCAL`: runs on this machine alone (`destinations providers`, `destinations validate …`);
- `CLUSTER`: runs against a live demo (sandbox, operator, receiver), in the order the pages show them,
  after the demo's own jobs are up; `kubectl` talks to the sandbox through `KUBECONFIG`;
- `ELSEWHERE`: cannot run here, or is run by another test; the reason says which.

A new command in the docs fails `test_every_command_in_the_docs_is_classified` until it is added here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from destinations.demo import Demo
from tests.fixtures.sandbox import wait_until

REPOSITORY = Path(__file__).resolve().parents[2]
PAGES = [
    REPOSITORY / "examples" / "README.md",
    REPOSITORY / "README.md",
    *sorted((REPOSITORY / "docs").glob("*.md")),
]
FENCE = re.compile(r"^\s*```(\w*)\s*$")


@dataclass(frozen=True)
class DocCommand:
    page: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


def _strip_comment(line: str) -> str:
    """Drop a trailing `# comment` that is outside quotes."""
    quote: str | None = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def doc_commands(page: Path) -> Iterator[DocCommand]:
    """The commands of one page, continuation lines joined."""
    language: str | None = None
    pending = ""
    pending_line = 0
    name = str(page.relative_to(REPOSITORY))
    for number, raw in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        fence = FENCE.match(raw)
        if fence:
            language = None if language is not None else fence.group(1)
            continue
        if language in ("sh", "bash", "shell"):
            line = raw.strip()
        elif language == "console" and (raw.startswith("$ ") or pending):
            line = raw.removeprefix("$ ").strip()
        else:
            continue
        if not pending:
            pending_line = number
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        text = _strip_comment(pending + line).strip()
        pending = ""
        if text:
            yield DocCommand(name, pending_line, text)


def all_commands() -> list[DocCommand]:
    return [command for page in PAGES for command in doc_commands(page)]


LOCAL = {
    "destinations providers",
    "kubectl destinations --help",
    "kubectl destinations providers",
    "destinations providers -o yaml",
    "destinations validate examples/*/*.yaml",
    "destinations validate examples/authorizations/*.yaml examples/jobs/*.yaml",
    "destinations validate examples/authorizations/webhook.yaml "
    "examples/jobs/webhook-export-high-value-users.yaml",
}

CLUSTER = {
    "kubectl create namespace marketing",
    "kubectl apply -f crds/",
    "kubectl apply -n marketing -f examples/authorizations/ -f examples/jobs/",
    "kubectl apply -f examples/authorizations/webhook.yaml",
    "kubectl apply -f examples/jobs/webhook-export-high-value-users.yaml",
    "kubectl get destinationjobs -n marketing",
    "kubectl get dauth",
    "kubectl get dauth -n marketing",
    "kubectl get dauth events-api -n marketing",
    "kubectl get dj -n marketing",
    "kubectl get dj -n marketing -o wide",
    "kubectl create secret generic events-api-credentials -n marketing --from-literal=apiKey=NEW-KEY "
    "--dry-run=client -o yaml | kubectl apply -f -",
    """kubectl patch dj newsletter-to-mailchimp -n marketing --type merge -p '{"spec":{"paused":true}}'""",
    """kubectl patch dj newsletter-to-mailchimp -n marketing --type merge -p '{"spec":{"paused":false}}'""",
    'kubectl annotate dj newsletter-to-mailchimp -n marketing destinations.dev/requested-at="$(date -u '
    '+%FT%TZ)" --overwrite',
    "kubectl get dj newsletter-to-mailchimp -n marketing -o jsonpath='{.status.lastHandledRequestAt}'",
    'kubectl annotate dj newsletter-to-mailchimp -n marketing destinations.dev/pause-reason="holiday freeze" '
    "--overwrite",
    "kubectl get dj newsletter-to-mailchimp -n marketing -o jsonpath='{.status.lastRun.rejections}'",
    "kubectl annotate dj newsletter-to-mailchimp -n marketing "
    'destinations.dev/dry-run-requested-at="$(date -u +%FT%TZ)" --overwrite',
    "kubectl get dj newsletter-to-mailchimp -n marketing -o jsonpath='{.status.lastDryRun}'",
    "kubectl describe dj newsletter-to-mailchimp -n marketing",
    "kubectl logs -n marketing -l destinations.dev/job=newsletter-to-mailchimp --tail=50",
    "kubectl describe dj signups-company-enrichment -n marketing",
    "kubectl get events -n marketing --field-selector involvedObject.name=signups-company-enrichment",
    "kubectl get dj signups-company-enrichment -n marketing -o jsonpath='{range .status.history[*]}"
    """{.time}{"  "}{.event}{"  "}{.message}{"\\n"}{end}'""",
    "kubectl get dj signups-company-enrichment -n marketing -o jsonpath='{.status.lastRun}'",
    "kubectl get pods -n marketing -l destinations.dev/job=signups-company-enrichment",
    "kubectl logs -n marketing -l destinations.dev/job=signups-company-enrichment --tail=50",
    "kubectl logs -n marketing -l destinations.dev/job=signups-company-enrichment,destinations.dev/run=1",
    "kubectl wait dj/high-value-users-to-events-api -n marketing --for=condition=Ready --timeout=60s",
    "kubectl get dj newsletter-to-mailchimp -n marketing -o jsonpath='{.status.lastRun.records}'",
    "kubectl get events -n marketing --field-selector involvedObject.kind=DestinationJob",
    "kubectl destinations status -n marketing",
    "kubectl destinations status newsletter-to-mailchimp -n marketing",
    'kubectl destinations pause newsletter-to-mailchimp -n marketing --reason "audience rebuild" --wait',
    "kubectl destinations resume newsletter-to-mailchimp -n marketing --wait",
}

_UNINSTALL = "deletes everything: an uninstall step for a real cluster"
_TEST_SUITE = "runs part of the test suite, which make test runs whole"
_SHIPPING = "needs a real cluster; tests/shipping renders and applies the same chart and kustomizations"
_PLUGIN = "tests/operator/test_plugin.py and tests/plugin/ run this plugin command on their own jobs"
ELSEWHERE = {
    "python3 -m pip install destinations-operator": "installs the package; the test set-up already did",
    "kubectl destinations new -n marketing": "asks in a terminal; tests/plugin/test_new.py drives it",
    "kubectl destinations new -n marketing --provider webhook --type export --new-authorization hook "
    "--method apiKey --credential apiKey=@./api-key.txt --set url=https://hooks.example.com/in "
    "--set batchSize=500 --source '{url: {url: https://data.example.com/vip.jsonl}}' "
    "--schedule 'cron 0 6 * * * Europe/Paris' --name vip-export -f vip-export.yaml": (
        "writes files; tests/plugin/test_new.py creates a job from flags alone"
    ),
    "kubectl destinations run newsletter-to-mailchimp -n marketing --wait": _PLUGIN,
    "kubectl destinations logs newsletter-to-mailchimp -n marketing --follow": _PLUGIN,
    "kubectl destinations report newsletter-to-mailchimp -n marketing": _PLUGIN,
    "kubectl destinations logs export --run 1": _PLUGIN,
    'psql "$WAREHOUSE" -c "SELECT record_key, reason, attempts, given_up FROM destinations_rejections '
    "WHERE job = 'newsletter-to-mailchimp'\"": (
        "needs the job's warehouse; tests/worker/test_rejections.py reads the same table"
    ),
    "make demo": "runs `destinations demo` until Ctrl-C; tests/demo runs the demo in --until-ready mode",
    "make test": "is the test suite itself (what CI runs through .ci/run)",
    'export KUBEBUILDER_ASSETS="$(setup-envtest use -p path 1.36.x)"': (
        "needs setup-envtest, which is not installed here; tests/sandbox/test_real_control_plane.py "
        "checks that KUBEBUILDER_ASSETS is honoured"
    ),
    ".venv/bin/pytest tests/operator/test_sync.py": _TEST_SUITE,
    "DESTINATIONS_CONTROL_PLANES=real .venv/bin/pytest tests/operator/test_sync.py": _TEST_SUITE,
    "DESTINATIONS_CONTROL_PLANES=embedded,real .venv/bin/pytest tests/sandbox": _TEST_SUITE,
    ".venv/bin/destinations sandbox --control-plane real --kubeconfig /tmp/real.kubeconfig": (
        "runs until Ctrl-C; tests/sandbox/test_command.py runs it on the real control plane"
    ),
    "kubectl --kubeconfig /tmp/real.kubeconfig get nodes": (
        "needs the sandbox above; tests/sandbox/test_command.py gets the nodes of its own"
    ),
    "helm install destinations-operator ./helm/destinations-operator --namespace destinations-system "
    "--create-namespace": _SHIPPING,
    "kubectl -n destinations-system rollout status deployment/destinations-operator": _SHIPPING,
    """--set-json 'watchNamespaces=["marketing","analytics"]'""": "a Helm option, not a command",
    "--set webhooks.enabled=true": "a Helm option, not a command",
    "--set webhooks.certificate=certManager": "a Helm option, not a command",
    "--set metrics.serviceMonitor.enabled=true": "a Helm option, not a command",
    "--set replicaCount=2": "a Helm option, not a command",
    "--set syncPods.maxConcurrentRuns=20 --set syncPods.purgeAfter=30d": "a Helm option, not a command",
    "kubectl apply -k manifests/": _SHIPPING,
    "kubectl apply -k manifests/overlays/webhooks": _SHIPPING,
    "kubectl apply --server-side -f crds/": _SHIPPING,
    "helm upgrade destinations-operator ./helm/destinations-operator -n destinations-system --reuse-values": (
        _SHIPPING
    ),
    "kubectl delete destinationjobs,authorizations --all -A": _UNINSTALL,
    "helm uninstall destinations-operator -n destinations-system": _SHIPPING,
    "kubectl delete crd destinationjobs.destinations.dev authorizations.destinations.dev": _UNINSTALL,
}


def _environment(kubeconfig: Path | None = None) -> dict[str, str]:
    path = os.pathsep.join(
        [str(REPOSITORY / ".tools" / "bin"), str(REPOSITORY / ".venv" / "bin"), os.environ.get("PATH", "")]
    )
    environment = {**os.environ, "PATH": path}
    if kubeconfig is not None:
        environment["KUBECONFIG"] = str(kubeconfig)
        environment["HOME"] = str(kubeconfig.parent)  # kubectl's cache stays out of the user's home
    return environment


def run_shell(text: str, cwd: Path, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", text],
        cwd=cwd,
        env=_environment(kubeconfig),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_command_in_the_docs_is_classified() -> None:
    unknown = [str(c) for c in all_commands() if c.text not in LOCAL | CLUSTER | set(ELSEWHERE)]
    assert not unknown, "classify these commands in tests/docs/test_commands.py:\n" + "\n".join(unknown)


def test_every_classified_command_still_appears_in_the_docs() -> None:
    shown = {command.text for command in all_commands()}
    stale = sorted((LOCAL | CLUSTER | set(ELSEWHERE)) - shown)
    assert not stale, f"no longer in the docs; remove them from the lists: {stale}"


@pytest.mark.parametrize(
    "command", [c for c in all_commands() if c.text in LOCAL], ids=lambda command: command.text
)
def test_local_command_runs(command: DocCommand) -> None:
    result = run_shell(command.text, REPOSITORY)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workdir = tmp_path_factory.mktemp("docs-demo")
    with Demo(workdir) as running:
        running.wait_until_ready(timeout=75)
        yield running


def _job_status(demo: Demo, name: str) -> dict[str, object]:
    result = run_shell(f"kubectl get dj {name} -n marketing -o json", REPOSITORY, demo.kubeconfig_path)
    if result.returncode != 0:
        return {}
    status: dict[str, object] = json.loads(result.stdout).get("status") or {}
    return status


@pytest.mark.integration
def test_cluster_commands_run_against_the_demo_in_the_order_the_docs_show_them(demo: Demo) -> None:
    failures: list[str] = []
    done: set[str] = set()
    for command in all_commands():
        if command.text not in CLUSTER or command.text in done:
            continue  # a command shown on two pages runs once: `create namespace` is not idempotent
        done.add(command.text)
        if "signups-company-enrichment" in command.text:
            # The logs section reads a failed run: wait for the example job's first run to finish.
            wait_until(
                lambda: _job_status(demo, "signups-company-enrichment").get("lastRun"),
                timeout=60,
                message="the first run of signups-company-enrichment",
            )
        result = run_shell(command.text, REPOSITORY, demo.kubeconfig_path)
        if result.returncode != 0:
            failures.append(f"{command}\n  exit {result.returncode}: {result.stderr.strip()}")
    assert not failures, "commands from the docs failed:\n" + "\n".join(failures)
    assert done == CLUSTER


@pytest.mark.integration
def test_troubleshooting_reasons_show_in_describe(demo: Demo) -> None:
    """`kubectl describe dj` (the first step on every docs page) shows the reason and message.

    The failing demo job retries every few seconds; between retries it backs off, and while a retry is
    in flight it shows RunInProgress, so the describe is repeated until it meets a back-off."""

    def backing_off() -> str:
        result = run_shell("kubectl describe dj crm-sync-failing -n demo", REPOSITORY, demo.kubeconfig_path)
        assert result.returncode == 0, result.stderr
        return result.stdout if "BackingOff" in result.stdout else ""

    shown = wait_until(backing_off, timeout=90, message="describe to show the job backing off")
    assert "retrying at" in shown
