"""What the API server fills in on objects: identity, timestamps, names and per-kind defaults.

These are the fields a client never has to send and always gets back: uid, creationTimestamp,
generateName suffixes, a pod's defaults and initial status, a Secret's `stringData` folded into `data`,
a Namespace's finalizer. Kept apart from the request handling so each rule is easy to find.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from ._errors import ApiError
from ._resources import ResourceType

Json = dict[str, Any]

#: Characters the API server uses for generateName suffixes (no vowels, no look-alikes).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

#: Kinds whose names must be DNS-1123 labels rather than subdomains.
_LABEL_NAMED = {("", "namespaces"), ("", "services")}
#: Kinds whose names only have to be valid path segments (RBAC names like `system:controller`).
_PATH_SEGMENT_NAMED = {
    ("rbac.authorization.k8s.io", plural)
    for plural in ("roles", "rolebindings", "clusterroles", "clusterrolebindings")
} | {("", "events"), ("events.k8s.io", "events")}

_ID_COUNTER = iter(range(1, 1 << 30))


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def generated_name(prefix: str) -> str:
    return prefix + "".join(random.choices(_SUFFIX_ALPHABET, k=5))


def name_errors(resource_type: ResourceType, name: str) -> list[Json]:
    """Causes for an invalid metadata.name, worded as the API server words them."""
    if resource_type.storage_key in _PATH_SEGMENT_NAMED:
        if name in (".", "..") or "/" in name or "%" in name:
            return [
                {
                    "reason": "FieldValueInvalid",
                    "field": "metadata.name",
                    "message": f"Invalid value: \"{name}\": may not contain '/' or '%'",
                }
            ]
        return []
    if resource_type.storage_key in _LABEL_NAMED:
        if len(name) > 63 or not _LABEL.match(name):
            return [
                {
                    "reason": "FieldValueInvalid",
                    "field": "metadata.name",
                    "message": f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of '
                    f"lower case "
                    "alphanumeric characters or '-', and must start and end with an alphanumeric character "
                    "(e.g. 'my-name',  or '123-abc', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                }
            ]
        return []
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        return [
            {
                "reason": "FieldValueInvalid",
                "field": "metadata.name",
                "message": f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of '
                f"lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "
                "(e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            }
        ]
    return []


_QUALIFIED_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NAME_PART_RULE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def _qualified_name_problems(key: str) -> list[str]:
    """apimachinery's `IsQualifiedName`: an optional DNS-subdomain prefix, `/`, a 63-byte name part."""
    parts = key.split("/")
    problems: list[str] = []
    if len(parts) == 1:
        name = key
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                problems.append("prefix part must be no more than 253 bytes")
            if not _SUBDOMAIN.match(prefix):
                problems.append(f"prefix part {_SUBDOMAIN_RULE}")
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and "
            "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
            "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain "
            "prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 bytes")
    if name and not _QUALIFIED_NAME_PART.match(name):
        problems.append(_NAME_PART_RULE)
    return problems


def metadata_errors(meta: Json) -> list[Json]:
    """Causes for invalid label keys and values and annotation keys, worded as the API server does.

    Reference: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set
    (apimachinery `ValidateLabels`, `ValidateAnnotations`).
    """
    causes: list[Json] = []

    def invalid_value(field: str, value: str, problem: str) -> None:
        message = f"Invalid value: {json.dumps(value)}: {problem}"
        causes.append({"reason": "FieldValueInvalid", "field": field, "message": message})

    for key, value in (meta.get("labels") or {}).items():
        for problem in _qualified_name_problems(str(key)):
            invalid_value("metadata.labels", str(key), problem)
        text = "" if value is None else str(value)
        if len(text) > 63:
            invalid_value("metadata.labels", text, "must be no more than 63 bytes")
        if not _LABEL_VALUE.match(text):
            invalid_value("metadata.labels", text, _LABEL_VALUE_RULE)
    for key in meta.get("annotations") or {}:
        for problem in _qualified_name_problems(str(key).lower()):
            invalid_value("metadata.annotations", str(key), problem)
    return causes


def fold_string_data(secret: Json) -> None:
    """A Secret's write-only `stringData` is merged into base64 `data`, as on a real server."""
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict):
        data = dict(secret.get("data") or {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        secret["data"] = data


def _default_container(container: Json) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    image = str(container.get("image", ""))
    latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")


def default_pod_spec(spec: Json) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        _default_container(container)
    for volume in spec.get("volumes") or []:
        for source in ("secret", "configMap"):
            if source in volume:
                volume[source].setdefault("defaultMode", 0o644)


def _pod_errors(pod: Json) -> list[Json]:
    containers = (pod.get("spec") or {}).get("containers")
    if not containers:
        return [{"reason": "FieldValueRequired", "field": "spec.containers", "message": "Required value"}]
    causes = []
    for index, container in enumerate(containers):
        for required in ("name", "image"):
            if not container.get(required):
                causes.append(
                    {
                        "reason": "FieldValueRequired",
                        "field": f"spec.containers[{index}].{required}",
                        "message": "Required value",
                    }
                )
    return causes


def _next_cluster_ip() -> str:
    serial = next(_ID_COUNTER)
    return f"10.96.{(serial >> 8) % 256}.{serial % 256}"


def apply_create_defaults(resource_type: ResourceType, obj: Json) -> list[Json]:
    """Per-kind defaults on create; returns validation causes (empty when valid)."""
    key = resource_type.storage_key
    if key == ("", "pods"):
        causes = _pod_errors(obj)
        if causes:
            return causes
        default_pod_spec(obj["spec"])
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif key == ("", "secrets"):
        fold_string_data(obj)
        obj.setdefault("type", "Opaque")
    elif key == ("", "namespaces"):
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif key == ("", "services"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("clusterIP") != "None":
            spec.setdefault("clusterIP", _next_cluster_ip())
            spec["clusterIPs"] = [spec["clusterIP"]]
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        obj["status"] = {"loadBalancer": {}}
    elif key == ("apps", "deployments"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault(
            "strategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        )
        template_spec = (spec.get("template") or {}).get("spec")
        if isinstance(template_spec, dict):
            default_pod_spec(template_spec)
        obj["status"] = {}
    elif key == ("apiextensions.k8s.io", "customresourcedefinitions"):
        return crd_errors(obj)
    return []


def apply_update_rules(resource_type: ResourceType, old: Json, new: Json) -> list[Json]:
    """Per-kind rules on update; returns validation causes."""
    key = resource_type.storage_key
    if key == ("", "secrets"):
        fold_string_data(new)
    if key in (("", "secrets"), ("", "configmaps")) and old.get("immutable"):
        for field in ("data", "binaryData", "immutable"):
            if old.get(field) != new.get(field):
                return [
                    {
                        "reason": "FieldValueForbidden",
                        "field": field,
                        "message": "Forbidden: field is immutable when `immutable` is set",
                    }
                ]
    if key == ("", "pods"):
        default_pod_spec(new.setdefault("spec", {}))
    if key == ("", "namespaces"):
        new["spec"] = old.get("spec", {})
    if key == ("apiextensions.k8s.io", "customresourcedefinitions"):
        return crd_errors(new)
    return []


def crd_errors(crd: Json) -> list[Json]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    causes = []
    for field, value in (
        ("spec.group", spec.get("group")),
        ("spec.names.plural", names.get("plural")),
        ("spec.names.kind", names.get("kind")),
        ("spec.versions", spec.get("versions")),
    ):
        if not value:
            causes.append({"reason": "FieldValueRequired", "field": field, "message": "Required value"})
    if not causes and crd["metadata"]["name"] != f"{names['plural']}.{spec['group']}":
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "field": "metadata.name",
                "message": f'Invalid value: "{crd["metadata"]["name"]}": must be '
                f'spec.names.plural+"."+spec.group',
            }
        )
    storage = [version for version in spec.get("versions") or [] if version.get("storage")]
    if spec.get("versions") and len(storage) != 1:
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "field": "spec.versions",
                "message": "Invalid value: must have exactly one version marked as storage version",
            }
        )
    return causes


def crd_status(crd: Json) -> Json:
    """The status the apiextensions controllers settle on for a valid CRD: names accepted, established."""
    spec = crd.get("spec") or {}
    timestamp = now()
    previous = {c.get("type"): c for c in (crd.get("status") or {}).get("conditions") or []}

    def condition(kind: str, reason: str, message: str) -> Json:
        since = (previous.get(kind) or {}).get("lastTransitionTime", timestamp)
        return {
            "type": kind,
            "status": "True",
            "lastTransitionTime": since,
            "reason": reason,
            "message": message,
        }

    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    terminating = [previous["Terminating"]] if "Terminating" in previous else []
    return {
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            *terminating,
        ],
        "acceptedNames": names,
        "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
    }


def crd_terminating(crd: Json, reason: str, message: str) -> Json:
    """The CRD's status with its `Terminating` condition set (apiextensions' finalizer controller)."""
    status = copy.deepcopy(crd.get("status") or {})
    others = [c for c in status.get("conditions") or [] if c.get("type") != "Terminating"]
    terminating = {
        "type": "Terminating",
        "status": "True",
        "lastTransitionTime": now(),
        "reason": reason,
        "message": message,
    }
    status["conditions"] = [*others, terminating]
    return status


def refuse_if_terminating(namespace_obj: Json | None, resource: str, name: str, namespace: str) -> None:
    if namespace_obj is not None and (namespace_obj.get("metadata") or {}).get("deletionTimestamp"):
        raise ApiError(
            403,
            "Forbidden",
            f'{resource} "{name}" is forbidden: unable to create new content in namespace {namespace} '
            "because it is being terminated",
            details={"name": name, "kind": resource},
        )
