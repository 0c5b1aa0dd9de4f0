"""The kinds the sandbox serves: built-in ones and those defined by CustomResourceDefinitions.

A `ResourceType` carries what discovery, routing, validation and table output need to know about one
group/version/resource. The `Registry` indexes them by path segment (plural) and by kind so a request
is routed with dictionary look-ups only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

#: Verbs of an ordinary read-write resource, as discovery lists them.
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One served group/version/resource and the behaviour the API server attaches to it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    #: Subresources beyond the main resource: "status", "log", "eviction", "scale"...
    subresources: frozenset[str] = frozenset()
    verbs: tuple[str, ...] = ALL_VERBS
    #: True for custom resources: generation tracks every change outside metadata and status.
    custom: bool = False
    #: Built-ins bump generation on spec changes only; kinds without a spec keep generation unset.
    tracks_generation: bool = False
    #: The structural schema of a custom resource version (None: no validation, nothing pruned).
    schema: Json | None = field(default=None, compare=False, hash=False)
    printer_columns: tuple[Json, ...] = field(default=(), compare=False, hash=False)
    #: Built-ins that kubectl applies with strategic merge patch; custom resources only take merge patch.
    strategic_merge: bool = True
    #: Whether PUT without metadata.resourceVersion is accepted (custom resources refuse it).
    unconditional_update: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> tuple[str, str]:
        """Objects of all versions of a resource share one storage, keyed by group and plural."""
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def discovery_entry(self) -> list[Json]:
        """APIResource entries for this resource and its subresources, as in an APIResourceList."""
        main: Json = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.categories:
            main["categories"] = list(self.categories)
        entries = [main]
        for subresource in sorted(self.subresources):
            verbs = {"log": ["get"], "eviction": ["create"]}.get(subresource, ["get", "patch", "update"])
            kind = {"log": "Pod", "eviction": "Eviction", "scale": "Scale"}.get(subresource, self.kind)
            group = "policy" if subresource == "eviction" else None
            entry: Json = {
                "name": f"{self.plural}/{subresource}",
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": kind,
                "verbs": verbs,
            }
            if group:
                entry.update(group=group, version="v1")
            entries.append(entry)
        return entries


def _builtin(
    group: str,
    version: str,
    plural: str,
    kind: str,
    namespaced: bool,
    *,
    short_names: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    subresources: tuple[str, ...] = (),
    tracks_generation: bool = False,
    verbs: tuple[str, ...] = ALL_VERBS,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        singular=kind.lower(),
        short_names=short_names,
        categories=categories,
        subresources=frozenset(subresources),
        tracks_generation=tracks_generation,
        verbs=verbs,
    )


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _builtin(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        short_names=("ns",),
        subresources=("status", "finalize"),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _builtin(
        "",
        "v1",
        "pods",
        "Pod",
        True,
        short_names=("po",),
        categories=("all",),
        subresources=("status", "log", "eviction"),
    ),
    _builtin("", "v1", "secrets", "Secret", True),
    _builtin("", "v1", "configmaps", "ConfigMap", True, short_names=("cm",)),
    _builtin("", "v1", "events", "Event", True, short_names=("ev",)),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", True, short_names=("sa",)),
    _builtin(
        "",
        "v1",
        "services",
        "Service",
        True,
        short_names=("svc",),
        categories=("all",),
        subresources=("status",),
    ),
    _builtin("", "v1", "endpoints", "Endpoints", True, short_names=("ep",)),
    _builtin("events.k8s.io", "v1", "events", "Event", True, short_names=("ev",)),
    _builtin(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        True,
        short_names=("deploy",),
        categories=("all",),
        subresources=("status", "scale"),
        tracks_generation=True,
    ),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease", True),
    _builtin("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    _builtin("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        subresources=("status",),
        tracks_generation=True,
    ),
    _builtin(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        False,
        categories=("api-extensions",),
        tracks_generation=True,
    ),
    _builtin(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        False,
        categories=("api-extensions",),
        tracks_generation=True,
    ),
    _builtin("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, short_names=("pc",)),
    _builtin("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, short_names=("pdb",)),
)


def resource_types_of_crd(crd: Json) -> list[ResourceType]:
    """The served versions of a CustomResourceDefinition as resource types."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    types = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = set((version.get("subresources") or {}).keys())
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        types.append(
            ResourceType(
                group=spec.get("group", ""),
                version=version["name"],
                plural=names.get("plural", ""),
                kind=names.get("kind", ""),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or names.get("kind", "").lower(),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=frozenset(subresources),
                custom=True,
                tracks_generation=True,
                schema=schema,
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                strategic_merge=False,
                unconditional_update=False,
            )
        )
    return types


class Registry:
    """All served resource types, indexed for routing."""

    def __init__(self) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._crd_types: dict[str, list[ResourceType]] = {}
        for resource_type in BUILTIN_TYPES:
            self._by_path[(resource_type.group, resource_type.version, resource_type.plural)] = resource_type
        #: Bumped on every change so discovery and OpenAPI documents can be cached between changes.
        self.generation = 0

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._by_path.values())

    def group_versions(self) -> dict[str, list[str]]:
        """Each group with its served versions, preferred (first served, as written in the CRD) first."""
        groups: dict[str, list[str]] = {}
        for group, version, _ in self._by_path:
            versions = groups.setdefault(group, [])
            if version not in versions:
                versions.append(version)
        return groups

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for (g, v, _), rt in self._by_path.items() if g == group and v == version]

    def by_storage_key(self, key: tuple[str, str]) -> ResourceType | None:
        for resource_type in self._by_path.values():
            if resource_type.storage_key == key:
                return resource_type
        return None

    def set_crd(self, crd_name: str, types: list[ResourceType]) -> None:
        """Serve the versions of one CRD, replacing what it served before."""
        self.remove_crd(crd_name)
        for resource_type in types:
            self._by_path[(resource_type.group, resource_type.version, resource_type.plural)] = resource_type
        self._crd_types[crd_name] = types
        self.generation += 1

    def remove_crd(self, crd_name: str) -> list[ResourceType]:
        removed = self._crd_types.pop(crd_name, [])
        for resource_type in removed:
            self._by_path.pop((resource_type.group, resource_type.version, resource_type.plural), None)
        if removed:
            self.generation += 1
        return removed

    def crd_types(self, crd_name: str) -> list[ResourceType]:
        return list(self._crd_types.get(crd_name, []))
