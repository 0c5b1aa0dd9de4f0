"""Discovery (/api, /apis, group/version resource lists), /version and the OpenAPI v3 documents.

kubectl maps kinds to URLs through discovery and decides how to validate through OpenAPI: when a
group/version's OpenAPI v3 document advertises the `fieldValidation` parameter on PATCH, kubectl 1.27+
leaves validation to the server (`fieldValidation=Strict`) instead of validating client-side. The
documents here therefore describe every path with that parameter, and embed each CRD's schema. They do
not advertise strategic merge patch, so kubectl computes strategic patches from its compiled-in types,
which carry the exact merge keys.
"""

from __future__ import annotations

import re
from typing import Any

from ._resources import Registry, ResourceType

Json = dict[str, Any]

KUBERNETES_VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version order: GA before beta before alpha, higher numbers first (sort ascending)."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0)
    stability = {"": 0, "beta": 1, "alpha": 2}[match.group(2) or ""]
    return (stability, -int(match.group(1)), -int(match.group(3) or 0))


def api_versions(server_address: str) -> Json:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(name: str, versions: list[str]) -> Json:
    ordered = sorted(versions, key=version_priority)
    entries = [{"groupVersion": f"{name}/{version}", "version": version} for version in ordered]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: Registry) -> Json:
    groups = [_group(name, versions) for name, versions in registry.group_versions().items() if name]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, name: str) -> Json | None:
    versions = registry.group_versions().get(name)
    if not versions or not name:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def api_resource_list(registry: Registry, group: str, version: str) -> Json | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources = [
        entry
        for resource_type in sorted(types, key=lambda t: t.plural)
        for entry in resource_type.discovery_entry()
    ]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


# --- OpenAPI v3 --------------------------------------------------------------------------------


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_root(registry: Registry) -> Json:
    paths = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash=G{registry.generation}"}
    return {"paths": paths}


def _schema_name(resource_type: ResourceType) -> str:
    group = ".".join(reversed(resource_type.group.split("."))) if resource_type.group else "io.k8s.api.core"
    return f"{group}.{resource_type.version}.{resource_type.kind}"


_QUERY_PARAMETERS = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")


def _operation(
    resource_type: ResourceType, action: str, schema_ref: Json, content: list[str] | None = None
) -> Json:
    gvk = {"group": resource_type.group, "version": resource_type.version, "kind": resource_type.kind}
    operation: Json = {
        "operationId": f"{action}{resource_type.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
        "parameters": [
            {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for name in _QUERY_PARAMETERS
        ],
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema_ref}}}},
    }
    if content:
        operation["requestBody"] = {
            "content": {media: {"schema": schema_ref} for media in content},
            "required": True,
        }
    return operation


def openapi_v3_group_version(registry: Registry, group: str, version: str) -> Json | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    prefix = "/" + _gv_path(group, version)
    paths: Json = {}
    schemas: Json = {}
    for resource_type in types:
        name = _schema_name(resource_type)
        ref = {"$ref": f"#/components/schemas/{name}"}
        schema: Json = dict(resource_type.schema or {"type": "object"})
        if not resource_type.schema:
            schema["x-kubernetes-preserve-unknown-fields"] = True
        schema["x-kubernetes-group-version-kind"] = [
            {"group": resource_type.group, "version": resource_type.version, "kind": resource_type.kind}
        ]
        schemas[name] = schema
        collection = (
            f"{prefix}/namespaces/{{namespace}}/{resource_type.plural}"
            if resource_type.namespaced
            else f"{prefix}/{resource_type.plural}"
        )
        patch_types = [
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ]
        paths[collection] = {
            "get": _operation(resource_type, "list", ref),
            "post": _operation(resource_type, "post", ref, ["application/json", "application/yaml"]),
        }
        paths[f"{collection}/{{name}}"] = {
            "get": _operation(resource_type, "get", ref),
            "put": _operation(resource_type, "put", ref, ["application/json", "application/yaml"]),
            "patch": _operation(resource_type, "patch", ref, patch_types),
            "delete": _operation(resource_type, "delete", ref),
        }
        if resource_type.has_status:
            paths[f"{collection}/{{name}}/status"] = {
                "get": _operation(resource_type, "get", ref),
                "put": _operation(resource_type, "put", ref, ["application/json"]),
                "patch": _operation(resource_type, "patch", ref, patch_types),
            }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }
