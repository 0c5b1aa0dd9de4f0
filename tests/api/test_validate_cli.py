"""`destinations validate FILE...`: one clear line per problem, exit status 1, never a traceback."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from destinations.cli import main

VALID_JOB = """\
apiVersion: destinations.dev/v1
kind: DestinationJob
metadata:
  name: newsletter
  namespace: marketing
spec:
  provider: mailchimp
  type: export
  authorizationRef: {name: mailchimp}
  source:
    warehouse:
      connectionSecretRef: {name: warehouse, key: dsn}
      table: customers
  config:
    listId: abc123
  schedule:
    every: 6h
"""


def run_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> tuple[int, list[str]]:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(text, encoding="utf-8")
    status = main(["validate", str(manifest)])
    output = capsys.readouterr().out
    assert "Traceback" not in output
    return status, [line.replace(f"{manifest}: ", "") for line in output.splitlines()]


def test_a_valid_file_prints_one_ok_line_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_validate(tmp_path, capsys, VALID_JOB) == (0, ["OK: 1 object(s) in 1 file(s) are valid"])


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            ("spec:\n", "spec: [unclosed\n"),
            "is not valid YAML: expected ',' or ']', but got ':' at line 7, column 11",
            id="malformed-yaml",
        ),
        pytest.param(
            ("kind: DestinationJob", "kind: DataJob"),
            "DataJob/newsletter: kind: is not a kind of destinations.dev/v1; expected Authorization or "
            'DestinationJob (got "DataJob")',
            id="unknown-kind",
        ),
        pytest.param(
            ("destinations.dev/v1", "destinations.dev/v2"),
            'DestinationJob/newsletter: apiVersion: must be destinations.dev/v1 (got "destinations.dev/v2")',
            id="wrong-api-version",
        ),
        pytest.param(
            ("  authorizationRef: {name: mailchimp}\n", ""),
            "DestinationJob/newsletter: spec.authorizationRef: is required",
            id="missing-required-field",
        ),
        pytest.param(
            ("every: 6h", "every: 6 hours"),
            "DestinationJob/newsletter: spec.schedule.every: '6 hours' is not a duration such as 90s, 15m, "
            "1h30m, 10h or 90d (units ms, s, m, h, d)",
            id="bad-duration",
        ),
        pytest.param(
            ("every: 6h", 'cron: "0 6 * *"'),
            "DestinationJob/newsletter: spec.schedule.cron: cron '0 6 * *' is not a valid five-field cron "
            "expression such as '0 6 * * *'",
            id="bad-cron",
        ),
        pytest.param(
            ("every: 6h", 'cron: "0 6 * * *"\n    timezone: Europe/Pariss'),
            "DestinationJob/newsletter: spec.schedule.timezone: timezone 'Europe/Pariss' is not an IANA time "
            "zone such as 'Europe/Paris' or 'UTC'",
            id="bad-time-zone",
        ),
        pytest.param(
            ("provider: mailchimp", "provider: mailchump"),
            "DestinationJob/newsletter: spec.provider: is not a known provider; known providers: facebook, "
            'google, mailchimp, salesforce, webhook (got "mailchump")',
            id="unknown-provider",
        ),
        pytest.param(
            ("type: export", "type: exports"),
            "DestinationJob/newsletter: spec.type: must be one of: import, export, enrichment "
            '(got "exports")',
            id="unknown-job-type",
        ),
        pytest.param(
            ("{name: mailchimp}", "{name: mailchimp, namespace: default}"),
            "DestinationJob/newsletter: spec.authorizationRef.namespace: must be the object's own namespace "
            "'marketing' or left out: references to other namespaces are refused (got \"default\")",
            id="cross-namespace-reference",
        ),
        pytest.param(
            ("listId: abc123", "listId: abc123\n    statusIfNew: maybe"),
            "DestinationJob/newsletter: spec.config.statusIfNew: must be one of: subscribed, pending, "
            'transactional (got "maybe")',
            id="bad-config-field",
        ),
    ],
)
def test_each_bad_input_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str], expected: str
) -> None:
    old, new = edit
    assert old in VALID_JOB
    assert run_validate(tmp_path, capsys, VALID_JOB.replace(old, new, 1)) == (1, [expected])


def test_secrets_in_the_same_file_are_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {apiKey: x}\n---\n"
    assert run_validate(tmp_path, capsys, secret + VALID_JOB)[0] == 0


def test_a_job_whose_authorization_in_the_files_is_for_another_provider_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    authorization = (
        "apiVersion: destinations.dev/v1\nkind: Authorization\n"
        "metadata: {name: mailchimp, namespace: marketing}\nspec: {provider: webhook, method: none}\n---\n"
    )
    status, lines = run_validate(tmp_path, capsys, authorization + VALID_JOB)
    assert status == 1
    assert lines == [
        "DestinationJob/newsletter: spec.authorizationRef.name: names an Authorization for provider "
        "'webhook'; the job needs one for provider 'mailchimp' (got \"mailchimp\")"
    ]


def test_a_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "absent.yaml")]) == 1
    assert (
        capsys.readouterr().out == f"{tmp_path / 'absent.yaml'}: cannot be read: No such file or directory\n"
    )


def test_a_document_that_is_not_an_object_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_validate(tmp_path, capsys, "- just\n- a list\n") == (
        1,
        ["document 1: is not a Kubernetes object (a mapping with apiVersion, kind, metadata, spec)"],
    )


def test_dash_reads_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(VALID_JOB))
    assert main(["validate", "-"]) == 0
    assert capsys.readouterr().out.startswith("OK:")


def test_the_installed_command_reports_without_a_traceback(tmp_path: Path) -> None:
    manifest = tmp_path / "broken.yaml"
    manifest.write_text("kind: [\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "destinations", "validate", str(manifest)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.startswith(f"{manifest}: is not valid YAML")
