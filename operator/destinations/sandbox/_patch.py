"""PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

Strategic merge patch is Kubernetes' own dialect that kubectl's client-side apply sends for built-in
kinds: lists of objects merge by a key (containers by `name`, container ports by `containerPort`...),
`null` deletes, and `$patch`, `$retainKeys`, `$setElementOrder` and `$deleteFromPrimitiveList`
directives steer the merge. The sandbox knows the merge keys of the lists kubectl touches in the kinds
this project applies; any other list is replaced, which is also what the real server does for lists
without a patch strategy.
"""

from __future__ import annotations

import copy
from typing import Any

from ._errors import ApiError, bad_request

Json = dict[str, Any]

#: Merge keys of lists by field name; `ports` depends on where it sits (container or service).
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "secrets": "name",
    "readinessGates": "conditionType",
    "schedulingGates": "name",
}

#: Lists of scalars that merge as sets instead of being replaced.
_MERGED_SCALAR_LISTS = frozenset({"finalizers"})


def merge_key(path: tuple[str, ...]) -> str | None:
    """The patchMergeKey of the list at `path` (field names only), or None to replace the list."""
    field = path[-1] if path else ""
    if field == "ports":
        inside_container = any(
            step in ("containers", "initContainers", "ephemeralContainers") for step in path
        )
        return "containerPort" if inside_container else "port"
    return _MERGE_KEYS.get(field)


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


# --- RFC 6902 ---------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"invalid JSON pointer: {path!r}")
    return [token.replace("~1", "/").replace("~0", "~") for token in path[1:].split("/")]


def _parent(document: Any, tokens: list[str], path: str) -> tuple[Any, str]:
    node = document
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise ApiError(422, "Invalid", f"doc is missing path: {path!r}")
    return node, tokens[-1]


def _get(document: Any, path: str) -> Any:
    node = document
    for token in _pointer(path):
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise ApiError(422, "Invalid", f"doc is missing path: {path!r}")
    return node


def _add(document: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent, last = _parent(document, tokens, path)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        index = len(parent) if last == "-" else int(last) if last.isdigit() else -1
        if not 0 <= index <= len(parent):
            raise ApiError(422, "Invalid", f"index out of range in JSON pointer {path!r}")
        parent.insert(index, value)
    else:
        raise ApiError(422, "Invalid", f"doc is missing path: {path!r}")
    return document


def _remove(document: Any, path: str) -> Any:
    tokens = _pointer(path)
    parent, last = _parent(document, tokens, path)
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise ApiError(422, "Invalid", f"unable to remove nonexistent key or index: {path!r}")
    return document


def json_patch(document: Any, operations: Any) -> Any:
    """Apply RFC 6902 operations; a failed `test` refuses the whole patch with 422."""
    if not isinstance(operations, list):
        raise bad_request("json patch must be a list of operations")
    document = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise bad_request(f"invalid json patch operation: {operation!r}")
        op, path = operation["op"], operation["path"]
        if op == "add":
            document = _add(document, path, copy.deepcopy(operation.get("value")))
        elif op == "remove":
            document = _remove(document, path)
        elif op == "replace":
            _get(document, path)
            document = _remove(document, path) if _pointer(path) else document
            document = _add(document, path, copy.deepcopy(operation.get("value")))
        elif op in ("move", "copy"):
            value = copy.deepcopy(_get(document, operation.get("from", "")))
            if op == "move":
                document = _remove(document, operation["from"])
            document = _add(document, path, value)
        elif op == "test":
            if _get(document, path) != operation.get("value"):
                raise ApiError(
                    422,
                    "Invalid",
                    f"the server rejected our request due to an error in our request: "
                    f"testing value {path} failed: test failed",
                )
        else:
            raise bad_request(f"unknown json patch operation {op!r}")
    return document


# --- strategic merge patch --------------------------------------------------------------------


def strategic_merge_patch(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """Apply a strategic merge patch to `target` (which is not modified)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result: Json = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [item for item in result[field] if item not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, (*path, key))
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value, (*path, key))
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(current: Any, patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    current_list = list(current) if isinstance(current, list) else []
    field = path[-1]
    if field in _MERGED_SCALAR_LISTS:
        merged = list(current_list)
        merged.extend(item for item in patch if item not in merged)
        return merged
    key = merge_key(path)
    if key is None or not all(isinstance(item, dict) for item in patch):
        return [strategic_merge_patch(None, item, path) if isinstance(item, dict) else item for item in patch]
    if any(item.get("$patch") == "replace" for item in patch):
        return [
            {k: v for k, v in item.items() if k != "$patch"}
            for item in patch
            if item.get("$patch") != "replace"
        ]
    result = list(current_list)
    for item in patch:
        if key not in item:
            raise bad_request(f"map: {item!r} does not contain declared merge key: {key}")
        position = next(
            (
                index
                for index, existing in enumerate(result)
                if isinstance(existing, dict) and existing.get(key) == item[key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if position is not None:
                del result[position]
            continue
        if position is None:
            result.append(strategic_merge_patch(None, item, path))
        else:
            result[position] = strategic_merge_patch(result[position], item, path)
    return result
