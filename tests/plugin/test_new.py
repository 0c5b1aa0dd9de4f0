"""`kubectl destinations new`: the wizard in a real terminal, and the same creation from flags alone.

The wizard runs as the installed `kubectl-destinations` console script in a pseudo-terminal (pexpect),
typed at like a person would: a filter word and Enter picks from a list, text is typed, Ctrl-U clears a
prefilled default. Two whole creations: a webhook export with a new Authorization, applied; a Mailchimp
import with an existing Healthy Authorization, written to a file.
"""

from __future__ import annotations

import base64
import os
import re
import sys
from pathlib import Path

import pexpect
import pytest
import yaml

from destinations.sandbox import Sandbox
from tests.fixtures.sandbox import SandboxApi
from tests.plugin.invoke import invoke

PLUGIN = Path(sys.executable).parent / "kubectl-destinations"
SECRET_VALUE = "wizard-key-8c1e0b9d"
CLEAR_LINE = "\x15"  # Ctrl-U: discard the prefilled default
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def create(sandbox_api: SandboxApi, path: str, body: dict[str, object]) -> None:
    response = sandbox_api.post(path, body)
    assert response.status_code == 201, response.text


def namespace(sandbox_api: SandboxApi, name: str) -> None:
    create(
        sandbox_api,
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )


def wizard(sandbox: Sandbox, tmp_path: Path, *args: str) -> pexpect.spawn:
    environment = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "NO_COLOR": "1"}
    child = pexpect.spawn(
        str(PLUGIN),
        ["--kubeconfig", str(sandbox.kubeconfig_path), "-n", "team", "new", *args],
        env=environment,
        cwd=str(tmp_path),
        encoding="utf-8",
        dimensions=(50, 200),
        timeout=20,
    )
    child.logfile_read = (tmp_path / "terminal.log").open("w", encoding="utf-8")
    return child


def answer(child: pexpect.spawn, steps: list[tuple[str, str]]) -> str:
    """For each (prompt, keys): wait for the prompt, type the keys; then the rest of the session."""
    for prompt, keys in steps:
        child.expect_exact(prompt)
        child.send(keys)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return ANSI_ESCAPE.sub("", str(child.before))


def test_the_wizard_creates_a_webhook_export_with_a_new_authorization(
    sandbox: Sandbox, sandbox_api: SandboxApi, tmp_path: Path
) -> None:
    namespace(sandbox_api, "team")
    child = wizard(sandbox, tmp_path, "--apply")
    tail = answer(
        child,
        [
            ("Provider:", "webhook:\r"),
            ("Job type:", "export\r"),
            ("Authorization:", "new:\r"),
            ("Name of the new Authorization:", f"{CLEAR_LINE}hook\r"),
            ("Auth method:", "apiKey\r"),
            ("Secret key apiKey:", f"{SECRET_VALUE}\r"),
            ("url:", "https://hooks.example.com/in\r"),
            ("batchSize:", f"{CLEAR_LINE}500\r"),
            ("concurrency:", "\r"),
            ("apiKeyHeader:", "\r"),
            ("headers:", f"{CLEAR_LINE}{{X-Team: crm}}\r"),
            ("timeoutSeconds:", "\r"),
            ("Source:", "url:\r"),
            ("URL of the first page:", "https://data.example.com/vip.jsonl\r"),
            ("Schedule:", "every:\r"),
            ("Interval (e.g. 1h, 30m):", "30m\r"),
            ("Job name:", f"{CLEAR_LINE}vip-export\r"),
            ("Display name (optional):", "VIP customers\r"),
        ],
    )
    assert tail.splitlines()[-3:] == [
        "secret/hook-credentials created in team",
        "authorization/hook created in team",
        "destinationjob/vip-export created in team",
    ]
    assert SECRET_VALUE not in (tmp_path / "terminal.log").read_text(encoding="utf-8")
    job = sandbox_api.get("/apis/destinations.dev/v1/namespaces/team/destinationjobs/vip-export").json()
    assert {
        key: job["spec"][key] for key in ("displayName", "provider", "type", "authorizationRef", "config")
    } == {
        "displayName": "VIP customers",
        "provider": "webhook",
        "type": "export",
        "authorizationRef": {"name": "hook"},
        "config": {"url": "https://hooks.example.com/in", "batchSize": 500, "headers": {"X-Team": "crm"}},
    }
    assert job["spec"]["source"]["url"]["url"] == "https://data.example.com/vip.jsonl"
    assert job["spec"]["schedule"] == {"every": "30m"}
    authorization = sandbox_api.get("/apis/destinations.dev/v1/namespaces/team/authorizations/hook").json()
    assert {key: authorization["spec"][key] for key in ("provider", "method", "secretRef")} == {
        "provider": "webhook",
        "method": "apiKey",
        "secretRef": {"name": "hook-credentials"},
    }
    secret = sandbox_api.get("/api/v1/namespaces/team/secrets/hook-credentials").json()
    assert base64.b64decode(secret["data"]["apiKey"]).decode() == SECRET_VALUE


def test_the_wizard_writes_a_mailchimp_import_using_an_existing_healthy_authorization(
    sandbox: Sandbox, sandbox_api: SandboxApi, tmp_path: Path
) -> None:
    namespace(sandbox_api, "team")
    authorizations = "/apis/destinations.dev/v1/namespaces/team/authorizations"
    for name, health in (("mailchimp-main", "Healthy"), ("mailchimp-old", "Unhealthy")):
        create(
            sandbox_api,
            authorizations,
            {
                "apiVersion": "destinations.dev/v1",
                "kind": "Authorization",
                "metadata": {"name": name},
                "spec": {"provider": "mailchimp", "method": "apiKey", "secretRef": {"name": name}},
            },
        )
        response = sandbox_api.patch(f"{authorizations}/{name}/status", {"status": {"health": health}})
        assert response.status_code == 200, response.text
    child = wizard(sandbox, tmp_path, "-f", "members.yaml")
    answer(
        child,
        [
            ("Provider:", "mailchimp:\r"),
            ("Job type:", "import\r"),
            ("Authorization:", "mailchimp-main\r"),
            ("listId:", "a1b2c3d4e5\r"),
            ("status:", "subscribed\r"),
            ("pageSize:", "\r"),
            ("Sink:", "file:\r"),
            ("File path inside the volume:", "members.jsonl\r"),
            ("Format:", "jsonl\r"),
            ("Volume:", "persistentVolumeClaim:\r"),
            ("persistentVolumeClaim:", "exports\r"),
            ("Schedule:", "default:\r"),
            ("Job name:", f"{CLEAR_LINE}mailchimp-members\r"),
            ("Display name (optional):", "\r"),
        ],
    )
    terminal = (tmp_path / "terminal.log").read_text(encoding="utf-8")
    assert "note: Authorization mailchimp-old is Unhealthy, so it is not offered" in terminal
    assert (tmp_path / "members.yaml").read_text(encoding="utf-8") == (
        "apiVersion: destinations.dev/v1\n"
        "kind: DestinationJob\n"
        "metadata:\n"
        "  name: mailchimp-members\n"
        "  namespace: team\n"
        "spec:\n"
        "  provider: mailchimp\n"
        "  type: import\n"
        "  authorizationRef:\n"
        "    name: mailchimp-main\n"
        "  config:\n"
        "    listId: a1b2c3d4e5\n"
        "    status: subscribed\n"
        "  sink:\n"
        "    file:\n"
        "      path: members.jsonl\n"
        "      format: jsonl\n"
        "      volume:\n"
        "        persistentVolumeClaim: exports\n"
    )


def test_every_question_has_a_flag_so_scripts_need_no_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "token").write_text("refresh-me\n", encoding="utf-8")
    result = invoke(
        capsys,
        tmp_path / "no-kubeconfig",
        "new",
        "--provider", "webhook",
        "--type", "export",
        "--new-authorization", "hook",
        "--method", "basic",
        "--credential", "username=robot",
        "--credential", "password=@token",
        "--set", "url=https://hooks.example.com/in",
        "--set", "concurrency=2",
        "--source", "{warehouse: {connectionSecretRef: {name: warehouse, key: dsn}, table: vip}}",
        "--schedule", "cron 0 6 * * * Europe/Paris",
        "--name", "vip-export",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert result.out == (
        "apiVersion: destinations.dev/v1\n"
        "kind: Authorization\n"
        "metadata:\n"
        "  name: hook\n"
        "spec:\n"
        "  provider: webhook\n"
        "  method: basic\n"
        "  secretRef:\n"
        "    name: hook-credentials\n"
        "---\n"
        "apiVersion: destinations.dev/v1\n"
        "kind: DestinationJob\n"
        "metadata:\n"
        "  name: vip-export\n"
        "spec:\n"
        "  provider: webhook\n"
        "  type: export\n"
        "  authorizationRef:\n"
        "    name: hook\n"
        "  config:\n"
        "    url: https://hooks.example.com/in\n"
        "    concurrency: 2\n"
        "  source:\n"
        "    warehouse:\n"
        "      connectionSecretRef:\n"
        "        name: warehouse\n"
        "        key: dsn\n"
        "      table: vip\n"
        "  schedule:\n"
        "    cron: 0 6 * * *\n"
        "    timezone: Europe/Paris\n"
    )
    secret_file = tmp_path / "hook-credentials.yaml"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert yaml.safe_load(secret_file.read_text(encoding="utf-8"))["stringData"] == {
        "username": "robot",
        "password": "refresh-me",
    }
    assert "refresh-me" not in result.out + result.err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--type", "export"], "error: --provider is required without a terminal; one of: "),
        (
            ["--provider", "webhook", "--type", "import"],
            "error: --type 'import' is not one of: export, enrichment",
        ),
        (
            ["--provider", "webhook", "--type", "export", "--authorization", "hook", "--set", "url=https://x.io",
             "--set", "batchSize=0"],
            "error: --set batchSize=… '0': Input should be greater than or equal to 1",
        ),
        (
            ["--provider", "webhook", "--type", "export", "--authorization", "hook"],
            "error: config field url is required: pass --set url=VALUE",
        ),
        (
            ["--provider", "webhook", "--type", "export", "--authorization", "hook", "--set", "url=https://x.io",
             "--source", "{url: {url: https://x.io/a}}", "--schedule", "every fortnight"],
            "error: --schedule 'every fortnight': every: ",
        ),
    ],
)  # fmt: skip
def test_a_wrong_or_missing_flag_names_the_flag_and_what_it_accepts(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, tmp_path / "no-kubeconfig", "new", *flags)
    assert result.code == 2
    assert result.err.startswith(message)


def test_an_export_asks_for_the_sync_mode_and_mirror_needs_a_warehouse_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = [
        "new", "--provider", "mailchimp", "--type", "export", "--authorization", "mailchimp",
        "--set", "listId=a1b2c3", "--name", "newsletter",
    ]  # fmt: skip
    warehouse = "{warehouse: {connectionSecretRef: {name: warehouse, key: dsn}, table: subscribers}}"
    mirrored = invoke(capsys, tmp_path / "none", *common, "--source", warehouse, "--mode", "mirror")
    assert mirrored.code == 0, mirrored.err
    assert "  mode: mirror\n" in mirrored.out
    from_url = invoke(
        capsys,
        tmp_path / "none",
        *common,
        "--source",
        "{url: {url: https://x.io/a.jsonl}}",
        "--mode",
        "mirror",
    )
    assert from_url.code == 1
    assert from_url.err.startswith("error: the job does not validate:\n  DestinationJob newsletter: spec")
    assert "mirror" in from_url.err and "warehouse" in from_url.err
    unknown = invoke(capsys, tmp_path / "none", *common, "--source", warehouse, "--mode", "replace")
    assert (unknown.code, unknown.err) == (
        2,
        "error: --mode 'replace' is not one of: upsert, mirror, insert, update\n",
    )
