"""`kubectl destinations new` with oauth2: an access token, or a refresh token with its client."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.plugin.invoke import invoke

COMMON = [
    "new", "--provider", "salesforce", "--type", "import", "--new-authorization", "salesforce",
    "--method", "oauth2", "--set", "query=SELECT Id FROM Contact",
    "--sink", "{file: {path: out.jsonl, volume: {persistentVolumeClaim: data}}}", "--name", "contacts",
]  # fmt: skip


def test_oauth2_without_any_token_names_the_keys_it_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, tmp_path / "no-kubeconfig", *COMMON)
    assert result.code == 2
    assert result.err.startswith(
        "error: --credential accessToken=VALUE is required for method oauth2 "
        "(oauth2: accessToken, or refreshToken with clientId and clientSecret)"
    )


def test_oauth2_with_a_refresh_token_but_no_client_secret_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(
        capsys,
        tmp_path / "no-kubeconfig",
        *COMMON,
        "--credential",
        "refreshToken=r",
        "--credential",
        "clientId=c",
    )
    assert result.code == 2
    assert result.err.startswith("error: --credential clientSecret=VALUE is required for method oauth2")


def test_oauth2_with_a_refresh_token_and_its_client_writes_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    credentials = [
        "--credential",
        "refreshToken=r",
        "--credential",
        "clientId=c",
        "--credential",
        "clientSecret=s",
    ]
    result = invoke(capsys, tmp_path / "no-kubeconfig", *COMMON, *credentials)
    assert result.code == 0, result.err
    secret = yaml.safe_load((tmp_path / "salesforce-credentials.yaml").read_text(encoding="utf-8"))
    assert secret["stringData"] == {"refreshToken": "r", "clientId": "c", "clientSecret": "s"}
