"""The sandbox kubelet: pods of the project's image run as local processes with realistic status.

Reference: https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/ (phases, container states,
activeDeadlineSeconds, termination), https://kubernetes.io/docs/tasks/debug/debug-application/determine-reason-pod-failure/
(termination messages) and https://kubernetes.io/docs/concepts/configuration/secret/ (Secret volumes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from destinations import DEFAULT_IMAGE
from destinations.sandbox import Sandbox
from destinations.sandbox._volumes import PodFilesystem
from tests.fixtures.sandbox import SandboxApi, wait_until

PODS = "/api/v1/namespaces/default/pods"


def _pod(name: str, script: str, **spec: Any) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": DEFAULT_IMAGE,
        "command": ["python", "-c", script],
        **spec.pop("container", {}),
    }
    return {"metadata": {"name": name}, "spec": {"restartPolicy": "Never", "containers": [container], **spec}}


def _wait_phase(sandbox_api: SandboxApi, name: str, *phases: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        pod: dict[str, Any] = sandbox_api.get(f"{PODS}/{name}").json()
        return pod if pod.get("status", {}).get("phase") in phases else None

    result: dict[str, Any] = wait_until(reached, message=f"pod {name} to reach {phases}")
    return result


def test_a_pod_runs_to_success_with_its_termination_message(sandbox_api: SandboxApi) -> None:
    script = "import os; open(os.environ['MSG'], 'w').write('{\"result\": \"succeeded\"}'); print('working')"
    env = [{"name": "MSG", "value": "/dev/termination-log"}]
    sandbox_api.post(PODS, _pod("ok", script, container={"env": env}))
    pod = _wait_phase(sandbox_api, "ok", "Succeeded")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    assert terminated["message"] == '{"result": "succeeded"}'
    assert terminated["startedAt"] and terminated["finishedAt"] and pod["status"]["startTime"]
    assert pod["spec"]["nodeName"] == "sandbox-node"
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions["PodScheduled"] == "True" and conditions["Ready"] == "False"


def test_a_failing_container_reports_its_exit_code_and_falls_back_to_logs(sandbox_api: SandboxApi) -> None:
    script = "import sys; print('boom happened'); sys.exit(3)"
    sandbox_api.post(
        PODS, _pod("bad", script, container={"terminationMessagePolicy": "FallbackToLogsOnError"})
    )
    pod = _wait_phase(sandbox_api, "bad", "Failed")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert "boom happened" in terminated["message"]


def test_a_running_pod_is_running_and_ready(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(PODS, _pod("long", "import time; time.sleep(60)"))
    pod = _wait_phase(sandbox_api, "long", "Running")
    status = pod["status"]["containerStatuses"][0]
    assert status["ready"] and "running" in status["state"] and pod["status"]["podIP"] == "127.0.0.1"


def test_a_pod_of_another_image_fails_to_pull(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(
        PODS,
        {"metadata": {"name": "foreign"}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}},
    )

    def waiting_reason() -> str | None:
        statuses = sandbox_api.get(f"{PODS}/foreign").json()["status"].get("containerStatuses") or [{}]
        reason: str | None = statuses[0].get("state", {}).get("waiting", {}).get("reason")
        return reason if reason in ("ErrImagePull", "ImagePullBackOff") else None

    wait_until(waiting_reason)
    assert sandbox_api.get(f"{PODS}/foreign").json()["status"]["phase"] == "Pending"


def test_secret_and_configmap_volumes_are_read_only_files_at_rewritten_paths(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(
        "/api/v1/namespaces/default/secrets", {"metadata": {"name": "creds"}, "stringData": {"apiKey": "k3y"}}
    )
    sandbox_api.post(
        "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "conf"}, "data": {"mode": "fast"}}
    )
    script = (
        "import os, stat, sys\n"
        "key = open(sys.argv[1]).read(); mode = open(os.environ['CONF'] + '/mode').read()\n"
        "perm = stat.S_IMODE(os.stat(sys.argv[1]).st_mode)\n"
        "open('/dev/termination-log', 'w').write('unreachable') if "
        "os.path.exists('/dev/termination-log') else None\n"
        "open(os.environ['MSG'], 'w').write(f'{key} {mode} {oct(perm)} {os.environ[\"POD\"]}')\n"
    )
    container = {
        "command": ["python", "-c", script, "/var/run/secrets/destinations/apiKey"],
        "env": [
            {"name": "CONF", "value": "/etc/destinations"},
            {"name": "MSG", "value": "/dev/termination-log"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "volumeMounts": [
            {"name": "creds", "mountPath": "/var/run/secrets/destinations", "readOnly": True},
            {"name": "conf", "mountPath": "/etc/destinations"},
        ],
    }
    volumes = [
        {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
        {"name": "conf", "configMap": {"name": "conf"}},
    ]
    sandbox_api.post(PODS, _pod("files", "", container=container, volumes=volumes))
    pod = _wait_phase(sandbox_api, "files", "Succeeded", "Failed")
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"] == "k3y fast 0o400 files"


def test_active_deadline_seconds_kills_the_pod(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(
        PODS,
        _pod("slow", "import time; time.sleep(60)", activeDeadlineSeconds=1, terminationGracePeriodSeconds=1),
    )
    pod = _wait_phase(sandbox_api, "slow", "Failed")
    assert pod["status"]["reason"] == "DeadlineExceeded"


def test_deleting_a_pod_stops_its_process_then_removes_it(sandbox_api: SandboxApi) -> None:
    script = (
        "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: "
        "sys.exit(0))\nprint('up', flush=True)\ntime.sleep(60)"
    )
    sandbox_api.post(PODS, _pod("victim", script))
    _wait_phase(sandbox_api, "victim", "Running")
    deleted = sandbox_api.delete(f"{PODS}/victim").json()
    assert (
        deleted["metadata"]["deletionTimestamp"] and deleted["metadata"]["deletionGracePeriodSeconds"] == 30
    )
    wait_until(lambda: sandbox_api.get(f"{PODS}/victim").status_code == 404, message="the pod to go")


def test_evicting_a_pod_marks_it_failed_with_reason_evicted(
    sandbox: Sandbox, sandbox_api: SandboxApi
) -> None:
    sandbox_api.post(PODS, _pod("evictee", "import time; time.sleep(60)"))
    _wait_phase(sandbox_api, "evictee", "Running")
    sandbox.evict_pod("default", "evictee")
    pod = sandbox_api.get(f"{PODS}/evictee").json()
    assert (pod["status"]["phase"], pod["status"]["reason"]) == ("Failed", "Evicted")
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137


def test_logs_are_served_with_tail_lines(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(PODS, _pod("chatty", "for i in range(5): print('line', i)"))
    _wait_phase(sandbox_api, "chatty", "Succeeded")
    assert sandbox_api.get(f"{PODS}/chatty/log").text == "".join(f"line {i}\n" for i in range(5))
    assert sandbox_api.get(f"{PODS}/chatty/log", params={"tailLines": "2"}).text == "line 3\nline 4\n"


def test_follow_streams_logs_until_the_container_exits(sandbox_api: SandboxApi) -> None:
    sandbox_api.post(
        PODS,
        _pod("stream", "import time\nfor i in range(3):\n    print('tick', i, flush=True); time.sleep(0.1)"),
    )
    _wait_phase(sandbox_api, "stream", "Running", "Succeeded")
    text = sandbox_api.get(f"{PODS}/stream/log", params={"follow": "true"}).text
    assert text == "tick 0\ntick 1\ntick 2\n"


def test_an_unknown_command_fails_like_a_missing_executable(sandbox_api: SandboxApi) -> None:
    pod = _pod("nocmd", "")
    pod["spec"]["containers"][0]["command"] = ["no-such-binary"]
    sandbox_api.post(PODS, pod)
    pod = _wait_phase(sandbox_api, "nocmd", "Failed")
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "StartError"


def test_a_directory_holding_several_mounts_is_rewritten_like_the_mounts(tmp_path: Path) -> None:
    """A real container has the parent directories of its mounts; the sandbox maps them too."""
    filesystem = PodFilesystem(root=tmp_path)
    filesystem.add_mapping("/var/run/app/data/source")
    filesystem.add_mapping("/var/run/app/data/sink")
    rewritten = filesystem.rewrite("/var/run/app/data")
    assert rewritten == str(tmp_path / "fs" / "var/run/app/data")
    assert filesystem.rewrite("/var/run/app/data/source") == str(tmp_path / "fs" / "var/run/app/data/source")
    assert filesystem.rewrite("/var") == "/var"
