"""Credentials in every form they reach a run are masked wherever the run's words are shown.

Unit cases of `destinations.redaction` with literal expectations, then canaries through real worker
processes: the pod log (stdout and stderr) and the termination message, from which the operator
writes the job's status and its Error Event, must not carry the canary in any of the forms issue 13
lists: a URL's user-info, its query, a header, a connection string.
"""

from __future__ import annotations

import json

import pytest

from destinations.redaction import credential_fragments, redact_credentials, spec_credentials
from destinations.worker.log import Scrubber
from tests.providers.servers import FakeServer, Request, Response, closed_port_url
from tests.worker.conftest import Finished, WorkerPod, file_endpoint, job, warehouse

CANARY = "canary-5e1f-do-not-leak"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "no answer from GET https://jane:s3cret@api.example/x?token=abc&page=2 (refused)",
            "no answer from GET https://jane:***@api.example/x?token=***&page=*** (refused)",
        ),
        ("see https://jane@api.example/x", "see https://jane@api.example/x"),
        ('(got "https://u:pw@h/x?t=1")', '(got "https://u:***@h/x?t=***")'),
        ('{"dsn": "password=abc123"}', '{"dsn": "password=***"}'),
        ("postgresql://app:pw-1@db:5432/crm failed", "postgresql://app:***@db:5432/crm failed"),
        ("invalid dsn: host=db password='p w' user=u", "invalid dsn: host=db password=*** user=u"),
        ("invalid dsn: host=db password=hunter2 port=5", "invalid dsn: host=db password=*** port=5"),
        ("echo: Authorization: Bearer eyJhbGciOi.x1", "echo: Authorization: Bearer ***"),
        ("the token expired; Token refresh failed", "the token expired; Token refresh failed"),
        ("HTTP 503 from POST http://hook.example/records", "HTTP 503 from POST http://hook.example/records"),
    ],
)
def test_credentials_in_text_are_masked(text: str, masked: str) -> None:
    assert redact_credentials(text) == masked


def test_the_secret_parts_of_urls_and_connection_strings_are_known() -> None:
    assert credential_fragments("postgresql://app:pw-1@db/crm?sslpassword=k-99") == ["pw-1", "k-99"]
    assert credential_fragments("host=db password=hunter2 user=app") == ["hunter2"]
    assert credential_fragments("just-a-token") == []


def test_the_secret_parts_of_a_spec_are_found_anywhere_in_it() -> None:
    spec = {
        "config": {"url": "https://u:p-in-url@hook.example/x", "headers": {"X-Token": "t-in-header"}},
        "source": {"url": {"url": "https://data.example/rows?api_key=k-in-query"}},
        "displayName": "no secret here",
    }
    assert spec_credentials(spec) == ["p-in-url", "t-in-header", "k-in-query"]


def test_the_scrubber_masks_a_connection_strings_password_quoted_alone() -> None:
    scrub = Scrubber([f"postgresql://app:{CANARY}@db/crm"])
    assert scrub(f'missing "=" after "{CANARY}" in connection info string') == (
        'missing "=" after "***" in connection info string'
    )


# ---------------------------------------------------------------------------------------- canaries


def assert_nowhere(done: Finished) -> None:
    shown = done.stdout + done.stderr + done.termination_log
    assert CANARY not in shown
    assert done.report.get("result") == "failed", (done.exit_code, done.stderr[-2000:])


def write_people(pod: WorkerPod) -> None:
    (pod.source_dir / "people.jsonl").write_text(json.dumps({"email": "a@example.com"}) + "\n")


def test_a_password_in_an_unreachable_source_url(pod: WorkerPod) -> None:
    url = closed_port_url().replace("http://", f"http://reader:{CANARY}@") + "/people"
    done = pod.run(job("webhook", "export", {"url": "http://127.0.0.1:9/x"}, source={"url": {"url": url}}))
    assert_nowhere(done)
    assert "from the source http://reader:***@127.0.0.1:" in done.report["message"]


def test_a_token_in_the_query_of_an_unreachable_source_url(pod: WorkerPod) -> None:
    url = f"{closed_port_url()}/people?api_key={CANARY}"
    done = pod.run(job("webhook", "export", {"url": "http://127.0.0.1:9/x"}, source={"url": {"url": url}}))
    assert_nowhere(done)


def test_a_password_in_a_failing_webhook_url(pod: WorkerPod) -> None:
    write_people(pod)
    with FakeServer(lambda request: Response(404, "no such hook")) as server:
        url = server.url.replace("http://", f"http://sender:{CANARY}@") + "/hook"
        done = pod.run(job("webhook", "export", {"url": url}, source=file_endpoint("people.jsonl")))
    assert_nowhere(done)


def test_a_header_value_echoed_by_the_receiver(pod: WorkerPod) -> None:
    write_people(pod)

    def echo(request: Request) -> Response:
        return Response(500, f"refused, your token was {request.header('x-token')}")

    with FakeServer(echo) as server:
        done = pod.run(
            job(
                "webhook",
                "export",
                {"url": server.url, "headers": {"X-Token": CANARY}},
                source=file_endpoint("people.jsonl"),
            ),
            extra=["--batch-size", "1"],
        )
    assert_nowhere(done)


def test_a_password_in_an_unreachable_warehouse_dsn(pod: WorkerPod) -> None:
    port = closed_port_url().rsplit(":", 1)[1]
    pod.secret("warehouse", {"dsn": f"postgresql://app:{CANARY}@127.0.0.1:{port}/crm"})
    done = pod.run(
        job("webhook", "export", {"url": "http://127.0.0.1:9/x"}, source=warehouse(table="people"))
    )
    assert CANARY not in done.stdout + done.stderr + done.termination_log
    assert done.report["result"] == "failed"


def test_a_password_in_a_malformed_keyword_dsn(pod: WorkerPod) -> None:
    pod.secret("warehouse", {"dsn": f"host=127.0.0.1 password={CANARY} port"})
    done = pod.run(
        job("webhook", "export", {"url": "http://127.0.0.1:9/x"}, source=warehouse(table="people"))
    )
    assert CANARY not in done.stdout + done.stderr + done.termination_log
    assert done.report["result"] == "failed"
