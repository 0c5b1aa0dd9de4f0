"""A bare kopf operator works against the sandbox unchanged.

kopf relies on discovery, list+watch with resume, merge patches of the main resource and of the
status subresource, finalizers and deletionTimestamp, and Events; see
https://kubernetes.io/docs/reference/using-api/api-concepts/ and
https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from destinations.sandbox import Sandbox
from tests.fixtures.sandbox import SandboxApi, wait_until

from .conftest_helpers import DATA, WIDGETS, create_widget_crd, widget


def test_kopf_operator_sees_create_update_delete_and_manages_finalizers(
    sandbox: Sandbox, sandbox_api: SandboxApi, tmp_path: Path
) -> None:
    create_widget_crd(sandbox_api)
    markers = tmp_path / "markers"
    markers.mkdir()
    environment = {**os.environ, "KUBECONFIG": str(sandbox.kubeconfig_path), "MARKERS": str(markers)}
    operator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kopf",
            "run",
            "--standalone",
            "--namespace",
            "default",
            str(DATA / "kopf_handlers.py"),
        ],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert sandbox_api.post(WIDGETS, widget("alpha", size=2)).status_code == 201
        wait_until(lambda: (markers / "created-alpha").exists(), message="kopf's create handler")

        def status_written() -> bool:
            obj = sandbox_api.get(f"{WIDGETS}/alpha").json()
            return obj.get("status", {}).get("message") == "created alpha"

        wait_until(status_written, message="kopf to patch the status")
        finalizers = sandbox_api.get(f"{WIDGETS}/alpha").json()["metadata"].get("finalizers", [])
        assert "sandbox.test/kopf-finalizer" in finalizers

        assert sandbox_api.patch(f"{WIDGETS}/alpha", {"spec": {"size": 5}}).status_code == 200
        wait_until(lambda: (markers / "updated-alpha-5").exists(), message="kopf's update handler")

        assert sandbox_api.delete(f"{WIDGETS}/alpha").status_code == 200
        wait_until(lambda: (markers / "deleted-alpha").exists(), message="kopf's delete handler")
        wait_until(
            lambda: sandbox_api.get(f"{WIDGETS}/alpha").status_code == 404,
            message="the finalizer to be removed",
        )
    finally:
        operator.terminate()
        output, _ = operator.communicate(timeout=30)
    assert "Traceback" not in output, output
