"""`kubectl destinations report JOB [-f FILE]`: a zip for a support ticket, with no secret in it.

The bundle holds the job, its Authorization, the *names* of the keys of every Secret the job uses
(never their values), the job's sync pods (spec and status) and their logs, the job's Events, and the
versions of the plugin, the API server and the operator Deployment. Before anything is written, every
value of those Secrets is replaced by `***` wherever it appears (a key pasted into a description, a
token a provider echoed), values of credential-looking keys are masked, and `managedFields` are dropped.
A part the caller may not read (no permission on Secrets, no cluster-wide Deployments list) is left
out with a note in `README.txt` saying which permission was missing.
"""

from __future__ import annotations

import argparse
import base64
import functools
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from destinations import __version__
from destinations.plugin.errors import NotFound, PermissionDenied, PluginError
from destinations.plugin.output import dump
from destinations.plugin.status import mask
from destinations.worker.log import Scrubber

if TYPE_CHECKING:
    from destinations.plugin.main import Session

Json = dict[str, Any]
T = TypeVar("T")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="the DestinationJob")
    parser.add_argument(
        "-f", "--file", help="where to write the zip (default: report-<namespace>-<job>-<time>.zip here)"
    )


def secret_names(spec: Json, authorization: Json | None) -> list[str]:
    """The Secrets a job depends on: its Authorization's, and its source's and sink's."""
    names: list[str] = []
    reference = ((authorization or {}).get("spec") or {}).get("secretRef") or {}
    if reference.get("name"):
        names.append(reference["name"])
    for role in ("source", "sink"):
        endpoint = spec.get(role) or {}
        warehouse = (endpoint.get("warehouse") or {}).get("connectionSecretRef") or {}
        headers = (endpoint.get("url") or {}).get("headersSecretRef") or {}
        names.extend(ref["name"] for ref in (warehouse, headers) if ref.get("name"))
    return list(dict.fromkeys(names))


def clean(document: Any) -> Any:
    """A copy without `metadata.managedFields`, with credential-looking keys masked."""
    if isinstance(document, dict):
        document = {key: value for key, value in document.items() if key != "managedFields"}
        return {key: clean(value) for key, value in mask(document).items()}
    if isinstance(document, list):
        return [clean(item) for item in document]
    return document


class Bundle:
    """The files of the report, scrubbed when the zip is written (all secret values are known by then)."""

    def __init__(self) -> None:
        self.files: dict[str, Any] = {}
        self.notes: list[str] = []
        self.scrubber = Scrubber()

    def add(self, name: str, content: Any) -> None:
        """A text file (a log), or a document written as YAML."""
        self.files[name] = content

    def attempt(self, what: str, action: Callable[[], T]) -> T | None:
        """Run `action`; a missing permission or object becomes a note instead of failing the report."""
        try:
            return action()
        except PermissionDenied as error:
            self.notes.append(f"{what}: left out, you may not {error.verb} {error.resource}")
        except NotFound as error:
            self.notes.append(f"{what}: {error}")
        return None

    def write(self, path: Path) -> None:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, content in self.files.items():
                # Documents are scrubbed value by value before they become YAML, so they stay valid YAML.
                text = (
                    self.scrubber(content)
                    if isinstance(content, str)
                    else dump(self.scrub(clean(content)), "yaml")
                )
                archive.writestr(name, text)

    def scrub(self, document: Any) -> Any:
        if isinstance(document, dict):
            return {self.scrubber(str(key)): self.scrub(value) for key, value in document.items()}
        if isinstance(document, list):
            return [self.scrub(item) for item in document]
        return self.scrubber(document) if isinstance(document, str) else document


def run(args: argparse.Namespace, session: Session) -> int:
    kube = session.kube()
    name = args.job
    job = kube.get_job(name, "build the report")
    spec = job.get("spec") or {}
    bundle = Bundle()
    bundle.add("job.yaml", job)
    authorization_name = (spec.get("authorizationRef") or {}).get("name")
    authorization = None
    if authorization_name:
        authorization = bundle.attempt(
            "Authorization", lambda: kube.get_authorization(authorization_name, "include the Authorization")
        )
        if authorization is not None:
            bundle.add("authorization.yaml", authorization)
    secrets: list[Json] = []
    for secret_name in secret_names(spec, authorization):
        secret = bundle.attempt(
            f"Secret {secret_name}",
            functools.partial(
                kube.get_secret,
                secret_name,
                "list the key names of the job's Secrets (values are never included)",
            ),
        )
        if secret is None:
            continue
        data = secret.get("data") or {}
        bundle.scrubber.add(
            base64.b64decode(value).decode("utf-8", errors="replace") for value in data.values()
        )
        bundle.scrubber.add((secret.get("stringData") or {}).values())
        secrets.append({"name": secret_name, "type": secret.get("type"), "keys": sorted(data)})
    bundle.add("secrets.yaml", {"note": "key names only; values are never included", "secrets": secrets})
    pods = bundle.attempt("pods", lambda: kube.list_job_pods(name, "include the job's pods")) or []
    for pod in pods:
        pod_name = pod["metadata"]["name"]
        bundle.add(f"pods/{pod_name}.yaml", pod)
        log = bundle.attempt(
            f"log of {pod_name}", functools.partial(kube.pod_log, pod_name, "include the pods' logs")
        )
        if log is not None:
            bundle.add(f"pods/{pod_name}.log", log)
    events = bundle.attempt("events", lambda: kube.job_events(name, "include the job's Events"))
    if events is not None:
        bundle.add("events.yaml", events)
    versions: Json = {"plugin": __version__}
    versions["apiServer"] = bundle.attempt("API server version", kube.server_version)
    deployments = (
        bundle.attempt("operator", lambda: kube.operator_deployments("find the operator's version")) or []
    )
    versions["operator"] = [
        {
            "deployment": f"{item['metadata']['namespace']}/{item['metadata']['name']}",
            "images": [
                c.get("image")
                for c in ((item.get("spec") or {}).get("template") or {})
                .get("spec", {})
                .get("containers", [])
            ],
        }
        for item in deployments
    ] or "no Deployment labelled app.kubernetes.io/name=destinations-operator found"
    bundle.add("versions.yaml", versions)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    readme = [
        f"Support report for DestinationJob {kube.namespace}/{name}, made {created} by "
        f"kubectl-destinations {__version__}.",
        "Secret values are never included: only key names (secrets.yaml); every value of the job's Secrets",
        "is replaced by *** wherever it appeared, and credential-looking keys are masked.",
        "",
        "Files: " + ", ".join(sorted(bundle.files)),
    ]
    if bundle.notes:
        readme += ["", "Left out:", *(f"- {note}" for note in bundle.notes)]
    bundle.add("README.txt", "\n".join(readme) + "\n")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = Path(args.file or f"report-{kube.namespace}-{name}-{stamp}.zip")
    try:
        bundle.write(path)
    except OSError as error:
        raise PluginError(f"cannot write the report to {path}: {error.strerror}") from None
    session.console.print(f"Wrote {path} ({len(bundle.files)} files).")
    for note in bundle.notes:
        session.errors.print(f"note: {note}")
    return 0
