"""The plugin's connection to the cluster: kubeconfig or in-cluster config, and the few calls it makes.

Configuration follows kubectl: `--kubeconfig` (else `$KUBECONFIG`, else `~/.kube/config`), `--context`
(else the current context), `-n` (else the context's namespace, else `default`); without any kubeconfig
file inside a pod, the pod's ServiceAccount (in-cluster config) and its namespace are used.

Every call names the verb and resource it needs, so a 403 becomes a `PermissionDenied` sentence naming
them (and what the plugin wanted them for) instead of a stack trace; docs/kubectl-plugin.md lists the
same verbs per command.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from destinations import GROUP, VERSION
from destinations.plugin.errors import NotFound, PermissionDenied, PluginError, Unreachable

JOBS = "destinationjobs"
AUTHORIZATIONS = "authorizations"
JOB_LABEL = "destinations.dev/job"
RUN_LABEL = "destinations.dev/run"
IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
#: Reads that must not hang when the API server stalls: (connect, read) seconds.
REQUEST_TIMEOUT = (10, 60)

Json = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """Where commands act: the namespace, or every namespace (`-A`, for lists only)."""

    namespace: str
    all_namespaces: bool = False


def _resource_name(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


class Kube:
    """Thin, typed calls over the official client; each translates API errors into plugin errors."""

    def __init__(self, api_client: client.ApiClient, target: Target) -> None:
        self.api_client = api_client
        self.target = target
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)

    @property
    def namespace(self) -> str:
        return self.target.namespace

    # --- error translation -----------------------------------------------------------------------

    def call(
        self,
        verb: str,
        plural: str,
        purpose: str,
        request: Callable[[], Any],
        *,
        group: str = GROUP,
        name: str | None = None,
        namespace: str | None = "",
    ) -> Any:
        """Run `request`; 403, 404, 401 and connection failures become sentences.

        `namespace` "" means the target namespace, None a cluster-scoped (or all-namespaces) request.
        """
        where = self.namespace if namespace == "" else namespace
        resource = _resource_name(plural, group)
        try:
            return request()
        except ApiException as error:
            status = _status_body(error)
            if error.status == 403:
                match = re.search(r'User "([^"]+)"', str(status.get("message", "")))
                user = match.group(1) if match else None
                raise PermissionDenied(verb, resource, where, purpose, user) from None
            if error.status == 404:
                kind = plural[:-1] if plural.endswith("s") else plural
                subject = f'{kind} "{name}"' if name else resource
                place = f' in namespace "{where}"' if where else ""
                if status.get("reason") == "NotFound" or not status:
                    raise NotFound(f"{subject} not found{place}") from None
            if error.status == 409 and status.get("reason") == "AlreadyExists":
                raise PluginError(f"{status.get('message')}; pick another name") from None
            if error.status == 401:
                raise Unreachable(
                    "the API server refused the credentials of the current context (401 Unauthorized); "
                    "log in again or pick another context with --context"
                ) from None
            message = status.get("message") or error.reason or "no message"
            raise PluginError(f"{verb} {resource} failed ({error.status}): {message}") from None
        except urllib3.exceptions.HTTPError as error:
            host = self.api_client.configuration.host
            raise Unreachable(f"cannot reach the API server at {host}: {error}") from None

    # --- DestinationJobs and Authorizations --------------------------------------------------------

    def get_job(self, name: str, purpose: str = "read the job") -> Json:
        result: Json = self.call(
            "get",
            JOBS,
            purpose,
            lambda: self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, JOBS, name, _request_timeout=REQUEST_TIMEOUT
            ),
            name=name,
        )
        return result

    def list_jobs(self, purpose: str = "list the jobs") -> list[Json]:
        if self.target.all_namespaces:
            result = self.call(
                "list",
                JOBS,
                purpose,
                lambda: self.custom.list_cluster_custom_object(
                    GROUP, VERSION, JOBS, _request_timeout=REQUEST_TIMEOUT
                ),
                namespace=None,
            )
        else:
            result = self.call(
                "list",
                JOBS,
                purpose,
                lambda: self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, JOBS, _request_timeout=REQUEST_TIMEOUT
                ),
            )
        items: list[Json] = result.get("items") or []
        return items

    def patch_job(self, name: str, patch: Json, purpose: str) -> Json:
        """A JSON merge patch (RFC 7386) of the job: only the fields given change."""
        result: Json = self.call(
            "patch",
            JOBS,
            purpose,
            lambda: self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, JOBS, name, patch, _request_timeout=REQUEST_TIMEOUT
            ),
            name=name,
        )
        return result

    def get_authorization(self, name: str, purpose: str) -> Json:
        result: Json = self.call(
            "get",
            AUTHORIZATIONS,
            purpose,
            lambda: self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, AUTHORIZATIONS, name, _request_timeout=REQUEST_TIMEOUT
            ),
            name=name,
        )
        return result

    def list_authorizations(self, purpose: str) -> list[Json]:
        result = self.call(
            "list",
            AUTHORIZATIONS,
            purpose,
            lambda: self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, AUTHORIZATIONS, _request_timeout=REQUEST_TIMEOUT
            ),
        )
        items: list[Json] = result.get("items") or []
        return items

    def create(self, manifest: Json, purpose: str) -> Json:
        """Create a DestinationJob, an Authorization or a Secret in the target namespace."""
        kind = manifest["kind"]
        if kind == "Secret":
            body = client.V1Secret(
                metadata=client.V1ObjectMeta(name=manifest["metadata"]["name"]),
                type=manifest.get("type", "Opaque"),
                string_data=manifest.get("stringData") or {},
            )
            created: Json = self.call(
                "create",
                "secrets",
                purpose,
                lambda: self.api_client.sanitize_for_serialization(
                    self.core.create_namespaced_secret(self.namespace, body)
                ),
                group="",
            )
            return created
        plural = {"DestinationJob": JOBS, "Authorization": AUTHORIZATIONS}[kind]
        result: Json = self.call(
            "create",
            plural,
            purpose,
            lambda: self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, manifest, _request_timeout=REQUEST_TIMEOUT
            ),
        )
        return result

    def get_secret(self, name: str, purpose: str) -> Json:
        secret = self.call(
            "get",
            "secrets",
            purpose,
            lambda: self.core.read_namespaced_secret(name, self.namespace, _request_timeout=REQUEST_TIMEOUT),
            group="",
            name=name,
        )
        result: Json = self.api_client.sanitize_for_serialization(secret)
        return result

    # --- pods, logs, events ------------------------------------------------------------------------

    def list_job_pods(self, job: str, purpose: str) -> list[Json]:
        """The job's sync pods (label `destinations.dev/job`), as JSON dicts, oldest run first."""
        result = self.call(
            "list",
            "pods",
            purpose,
            lambda: self.core.list_namespaced_pod(
                self.namespace, label_selector=f"{JOB_LABEL}={job[:63]}", _request_timeout=REQUEST_TIMEOUT
            ),
            group="",
        )
        pods: list[Json] = self.api_client.sanitize_for_serialization(result.items)
        return sorted(pods, key=lambda pod: _run_number(pod))

    def get_pod(self, name: str, purpose: str) -> Json | None:
        """The pod, or None when it does not exist (pruned)."""
        try:
            pod = self.call(
                "get",
                "pods",
                purpose,
                lambda: self.core.read_namespaced_pod(name, self.namespace, _request_timeout=REQUEST_TIMEOUT),
                group="",
                name=name,
            )
        except NotFound:
            return None
        result: Json = self.api_client.sanitize_for_serialization(pod)
        return result

    def pod_log(self, name: str, purpose: str) -> str:
        result: str = self.call(
            "get",
            "pods/log",
            purpose,
            lambda: self.core.read_namespaced_pod_log(name, self.namespace, _request_timeout=REQUEST_TIMEOUT),
            group="",
            name=name,
        )
        return result

    def follow_pod_log(self, name: str, purpose: str) -> Iterator[str]:
        """The pod's log lines as they are written, until the container ends."""
        response = self.call(
            "get",
            "pods/log",
            purpose,
            lambda: self.core.read_namespaced_pod_log(
                name, self.namespace, follow=True, _preload_content=False
            ),
            group="",
            name=name,
        )
        try:
            pending = b""
            for chunk in response.stream(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", errors="replace")
            if pending:
                yield pending.decode("utf-8", errors="replace")
        finally:
            response.release_conn()

    def job_events(self, job: str, purpose: str) -> list[Json]:
        """core/v1 Events about the job (field selector on involvedObject), oldest first."""
        result = self.call(
            "list",
            "events",
            purpose,
            lambda: self.core.list_namespaced_event(
                self.namespace,
                field_selector=f"involvedObject.name={job},involvedObject.kind=DestinationJob",
                _request_timeout=REQUEST_TIMEOUT,
            ),
            group="",
        )
        events: list[Json] = self.api_client.sanitize_for_serialization(result.items)
        return sorted(
            events, key=lambda event: str(event.get("lastTimestamp") or event.get("eventTime") or "")
        )

    def operator_deployments(self, purpose: str) -> list[Json]:
        """Deployments labelled `app.kubernetes.io/name=destinations-operator`, in any namespace."""
        result = self.call(
            "list",
            "deployments",
            purpose,
            lambda: self.apps.list_deployment_for_all_namespaces(
                label_selector="app.kubernetes.io/name=destinations-operator",
                _request_timeout=REQUEST_TIMEOUT,
            ),
            group="apps",
            namespace=None,
        )
        deployments: list[Json] = self.api_client.sanitize_for_serialization(result.items)
        return deployments

    def server_version(self) -> str:
        info = self.call(
            "get",
            "version",
            "read the API server's version",
            lambda: client.VersionApi(self.api_client).get_code(_request_timeout=REQUEST_TIMEOUT),
            group="",
            namespace=None,
        )
        return str(info.git_version)


def _run_number(pod: Json) -> int:
    value = ((pod.get("metadata") or {}).get("labels") or {}).get(RUN_LABEL, "0")
    return int(value) if str(value).isdigit() else 0


def _status_body(error: ApiException) -> Json:
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def connect(kubeconfig: str | None, context: str | None, namespace: str | None, all_namespaces: bool) -> Kube:
    """A `Kube` for the chosen kubeconfig and context, or the in-cluster ServiceAccount.

    Raises `Unreachable` with a sentence when no configuration is found or the context is unknown.
    """
    path = kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    first_path = path.split(os.pathsep)[0]
    in_cluster = kubeconfig is None and not Path(first_path).expanduser().exists()
    if in_cluster and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        default_namespace = (
            IN_CLUSTER_NAMESPACE_FILE.read_text().strip() if IN_CLUSTER_NAMESPACE_FILE.exists() else "default"
        )
        api_client = client.ApiClient(configuration)
    else:
        if in_cluster:
            raise Unreachable(
                f"no kubeconfig at {first_path} and not running in a pod; pass --kubeconfig or set KUBECONFIG"
            )
        try:
            contexts, current = config.list_kube_config_contexts(config_file=path)
            chosen = current
            if context is not None:
                chosen = next((entry for entry in contexts if entry["name"] == context), None)
                if chosen is None:
                    known = ", ".join(entry["name"] for entry in contexts) or "none"
                    raise Unreachable(f'context "{context}" is not in {path}; its contexts: {known}')
            default_namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
            api_client = config.new_client_from_config(config_file=path, context=context)
        except ConfigException as error:
            raise Unreachable(f"cannot use the kubeconfig {path}: {error}") from None
    return Kube(api_client, Target(namespace or default_namespace, all_namespaces))
