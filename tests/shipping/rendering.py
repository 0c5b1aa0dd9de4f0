"""Render the chart with the real helm and the kustomizations with the real kubectl, and walk the result."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "helm" / "destinations-operator"
MANIFESTS = REPO_ROOT / "manifests"
RELEASE = "destinations-operator"
NAMESPACE = "destinations-system"

Manifest = dict[str, Any]


def run(command: list[str | Path], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}")
    return result


def documents(stream: str) -> list[Manifest]:
    return [document for document in yaml.safe_load_all(stream) if document]


def helm_template_command(
    helm: Path, values: dict[str, Any], values_file: Path, *extra: str
) -> list[str | Path]:
    values_file.write_text(json.dumps(values), encoding="utf-8")
    return [helm, "template", RELEASE, CHART, "--namespace", NAMESPACE, "--values", values_file, *extra]


def helm_template(helm: Path, values: dict[str, Any], values_file: Path) -> list[Manifest]:
    """The chart's objects (hooks included) for these values."""
    return documents(run(helm_template_command(helm, values, values_file)).stdout)


def kustomize(kubectl: Path, directory: Path) -> list[Manifest]:
    return documents(run([kubectl, "kustomize", directory]).stdout)


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [manifest for manifest in manifests if manifest["kind"] == kind]


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [m for m in of_kind(manifests, kind) if name is None or m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    """(object name, pod spec) of every workload."""
    for manifest in manifests:
        if manifest["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}:
            yield manifest["metadata"]["name"], manifest["spec"]["template"]["spec"]
        elif manifest["kind"] == "Pod":
            yield manifest["metadata"]["name"], manifest["spec"]


def containers(pod_spec: Manifest) -> list[Manifest]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def environment(container: Manifest) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def rbac_rules(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for manifest in manifests:
        if manifest["kind"] in {"ClusterRole", "Role"}:
            for rule in manifest.get("rules") or []:
                yield f"{manifest['kind']}/{manifest['metadata']['name']}", rule
