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


#: What the API server answers for any operation that does not apply (a failed `test`, a missing path,
#: an unknown `op`): `NewGenericServerResponse(422)`, whose message hides the library's own.
JSON_PATCH_REFUSED = "the server rejected our request due to an error in our request"


def json_patch(document: Any, operations: Any) -> Any:
    """Apply RFC 6902 operations as the API server's json-patch (evanphx/json-patch v4) does.

    Any operation that does not apply refuses the whole patch with 422 Invalid and the server's
    generic message; a body that is not a list of operations is 400. Two v4 quirks are kept:
    `replace` of a missing object key adds it, and `test` of a missing key passes for `null`.
    Reference: k8s.io/apiserver/pkg/endpoints/handlers/patch.go (`applyJSPatch`).
    """
    if not isinstance(operations, list):
        raise bad_request(
            f"json: cannot unmarshal {go_json_type(operations)} into Go value of type jsonpatch.Patch"
        )
    document = copy.deepcopy(document)
    for operation in operations:
        try:
            document = _apply_operation(document, operation)
        except (ApiError, KeyError, TypeError, ValueError):
            raise ApiError(422, "Invalid", JSON_PATCH_REFUSED, details={}) from None
    return document


def go_json_type(value: Any) -> str:
    """How Go's encoding/json names a JSON value's type in its unmarshalling errors."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "null"


def _apply_operation(document: Any, operation: Any) -> Any:
    op, path = operation["op"], operation["path"]
    if op == "add":
        return _add(document, path, copy.deepcopy(operation.get("value")))
    if op == "remove":
        return _remove(document, path)
    if op == "replace":
        tokens = _pointer(path)
        if not tokens:
            return copy.deepcopy(operation.get("value"))
        parent, last = _parent(document, tokens, path)
        if isinstance(parent, dict):
            parent[last] = copy.deepcopy(operation.get("value"))
            return document
        _get(document, path)
        document = _remove(document, path)
        return _add(document, path, copy.deepcopy(operation.get("value")))
    if op in ("move", "copy"):
        value = copy.deepcopy(_get(document, operation["from"]))
        if op == "move":
            document = _remove(document, operation["from"])
        return _add(document, path, value)
    if op == "test":
        tokens = _pointer(path)
        if tokens:
            parent, last = _parent(document, tokens, path)
            if isinstance(parent, dict) and last not in parent:
                if operation.get("value") is not None:
                    raise ApiError(422, "Invalid", f"testing value {path} failed")
                return document
        if _get(document, path) != operation.get("value"):
            raise ApiError(422, "Invalid", f"testing value {path} failed")
        return document
    raise ApiError(422, "Invalid", f"Unexpected kind: {op}")


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
    for key, order in patch.items():
        if key.startswith("$setElementOrder/") and isinstance(order, list):
            field = key.split("/", 1)[1]
            merged_list = result.get(field)
            live_list = target.get(field) if isinstance(target, dict) else None
            list_key = None if field in _MERGED_SCALAR_LISTS else merge_key((*path, field))
            if isinstance(merged_list, list) and (list_key is not None or field in _MERGED_SCALAR_LISTS):
                live = live_list if isinstance(live_list, list) else []
                result[field] = _in_patch_then_server_order(merged_list, order, live, list_key)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(current: Any, patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    """Merge one list the way apimachinery's `mergeSlice` does, order included.

    Scalar lists with the merge strategy (finalizers) are a de-duplicated union; lists of objects with
    a merge key merge item by item. Either way the result is then put in order like the server's
    `normalizeElementOrder`: the patch's items in the patch's order, the server-only items in the
    live order, interleaved only where both are found in the live list (`mergeSortedSlice`), so a new
    item comes before the server-only ones: live `[A]` patched with `[B]` reads `[B, A]`.
    Reference: k8s.io/apimachinery/pkg/util/strategicpatch/patch.go (`mergeSlice`).
    """
    current_list = list(current) if isinstance(current, list) else []
    field = path[-1]
    if field in _MERGED_SCALAR_LISTS:
        merged = list(current_list)
        merged.extend(item for item in patch if item not in merged)
        return _in_patch_then_server_order(merged, patch, current_list, None)
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
    plain_items: list[Any] = []
    for item in patch:
        if key not in item:
            raise bad_request(f"map: {item!r} does not contain declared merge key: {key}")
        if item.get("$patch") == "delete":
            result = [
                existing
                for existing in result
                if not (isinstance(existing, dict) and existing.get(key) == item[key])
            ]
        else:
            plain_items.append(item)
    server_order = list(result)
    for item in plain_items:
        position = next(
            (
                index
                for index, existing in enumerate(result)
                if isinstance(existing, dict) and existing.get(key) == item[key]
            ),
            None,
        )
        if position is None:
            result.append(strategic_merge_patch(None, item, path))
        else:
            result[position] = strategic_merge_patch(result[position], item, path)
    return _in_patch_then_server_order(result, plain_items, server_order, key)


def _identity(item: Any, key: str | None) -> Any:
    return item.get(key) if key is not None and isinstance(item, dict) else item


def _position(items: list[Any], item: Any, key: str | None) -> int:
    wanted = _identity(item, key)
    return next((index for index, other in enumerate(items) if _identity(other, key) == wanted), -1)


def _in_patch_then_server_order(
    merged: list[Any], order: list[Any], server_order: list[Any], key: str | None
) -> list[Any]:
    """Order `merged` as apimachinery's `normalizeElementOrder` does.

    Items named in `order` (the patch list, or a `$setElementOrder` list) keep that order; the others
    keep `server_order` (the live list). The two runs are then merged: a server-only item goes first
    only when it and the next patch item are both in the live list and it stood before it there.
    """
    in_order = [item for item in merged if _position(order, item, key) >= 0]
    server_only = [item for item in merged if _position(order, item, key) < 0]
    in_order.sort(key=lambda item: _position(order, item, key))
    server_only.sort(key=lambda item: _position(server_order, item, key))
    result: list[Any] = []
    left, right = 0, 0
    while left < len(server_only) or right < len(in_order):
        if left >= len(server_only):
            result.append(in_order[right])
            right += 1
        elif right >= len(in_order):
            result.append(server_only[left])
            left += 1
        else:
            left_index = _position(server_order, server_only[left], key)
            right_index = _position(server_order, in_order[right], key)
            if left_index >= 0 and right_index >= 0 and left_index < right_index:
                result.append(server_only[left])
                left += 1
            else:
                result.append(in_order[right])
                right += 1
    return result
