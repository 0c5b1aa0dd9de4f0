"""Server-side table output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).

`kubectl get` asks the server for a Table and prints its cells as they come, so these columns are what a
user sees: a CRD's `additionalPrinterColumns` (with the simple JSONPath dialect kubectl and the API server
share), or for built-in kinds the columns kube-apiserver prints (pods: NAME READY STATUS RESTARTS AGE...).
Columns with priority > 0 appear only with `-o wide`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ._resources import ResourceType

Json = dict[str, Any]
Column = tuple[str, str, str, int]  # name, type, format, priority
Cells = Callable[[Json], list[Any]]

NAME_COLUMN: Json = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}

# --- JSONPath ----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_$-]+)
      |\[(?P<index>-?\d+|\*)\]
      |\[\?\(@(?P<filter_path>(?:\.[A-Za-z0-9_-]+)+)\s*(?P<op>==|!=)\s*(?P<quote>["'])(?P<literal>.*?)(?P=quote)\)\]
      |\[(?P<kquote>["'])(?P<key>.*?)(?P=kquote)\]
      |\.\*""",
    re.VERBOSE,
)


def jsonpath(obj: Any, expression: str) -> list[Any]:
    """Evaluate a simple JSONPath (`.a.b`, `[0]`, `[*]`, `[?(@.type=="Ready")]`) to its matches."""
    expression = expression.strip()
    if expression.startswith("{") and expression.endswith("}"):
        expression = expression[1:-1]
    expression = expression.removeprefix("$")
    current: list[Any] = [obj]
    position = 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None:
            return []
        position = match.end()
        following: list[Any] = []
        for node in current:
            if match["field"] is not None or match["key"] is not None:
                key = match["field"] if match["field"] is not None else match["key"]
                if isinstance(node, dict) and key in node:
                    following.append(node[key])
            elif match["index"] is not None:
                if isinstance(node, list):
                    if match["index"] == "*":
                        following.extend(node)
                    elif -len(node) <= int(match["index"]) < len(node):
                        following.append(node[int(match["index"])])
            elif match["filter_path"] is not None:
                if isinstance(node, list):
                    for item in node:
                        found = jsonpath(item, match["filter_path"])
                        equal = bool(found) and str(found[0]) == match["literal"]
                        if equal == (match["op"] == "=="):
                            following.append(item)
            else:  # .*
                if isinstance(node, dict):
                    following.extend(node.values())
                elif isinstance(node, list):
                    following.extend(node)
        current = following
    return current


# --- formatting --------------------------------------------------------------------------------


def parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


def human_duration(seconds: float) -> str:
    """The API server's age format (k8s.io/apimachinery duration.HumanDuration)."""
    total = int(seconds)
    if total < -1:
        return "<invalid>"
    if total < 0:
        return "0s"
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        rest = total % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = total // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if rest == 0 else f"{hours // 24 // 365}y{rest}d"
    return f"{hours // 24 // 365}y"


def age(timestamp: Any) -> str:
    moment = parse_time(timestamp) if isinstance(timestamp, str) else None
    if moment is None:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - moment).total_seconds())


def _get(obj: Any, *path: str) -> Any:
    for step in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(step)
    return obj


# --- custom resources --------------------------------------------------------------------------


def _custom_columns(resource_type: ResourceType) -> tuple[list[Json], Cells]:
    printer_columns = list(resource_type.printer_columns)
    if not printer_columns:
        printer_columns = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    definitions = [NAME_COLUMN] + [
        {
            "name": column["name"],
            "type": "string" if column.get("type") == "date" else column.get("type", "string"),
            "format": column.get("format", ""),
            "description": column.get("description", ""),
            "priority": column.get("priority", 0),
        }
        for column in printer_columns
    ]

    def cells(obj: Json) -> list[Any]:
        row: list[Any] = [obj["metadata"]["name"]]
        for column in printer_columns:
            found = jsonpath(obj, column.get("jsonPath", ""))
            if not found or found[0] is None:
                row.append(None)
                continue
            value = found[0]
            kind = column.get("type", "string")
            if kind == "date":
                row.append(age(value))
            elif kind in ("integer", "number", "boolean") and not isinstance(value, (dict, list)):
                row.append(value)
            elif isinstance(value, (dict, list)):
                row.append(json.dumps(value, separators=(",", ":")))
            else:
                row.append(str(value) if not isinstance(value, bool) else str(value).lower())
        return row

    return definitions, cells


# --- built-in kinds ----------------------------------------------------------------------------


def _column(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> Json:
    return {"name": name, "type": kind, "format": fmt, "description": "", "priority": priority}


def _pod_status(pod: Json) -> str:
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    running = False
    for container in reversed(status.get("containerStatuses") or []):
        state = container.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            terminated = state["terminated"]
            reason = terminated.get("reason") or (
                f"Signal:{terminated['signal']}"
                if terminated.get("signal")
                else f"ExitCode:{terminated.get('exitCode', 0)}"
            )
        elif "running" in state and container.get("ready"):
            running = True
    if reason == "Completed" and running:
        reason = "Running"
    if _get(pod, "metadata", "deletionTimestamp") and status.get("reason") != "NodeLost":
        reason = "Terminating"
    return str(reason)


def _pod_cells(pod: Json) -> list[Any]:
    statuses = _get(pod, "status", "containerStatuses") or []
    total = len(_get(pod, "spec", "containers") or [])
    ready = sum(1 for container in statuses if container.get("ready"))
    restarts = sum(int(container.get("restartCount", 0)) for container in statuses)
    gates = _get(pod, "spec", "readinessGates") or []
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        _pod_status(pod),
        restarts,
        age(_get(pod, "metadata", "creationTimestamp")),
        _get(pod, "status", "podIP") or "<none>",
        _get(pod, "spec", "nodeName") or "<none>",
        _get(pod, "status", "nominatedNodeName") or "<none>",
        f"{len(gates)}" if gates else "<none>",
    ]


def _event_cells(event: Json) -> list[Any]:
    involved = event.get("involvedObject") or {}
    last_seen = (
        event.get("lastTimestamp") or _get(event, "series", "lastObservedTime") or event.get("eventTime")
    )
    first_seen = event.get("firstTimestamp") or event.get("eventTime") or last_seen
    source = _get(event, "source", "component") or event.get("reportingComponent") or ""
    return [
        age(last_seen),
        event.get("type", ""),
        event.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        involved.get("fieldPath", ""),
        source,
        str(event.get("message", "")).strip(),
        age(first_seen),
        event.get("count") or 1,
        event["metadata"]["name"],
    ]


def _ports(service: Json) -> str:
    rendered = []
    for port in _get(service, "spec", "ports") or []:
        text = f"{port.get('port')}/{port.get('protocol', 'TCP')}"
        if port.get("nodePort"):
            text = f"{port.get('port')}:{port['nodePort']}/{port.get('protocol', 'TCP')}"
        rendered.append(text)
    return ",".join(rendered) or "<none>"


_BUILTIN: dict[tuple[str, str], tuple[list[Json], Cells]] = {
    ("", "pods"): (
        [
            NAME_COLUMN,
            _column("Ready"),
            _column("Status"),
            _column("Restarts", "string"),
            _column("Age"),
            _column("IP", priority=1),
            _column("Node", priority=1),
            _column("Nominated Node", priority=1),
            _column("Readiness Gates", priority=1),
        ],
        _pod_cells,
    ),
    ("", "events"): (
        [
            _column("Last Seen"),
            _column("Type"),
            _column("Reason"),
            _column("Object"),
            _column("Subobject", priority=1),
            _column("Source", priority=1),
            _column("Message"),
            _column("First Seen", priority=1),
            _column("Count", "integer", priority=1),
            {**NAME_COLUMN, "name": "Name", "priority": 1},
        ],
        _event_cells,
    ),
    ("", "namespaces"): (
        [NAME_COLUMN, _column("Status"), _column("Age")],
        lambda ns: [
            ns["metadata"]["name"],
            _get(ns, "status", "phase") or "Active",
            age(ns["metadata"].get("creationTimestamp")),
        ],
    ),
    ("", "secrets"): (
        [NAME_COLUMN, _column("Type"), _column("Data", "integer"), _column("Age")],
        lambda s: [
            s["metadata"]["name"],
            s.get("type", "Opaque"),
            len(s.get("data") or {}),
            age(s["metadata"].get("creationTimestamp")),
        ],
    ),
    ("", "configmaps"): (
        [NAME_COLUMN, _column("Data", "integer"), _column("Age")],
        lambda c: [
            c["metadata"]["name"],
            len(c.get("data") or {}) + len(c.get("binaryData") or {}),
            age(c["metadata"].get("creationTimestamp")),
        ],
    ),
    ("", "serviceaccounts"): (
        # Since 1.30 the server prints no Secrets column (token Secrets are no longer made).
        [NAME_COLUMN, _column("Age")],
        lambda sa: [sa["metadata"]["name"], age(sa["metadata"].get("creationTimestamp"))],
    ),
    ("", "services"): (
        [
            NAME_COLUMN,
            _column("Type"),
            _column("Cluster-IP"),
            _column("External-IP"),
            _column("Port(s)"),
            _column("Age"),
            _column("Selector", priority=1),
        ],
        lambda s: [
            s["metadata"]["name"],
            _get(s, "spec", "type") or "ClusterIP",
            _get(s, "spec", "clusterIP") or "<none>",
            ",".join(_get(s, "spec", "externalIPs") or []) or "<none>",
            _ports(s),
            age(s["metadata"].get("creationTimestamp")),
            ",".join(f"{k}={v}" for k, v in (_get(s, "spec", "selector") or {}).items()) or "<none>",
        ],
    ),
    ("apps", "deployments"): (
        [
            NAME_COLUMN,
            _column("Ready"),
            _column("Up-to-date", "integer"),
            _column("Available", "integer"),
            _column("Age"),
            _column("Containers", priority=1),
            _column("Images", priority=1),
        ],
        lambda d: [
            d["metadata"]["name"],
            f"{_get(d, 'status', 'readyReplicas') or 0}/{_get(d, 'spec', 'replicas') or 0}",
            _get(d, "status", "updatedReplicas") or 0,
            _get(d, "status", "availableReplicas") or 0,
            age(d["metadata"].get("creationTimestamp")),
            ",".join(c.get("name", "") for c in _get(d, "spec", "template", "spec", "containers") or []),
            ",".join(c.get("image", "") for c in _get(d, "spec", "template", "spec", "containers") or []),
        ],
    ),
    ("coordination.k8s.io", "leases"): (
        [NAME_COLUMN, _column("Holder"), _column("Age")],
        lambda lease: [
            lease["metadata"]["name"],
            _get(lease, "spec", "holderIdentity") or "",
            age(lease["metadata"].get("creationTimestamp")),
        ],
    ),
    ("rbac.authorization.k8s.io", "rolebindings"): (
        [NAME_COLUMN, _column("Role"), _column("Age")],
        lambda b: [
            b["metadata"]["name"],
            f"{_get(b, 'roleRef', 'kind')}/{_get(b, 'roleRef', 'name')}",
            age(b["metadata"].get("creationTimestamp")),
        ],
    ),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): (
        [NAME_COLUMN, _column("Role"), _column("Age")],
        lambda b: [
            b["metadata"]["name"],
            f"ClusterRole/{_get(b, 'roleRef', 'name')}",
            age(b["metadata"].get("creationTimestamp")),
        ],
    ),
    ("apiextensions.k8s.io", "customresourcedefinitions"): (
        [NAME_COLUMN, _column("Created At", "date")],
        lambda crd: [crd["metadata"]["name"], crd["metadata"].get("creationTimestamp")],
    ),
}

_DEFAULT: tuple[list[Json], Cells] = (
    [NAME_COLUMN, _column("Age")],
    lambda obj: [obj["metadata"]["name"], age(obj["metadata"].get("creationTimestamp"))],
)


def table_columns(resource_type: ResourceType) -> tuple[list[Json], Cells]:
    if resource_type.custom:
        return _custom_columns(resource_type)
    return _BUILTIN.get(resource_type.storage_key, _DEFAULT)


def partial_metadata(obj: Json) -> Json:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def to_table(
    resource_type: ResourceType, objects: list[Json], list_metadata: Json, include_object: str
) -> Json:
    """Render objects as a meta.k8s.io/v1 Table; `include_object` is None, Metadata or Object."""
    definitions, cells = table_columns(resource_type)
    rows = []
    for obj in objects:
        row: Json = {"cells": cells(obj)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    }
