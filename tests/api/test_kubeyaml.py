"""`destinations validate` reads YAML exactly as kubectl does (issue 13, item 3).

CORPUS holds each plain scalar with the JSON the real kubectl 1.33 sends for it (recorded with
`kubectl create --dry-run=client -o json` on a DestinationJob's free-form `config`): YAML 1.1 words,
Go number syntax, timestamps kept as text. The loader must give the same; one test asks kubectl again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from destinations import kubeyaml
from destinations.validate import validate_sources
from tests.fixtures.sandbox import Kubectl

CORPUS = [
    ("no", "false"),
    ("on", "true"),
    ("off", "false"),
    ("yes", "true"),
    ("y", "true"),
    ("n", "false"),
    ("Y", "true"),
    ("N", "false"),
    ("True", "true"),
    ("TRUE", "true"),
    ("tRUE", '"tRUE"'),
    ("true", "true"),
    ("NO", "false"),
    ("No", "false"),
    ("oN", '"oN"'),
    ("1e3", "1000"),
    ("1E3", "1000"),
    ("1.5e3", "1500"),
    ("72044e0112", "7.2044e+116"),
    ("1e400", '"1e400"'),
    ("0x1F", "31"),
    ("0X1F", "31"),
    ("0o17", "15"),
    ("017", "15"),
    ("0b101", "5"),
    ("1_000", "1000"),
    ("1,000", '"1,000"'),
    ("~", "null"),
    ("null", "null"),
    ("Null", "null"),
    ("NULL", "null"),
    ("nULL", '"nULL"'),
    ("2026-11-26", '"2026-11-26"'),
    ("2026-11-26T10:00:00Z", '"2026-11-26T10:00:00Z"'),
    ("2026-1-6", '"2026-1-6"'),
    ("12:30", '"12:30"'),
    ("1:20:30", '"1:20:30"'),
    ("+12", "12"),
    ("-0", "0"),
    ("0.", "0"),
    ("1.", "1"),
    ("'1'", '"1"'),
    ("08", "8"),
    ("09", "9"),
    ("0777", "511"),
    ("-017", "-15"),
    (".5", "0.5"),
    ("+.5", "0.5"),
    ("-.5", "-0.5"),
    ("1e", '"1e"'),
    ("0xg", '"0xg"'),
    ("1__0", "10"),
    ("0o8", '"0o8"'),
    ("+1_0", "10"),
    ("12e03", "12000"),
    ("12e+03", "12000"),
    ("1.2e-3", "0.0012"),
    ("3.", "3"),
    ("123456789012345678901234567890", "1.2345678901234568e+29"),
    ("9223372036854775807", "9223372036854775807"),
    ("9223372036854775808", "9223372036854776000"),
    ("0x_1F", "31"),
    ("1_0.5", "10.5"),
    ("0b_1", "1"),
    ("0x", '"0x"'),
    ("-0x1F", "-31"),
    ("+0x1F", "31"),
    (".5_0", "0.5"),
    ("1_000.5", "1000.5"),
    ("0_7", "7"),
    ("00", "0"),
    ("0", "0"),
    ("+", '"+"'),
    ("-.", '"-."'),
    ("0x1F_", "31"),
    ("Off", "false"),
    ("OFF", "false"),
    ("oFF", '"oFF"'),
    ("yES", '"yES"'),
    ("Yes", "true"),
    ("1:2", '"1:2"'),
    ("0.1e1", "1"),
    ("1e-400", "0"),
    ("-1e400", '"-1e400"'),
    ("2026-11-26 10:00:00", '"2026-11-26 10:00:00"'),
    ('"quoted"', '"quoted"'),
    ("!!str 12", '"12"'),
    ('!!int "12"', "12"),
    ("|-", '""'),
]
#: Plain scalars kubectl cannot turn into JSON at all.
REFUSED = [".inf", "-.inf", ".Inf", ".NaN"]


def _same_json(left: object, right: object) -> bool:
    """Equal as JSON values: numbers compare by value (int or float alike), never equal to booleans."""
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, int | float) != isinstance(right, int | float):
        return False
    if isinstance(left, float) or isinstance(right, float):  # Go prints big floats as integers
        return float(left) == float(right)  # type: ignore[arg-type]
    return left == right


@pytest.mark.parametrize(("written", "sent"), CORPUS)
def test_a_scalar_reads_as_kubectl_sends_it(written: str, sent: str) -> None:
    value = kubeyaml.load(f"v: {written}")["v"]
    assert _same_json(value, json.loads(sent)), f"{written!r}: {value!r}, kubectl sends {sent}"


@pytest.mark.parametrize("written", REFUSED)
def test_a_scalar_kubectl_cannot_send_is_refused(written: str) -> None:
    with pytest.raises(kubeyaml.KubectlYamlError, match="not a JSON number"):
        kubeyaml.load(f"v: {written}")


@pytest.mark.parametrize(
    ("written", "key"),
    [("on", "true"), ("y", "true"), ("1", "1"), ("1.5", "1.5"), ("1e3", "1000"), ("0x1F", "31"),
     ("1_0", "10"), ("2026-11-26", "2026-11-26"), ("72044e0112", ".inf")],
)  # fmt: skip
def test_a_map_key_reads_as_kubectl_writes_it(written: str, key: str) -> None:
    assert list(kubeyaml.load(f"{written}: x")) == [key]


def test_the_corpus_agrees_with_the_real_kubectl(kubectl: Kubectl, tmp_path: Path) -> None:
    documents = [
        f"apiVersion: destinations.dev/v1\nkind: DestinationJob\nmetadata:\n  name: c{index}\n"
        f"spec:\n  config:\n    v: {written}\n"
        for index, (written, _) in enumerate(CORPUS)
    ]
    manifest = tmp_path / "corpus.yaml"
    manifest.write_text("---\n".join(documents), encoding="utf-8")
    result = kubectl("create", "--dry-run=client", "-o", "json", "--validate=false", "-f", str(manifest))
    items, decoder, position = [], json.JSONDecoder(), 0  # one JSON object per document, back to back
    while result.stdout[position:].strip():
        item, position = decoder.raw_decode(result.stdout, position)
        items.append(item)
        while position < len(result.stdout) and result.stdout[position].isspace():
            position += 1
    by_name = {item["metadata"]["name"]: item["spec"]["config"].get("v") for item in items}
    for index, (written, sent) in enumerate(CORPUS):
        from_kubectl = by_name[f"c{index}"]
        assert _same_json(from_kubectl, json.loads(sent)), f"kubectl changed: {written!r} -> {from_kubectl!r}"
        ours = kubeyaml.load(documents[index])["spec"]["config"]["v"]
        assert _same_json(ours, from_kubectl), f"{written!r}: ours {ours!r}, kubectl {from_kubectl!r}"


def _validate(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "job.yaml"
    path.write_text(text, encoding="utf-8")
    return validate_sources([str(path)])[1]


JOB = """apiVersion: destinations.dev/v1
kind: DestinationJob
metadata: {name: audience, namespace: marketing}
spec:
  provider: mailchimp
  type: export
  authorizationRef: {name: mc}
  source: {url: {url: "https://example.com/members"}}
"""


def test_a_number_where_text_is_expected_says_which_text_to_quote(tmp_path: Path) -> None:
    problems = _validate(tmp_path, JOB + "  config: {listId: 72044e0112}\n")
    assert problems == [
        f"{tmp_path / 'job.yaml'}: DestinationJob/audience: spec.config.listId: must be text (a string), "
        "not the number 7.2044e+116: unquoted in YAML, kubectl sends it as a number; "
        "write it in quotes: '72044e0112' (got 7.2044e+116)"
    ]


def test_a_boolean_word_where_text_is_expected_says_to_quote_it(tmp_path: Path) -> None:
    problems = _validate(tmp_path, JOB + "  config: {listId: 'x1'}\n  displayName: no\n")
    assert len(problems) == 1
    assert "spec.displayName: must be text (a string), not the boolean false" in problems[0]
    assert "write it in quotes: 'no'" in problems[0]


def test_a_date_where_text_is_expected_stays_text_as_in_the_cluster(tmp_path: Path) -> None:
    assert _validate(tmp_path, JOB + "  config: {listId: 'x1'}\n  description: 2026-11-26\n") == []
