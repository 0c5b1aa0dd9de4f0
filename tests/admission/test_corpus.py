"""Every rule has a bad manifest in `corpus/`, refused by `kubectl apply` with a message naming the field,
the value and what is accepted; the examples of the repository are accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.admission.conftest import CORPUS_NAMESPACE
from tests.admission.harness import REPO_ROOT, AdmissionCluster
from tests.fixtures.tools import EXAMPLE_JOBS

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.yaml"))
EXPECT = "# expect: "
REFUSED_BY_API_SERVER = "# refused-by: api-server"


def expected_message(path: Path) -> str:
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith(EXPECT), f"{path.name} must start with '{EXPECT}<message fragment>'"
    return first_line.removeprefix(EXPECT)


def refused_by_the_api_server(path: Path) -> bool:
    """Rules the CRD's schema already states are refused by the API server itself, which validates an
    object against its schema before it calls the validating webhooks (kube-apiserver's order)."""
    return path.read_text(encoding="utf-8").splitlines()[1].startswith(REFUSED_BY_API_SERVER)


def test_the_corpus_has_a_manifest_for_each_of_at_least_thirty_rules() -> None:
    assert len(CORPUS) >= 30
    assert all(expected_message(path) for path in CORPUS)


@pytest.mark.parametrize("manifest", CORPUS, ids=lambda path: path.stem)
def test_bad_manifest_is_refused_with_its_message(cluster: AdmissionCluster, manifest: Path) -> None:
    result = cluster.kubectl("alice", "apply", "-f", str(manifest), namespace=CORPUS_NAMESPACE)

    assert result.returncode != 0, result.stdout
    if refused_by_the_api_server(manifest):
        assert " is invalid: " in result.stderr and "admission webhook" not in result.stderr
    else:
        assert "admission webhook" in result.stderr and "denied the request" in result.stderr
    assert expected_message(manifest) in result.stderr


def test_the_examples_are_accepted(cluster: AdmissionCluster) -> None:
    cluster.namespace("marketing")
    examples = REPO_ROOT / "examples"

    result = cluster.kubectl(
        "alice",
        "apply",
        "-f",
        str(examples / "authorizations"),
        "-f",
        str(examples / "jobs"),
        namespace="marketing",
    )

    assert result.returncode == 0, result.stderr
    created = sorted(line for line in result.stdout.splitlines() if line.startswith("destinationjob."))
    assert created == [f"destinationjob.destinations.dev/{name} created" for name in EXAMPLE_JOBS]
