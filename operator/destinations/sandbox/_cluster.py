"""The API server's semantics over the store: create, read, update, patch and delete.

This is where Kubernetes' rules live, independent of HTTP: optimistic concurrency through
resourceVersion, generation bumps on spec changes, the status subresource split, finalizers and
deletionTimestamp, CRD registration, schema pruning/defaulting/validation and admission hooks.
The HTTP layer only parses requests into calls here, and the kubelet and garbage collector use the
same calls, so every writer obeys the same rules.
"""

from __future__ import annotations

import base64
import builtins
import copy
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from . import _objects
from ._errors import ApiError, already_exists, bad_request, conflict, gone, invalid, not_found
from ._patch import go_json_type, json_merge_patch, json_patch, strategic_merge_patch
from ._resources import Registry, ResourceType, resource_types_of_crd
from ._schema import apply_schema
from ._selectors import fields_match, labels_match, parse_field_selector, parse_label_selector
from ._store import Store
from ._tls import certificates
from ._webhooks import Webhooks

Json = dict[str, Any]

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
#: The ConfigMap with the cluster's CA that every namespace gets.
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
_ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
    "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
    "distributions of Kubernetes clusters."
)
#: The finalizer that holds a deleted CRD until its custom resources are gone.
CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
NAMESPACE_KEY = ("", "namespaces")
POD_KEY = ("", "pods")
_IGNORED_FOR_GENERATION = ("metadata", "status", "apiVersion", "kind")


@dataclass(frozen=True)
class Caller:
    """Who sends a request, as admission's userInfo reports it."""

    username: str
    groups: tuple[str, ...] = ("system:authenticated",)
    uid: str = ""


SYSTEM = Caller("system:apiserver", ("system:masters",))


@dataclass
class Options:
    """Per-request options that change how a write is carried out."""

    caller: Caller = SYSTEM
    dry_run: bool = False
    field_validation: str = "Warn"  # Ignore, Warn, Strict
    field_manager: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AdmissionRequest:
    """What an admission hook gets to see: the operation, the object and the caller."""

    operation: str  # CREATE, UPDATE, DELETE
    resource_type: ResourceType
    namespace: str
    name: str
    subresource: str
    obj: Json | None
    old: Json | None
    caller: Caller
    dry_run: bool


#: An admission hook may return a mutated object, return None to accept, or raise ApiError to refuse.
AdmissionHook = Callable[[AdmissionRequest], Awaitable[Json | None]]


@dataclass
class ListResult:
    items: list[Json]
    resource_version: int
    continue_token: str = ""
    remaining: int | None = None


def _without_version(obj: Json) -> Json:
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    meta.pop("managedFields", None)
    return {**obj, "metadata": meta}


def _spec_part(obj: Json) -> Json:
    return {k: v for k, v in obj.items() if k not in _IGNORED_FOR_GENERATION}


def _apply_needs_a_field_manager() -> ApiError:
    """The real server's refusal of an apply patch without `?fieldManager=`: PatchOptions is invalid."""
    return ApiError(
        422,
        "Invalid",
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
        details={
            "group": "meta.k8s.io",
            "kind": "PatchOptions",
            "causes": [
                {
                    "reason": "FieldValueRequired",
                    "message": "Required value: is required for apply patch",
                    "field": "fieldManager",
                }
            ],
        },
    )


class Cluster:
    """The API semantics of one sandbox cluster."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self.admission_hooks: list[AdmissionHook] = []
        #: Webhooks registered through Mutating/ValidatingWebhookConfigurations, run after the hooks.
        self.webhooks = Webhooks(store)
        #: Called when a pod is deleted gracefully, so the kubelet can stop it before it goes.
        self.pod_kill_requested: Callable[[Json], None] | None = None

    # --- helpers -----------------------------------------------------------------------------

    def _require_namespace(self, resource_type: ResourceType, namespace: str, name: str) -> None:
        if not resource_type.namespaced:
            return
        namespace_obj = self.store.get(NAMESPACE_KEY, "", namespace)
        if namespace_obj is None:
            raise not_found("namespaces", "", namespace)
        _objects.refuse_if_terminating(namespace_obj, resource_type.plural, name, namespace)

    async def _admit(
        self,
        operation: str,
        resource_type: ResourceType,
        obj: Json | None,
        old: Json | None,
        options: Options,
        subresource: str = "",
        *,
        mutating: bool,
    ) -> Json | None:
        """One admission phase, as kube-apiserver runs them around the object's validation: mutating
        (in-process hooks, then mutating webhooks), then the schema and built-in checks, then validating.
        """

        def request_for(current: Json | None) -> AdmissionRequest:
            meta = (current or old or {}).get("metadata") or {}
            return AdmissionRequest(
                operation,
                resource_type,
                meta.get("namespace", ""),
                meta.get("name", ""),
                subresource,
                current,
                old,
                options.caller,
                options.dry_run,
            )

        if mutating:
            for hook in self.admission_hooks:
                mutated = await hook(request_for(obj))
                if mutated is not None and obj is not None:
                    obj = mutated
        # Registered webhooks see the object as the in-process hooks left it.
        return await self.webhooks.admit(request_for(obj), options.warnings, mutating=mutating)

    def _check_schema(self, resource_type: ResourceType, obj: Json, options: Options) -> Json:
        if not resource_type.custom or resource_type.schema is None:
            return obj
        name_causes = _metadata_name_causes(obj["metadata"].get("name", ""), resource_type.schema)
        if name_causes:
            raise invalid(
                resource_type.kind, resource_type.group, obj["metadata"].get("name", ""), name_causes
            )
        outcome = apply_schema(obj, resource_type.schema)
        if outcome.unknown_fields and options.field_validation == "Strict":
            names = ", ".join(f'unknown field "{path}"' for path in outcome.unknown_fields)
            raise bad_request(
                f'{resource_type.kind} in version "{resource_type.version}" cannot be handled as a '
                f"{resource_type.kind}: strict decoding error: {names}"
            )
        if outcome.unknown_fields and options.field_validation == "Warn":
            options.warnings.extend(f'unknown field "{path}"' for path in outcome.unknown_fields)
        if outcome.causes:
            raise invalid(
                resource_type.kind, resource_type.group, obj["metadata"].get("name", ""), outcome.causes
            )
        return outcome.obj

    def _served(self, resource_type: ResourceType, obj: Json) -> Json:
        """The object as its requested version presents it (all versions share one schema here)."""
        if obj.get("apiVersion") == resource_type.api_version:
            return obj
        return {**obj, "apiVersion": resource_type.api_version}

    def _commit(self, resource_type: ResourceType, obj: Json, options: Options) -> Json:
        if options.dry_run:
            return obj
        stored = self.store.put(resource_type.storage_key, obj)
        if resource_type.storage_key == CRD_KEY:
            self._register_crd(stored)
        return stored

    def _register_crd(self, crd: Json) -> None:
        self.registry.set_crd(crd["metadata"]["name"], resource_types_of_crd(crd))

    # --- reads -------------------------------------------------------------------------------

    def get(self, resource_type: ResourceType, namespace: str, name: str) -> Json:
        obj = self.store.get(resource_type.storage_key, namespace if resource_type.namespaced else "", name)
        if obj is None:
            raise not_found(resource_type.plural, resource_type.group, name)
        return self._served(resource_type, obj)

    def list(
        self,
        resource_type: ResourceType,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> ListResult:
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, resource_type.storage_key, custom=resource_type.custom)
        key = resource_type.storage_key
        start_after: tuple[str, str] | None = None
        version = self.store.resource_version
        if continue_token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                start_after = (decoded["ns"], decoded["name"])
                token_version = int(decoded["rv"])
            except (ValueError, KeyError, TypeError) as error:
                raise bad_request(f"continue key is not valid: {error}") from None
            if token_version < self.store.oldest_resumable(key):
                raise gone(
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start "
                    "a new list without the continue parameter."
                )
            version = token_version
        exact = next((r for r in labels if r.operator in ("=", "in")), None)
        if exact is not None:
            candidates = self.store.labelled(key, namespace, exact.key, exact.values)
        else:
            candidates = self.store.sorted_objects(key, namespace)
        items: list[Json] = []
        token = ""
        remaining: int | None = None
        for index, obj in enumerate(candidates):
            meta = obj["metadata"]
            if start_after is not None and (meta.get("namespace", ""), meta["name"]) <= start_after:
                continue
            if not (labels_match(labels, obj) and fields_match(fields, obj)):
                continue
            if limit and len(items) >= limit:
                last = items[-1]["metadata"]
                token = base64.urlsafe_b64encode(
                    json.dumps(
                        {"rv": version, "ns": last.get("namespace", ""), "name": last["name"]}
                    ).encode()
                ).decode()
                if not labels and not fields:
                    remaining = len(candidates) - index
                break
            items.append(self._served(resource_type, obj))
        return ListResult(items, version, token, remaining)

    # --- create ------------------------------------------------------------------------------

    async def create(
        self, resource_type: ResourceType, namespace: str, body: Json, options: Options | None = None
    ) -> Json:
        options = options or Options()
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        self._check_type(resource_type, obj)
        if resource_type.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = _objects.generated_name(meta["generateName"])
            else:
                raise invalid(
                    resource_type.kind,
                    resource_type.group,
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "field": "metadata.name",
                            "message": "Required value: name or generateName is required",
                        }
                    ],
                )
        name = meta["name"]
        causes = _objects.name_errors(resource_type, name) + _objects.metadata_errors(meta)
        if causes:
            raise invalid(resource_type.kind, resource_type.group, name, causes)
        self._require_namespace(resource_type, namespace, name)
        for transient in (
            "resourceVersion",
            "uid",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
        ):
            meta.pop(transient, None)
        meta["uid"] = _objects.new_uid()
        meta["creationTimestamp"] = _objects.now()
        if resource_type.tracks_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if resource_type.has_status and resource_type.custom:
            obj.pop("status", None)
        causes = _objects.apply_create_defaults(resource_type, obj)
        if causes:
            raise invalid(resource_type.kind, resource_type.group, name, causes)
        if resource_type.storage_key == CRD_KEY:
            obj["status"] = _objects.crd_status(obj)
        admitted = await self._admit("CREATE", resource_type, obj, None, options, mutating=True)
        obj = self._check_schema(resource_type, admitted or obj, options)
        await self._admit("CREATE", resource_type, obj, None, options, mutating=False)
        if self.store.get(resource_type.storage_key, meta.get("namespace", ""), name) is not None:
            raise already_exists(resource_type.plural, resource_type.group, name)
        stored = self._commit(resource_type, obj, options)
        if resource_type.storage_key == NAMESPACE_KEY and not options.dry_run:
            await self._create_default_service_account(name)
            await self._publish_root_ca(name)
        return self._served(resource_type, stored)

    def _check_type(self, resource_type: ResourceType, obj: Json) -> None:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if kind and kind != resource_type.kind:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({resource_type.api_version})"
                if api_version and api_version != resource_type.api_version
                else f"kind {kind} does not match the expected kind {resource_type.kind}"
            )
        obj["apiVersion"] = resource_type.api_version
        obj["kind"] = resource_type.kind

    async def _create_default_service_account(self, namespace: str) -> None:
        service_accounts = self.registry.lookup("", "v1", "serviceaccounts")
        if (
            service_accounts is not None
            and self.store.get(service_accounts.storage_key, namespace, "default") is None
        ):
            await self.create(service_accounts, namespace, {"metadata": {"name": "default"}})

    async def _publish_root_ca(self, namespace: str) -> None:
        """The `kube-root-ca.crt` ConfigMap that kube-controller-manager's root-ca-cert-publisher puts
        into every namespace: the CA that verifies the API server, for pods to mount.

        Reference: https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/#root-ca-certificate-configmap
        """
        configmaps = self.registry.lookup("", "v1", "configmaps")
        if configmaps is None or self.store.get(configmaps.storage_key, namespace, ROOT_CA_CONFIGMAP):
            return
        body = {
            "metadata": {
                "name": ROOT_CA_CONFIGMAP,
                "annotations": {"kubernetes.io/description": _ROOT_CA_DESCRIPTION},
            },
            "data": {"ca.crt": certificates().ca_pem.decode()},
        }
        await self.create(configmaps, namespace, body)

    # --- update ------------------------------------------------------------------------------

    async def update(
        self,
        resource_type: ResourceType,
        namespace: str,
        name: str,
        body: Json,
        options: Options | None = None,
        *,
        subresource: str = "",
    ) -> Json:
        options = options or Options()
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        namespace = namespace if resource_type.namespaced else ""
        old = self.store.get(resource_type.storage_key, namespace, name)
        if old is None:
            raise not_found(resource_type.plural, resource_type.group, name)
        body_meta = body.get("metadata") or {}
        if body_meta.get("name") and body_meta["name"] != name:
            raise bad_request(
                f"the name of the object ({body_meta['name']}) does not match the name on the URL ({name})"
            )
        requested_version = body_meta.get("resourceVersion")
        if not requested_version and not resource_type.unconditional_update and not subresource:
            raise invalid(
                resource_type.kind,
                resource_type.group,
                name,
                [
                    {
                        "reason": "FieldValueInvalid",
                        "field": "metadata.resourceVersion",
                        "message": "Invalid value: 0x0: must be specified for an update",
                    }
                ],
            )
        if requested_version and requested_version != old["metadata"]["resourceVersion"]:
            raise conflict(resource_type.plural, resource_type.group, name)
        new = self._prepare_update(resource_type, old, body, subresource)
        operation_subresource = subresource
        admitted = await self._admit(
            "UPDATE", resource_type, new, old, options, operation_subresource, mutating=True
        )
        new = admitted or new
        if not subresource or resource_type.custom:
            new = self._check_schema(resource_type, new, options)
        await self._admit("UPDATE", resource_type, new, old, options, operation_subresource, mutating=False)
        # Admission hooks may have awaited: the object can have changed meanwhile.
        current = self.store.get(resource_type.storage_key, namespace, name)
        if current is None:
            raise not_found(resource_type.plural, resource_type.group, name)
        if current["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise conflict(resource_type.plural, resource_type.group, name)
        return self._served(resource_type, self._store_update(resource_type, old, new, options))

    def _prepare_update(self, resource_type: ResourceType, old: Json, body: Json, subresource: str) -> Json:
        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in body:
                new["status"] = copy.deepcopy(body["status"])
            else:
                new.pop("status", None)
            return new
        if subresource:
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource ({subresource})"
            )
        new = copy.deepcopy(body)
        self._check_type(resource_type, new)
        meta = new.setdefault("metadata", {})
        old_meta = old["metadata"]
        for preserved in (
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if preserved in old_meta:
                meta[preserved] = old_meta[preserved]
            else:
                meta.pop(preserved, None)
        meta.pop("selfLink", None)
        meta.pop("managedFields", None)
        if resource_type.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
            if added:
                raise invalid(
                    resource_type.kind,
                    resource_type.group,
                    old_meta["name"],
                    [
                        {
                            "reason": "FieldValueForbidden",
                            "field": "metadata.finalizers",
                            "message": "Forbidden: no new finalizers can be added if the object is "
                            "being deleted",
                        }
                    ],
                )
        causes = _objects.metadata_errors(new.get("metadata") or {}) or _objects.apply_update_rules(
            resource_type, old, new
        )
        if causes:
            raise invalid(resource_type.kind, resource_type.group, old_meta["name"], causes)
        if resource_type.storage_key == CRD_KEY:
            new["status"] = _objects.crd_status(new)
        return new

    def _store_update(self, resource_type: ResourceType, old: Json, new: Json, options: Options) -> Json:
        if _without_version(new) == _without_version(old):
            return old  # a no-op write changes nothing, not even the resourceVersion
        meta = new["metadata"]
        if "generation" in meta and _spec_part(new) != _spec_part(old):
            meta["generation"] = int(meta["generation"]) + 1
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and not meta.get("deletionGracePeriodSeconds")
        ):
            if options.dry_run:
                return new
            return self._remove(resource_type, old)
        return self._commit(resource_type, new, options)

    # --- patch -------------------------------------------------------------------------------

    async def patch(
        self,
        resource_type: ResourceType,
        namespace: str,
        name: str,
        patch_type: str,
        raw_body: bytes,
        options: Options | None = None,
        *,
        subresource: str = "",
        force: bool = False,
    ) -> Json:
        options = options or Options()
        namespace = namespace if resource_type.namespaced else ""
        content_type = patch_type.split(";")[0].strip()
        try:
            if content_type == "application/apply-patch+yaml":
                document = yaml.safe_load(raw_body.decode() or "{}")
            else:
                document = json.loads(raw_body or b"null")
        except (ValueError, yaml.YAMLError) as error:
            raise bad_request(f"error decoding patch: {error}") from None
        current = self.store.get(resource_type.storage_key, namespace, name)
        if content_type == "application/apply-patch+yaml":
            if not options.field_manager:
                raise _apply_needs_a_field_manager()
            if not isinstance(document, dict):
                raise bad_request(
                    "error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot "
                    f"unmarshal {go_json_type(document)} into Go value of type map[string]interface {{}}"
                )
            if current is None and not subresource:
                document.setdefault("metadata", {})["name"] = name
                return await self.create(resource_type, namespace, document, options)
        if current is None:
            raise not_found(resource_type.plural, resource_type.group, name)
        base = self._served(resource_type, current)
        if content_type == "application/json-patch+json":
            patched = json_patch(base, document)
        elif content_type == "application/merge-patch+json":
            patched = json_merge_patch(base, document)
        elif content_type == "application/strategic-merge-patch+json":
            if not resource_type.strategic_merge:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                )
            patched = strategic_merge_patch(base, document)
        elif content_type == "application/apply-patch+yaml":
            patched = (
                strategic_merge_patch(base, document)
                if resource_type.strategic_merge
                else json_merge_patch(base, document)
            )
        else:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - {content_type}",
            )
        if not isinstance(patched, dict):
            raise bad_request("the patch must produce an object")
        patched.setdefault("metadata", {})
        requested = patched["metadata"].get("resourceVersion")
        if requested and requested != current["metadata"]["resourceVersion"]:
            raise conflict(resource_type.plural, resource_type.group, name)
        patched["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return await self.update(resource_type, namespace, name, patched, options, subresource=subresource)

    # --- delete ------------------------------------------------------------------------------

    async def delete(
        self,
        resource_type: ResourceType,
        namespace: str,
        name: str,
        delete_options: Json | None = None,
        options: Options | None = None,
    ) -> Json:
        options = options or Options()
        delete_options = delete_options or {}
        namespace = namespace if resource_type.namespaced else ""
        obj = self.store.get(resource_type.storage_key, namespace, name)
        if obj is None:
            raise not_found(resource_type.plural, resource_type.group, name)
        meta = obj["metadata"]
        preconditions = delete_options.get("preconditions") or {}
        if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
            raise conflict(
                resource_type.plural,
                resource_type.group,
                name,
                f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in object "
                f"meta: {meta.get('uid')}",
            )
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != meta.get(
            "resourceVersion"
        ):
            raise conflict(
                resource_type.plural,
                resource_type.group,
                name,
                f"Precondition failed: ResourceVersion in precondition: {preconditions['resourceVersion']}, "
                f"ResourceVersion in object meta: {meta.get('resourceVersion')}",
            )
        await self._admit("DELETE", resource_type, None, obj, options, mutating=True)
        await self._admit("DELETE", resource_type, None, obj, options, mutating=False)
        policy = delete_options.get("propagationPolicy") or (
            "Orphan" if delete_options.get("orphanDependents") else "Background"
        )
        if policy not in ("Background", "Foreground", "Orphan"):
            raise invalid(
                "DeleteOptions",
                "",
                "",
                [
                    {
                        "reason": "FieldValueNotSupported",
                        "field": "propagationPolicy",
                        "message": f'Unsupported value: "{policy}": supported values: "Foreground", '
                        f'"Background", "Orphan", "nil"',
                    }
                ],
            )
        if options.dry_run:
            return self._served(resource_type, obj)
        if policy == "Orphan":
            await self._orphan_dependents(meta.get("uid", ""))
        grace = self._grace_period(resource_type, obj, delete_options)
        finalizers = list(meta.get("finalizers") or [])
        if (
            policy == "Foreground"
            and self.store.dependents(meta.get("uid", ""))
            and "foregroundDeletion" not in finalizers
        ):
            finalizers.append("foregroundDeletion")
        if resource_type.storage_key == NAMESPACE_KEY:
            return self._served(resource_type, self._start_namespace_deletion(resource_type, obj))
        if resource_type.storage_key == CRD_KEY and not meta.get("deletionTimestamp"):
            return self._served(resource_type, self._start_crd_deletion(resource_type, obj))
        if meta.get("deletionTimestamp"):
            if resource_type.storage_key == POD_KEY and grace == 0 and meta.get("deletionGracePeriodSeconds"):
                pass  # a forced delete of a terminating pod proceeds below
            else:
                return self._served(resource_type, obj)
        if finalizers or grace > 0:
            new = copy.deepcopy(obj)
            new_meta = new["metadata"]
            if not new_meta.get("deletionTimestamp") or grace == 0:
                moment = datetime.now(UTC) + timedelta(seconds=grace)
                new_meta["deletionTimestamp"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            new_meta["deletionGracePeriodSeconds"] = grace
            new_meta["finalizers"] = finalizers
            if not finalizers:
                new_meta.pop("finalizers")
            if "generation" in new_meta and not meta.get("deletionTimestamp"):
                new_meta["generation"] = int(new_meta["generation"]) + 1
            if finalizers or grace > 0:
                stored = self._commit(resource_type, new, options)
                if grace > 0 and resource_type.storage_key == POD_KEY and self.pod_kill_requested is not None:
                    self.pod_kill_requested(stored)
                return self._served(resource_type, stored)
        return self._served(resource_type, self._remove(resource_type, obj))

    def _grace_period(self, resource_type: ResourceType, obj: Json, delete_options: Json) -> int:
        if resource_type.storage_key != POD_KEY:
            return 0
        requested = delete_options.get("gracePeriodSeconds")
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        if requested is None:
            requested = obj["metadata"].get("deletionGracePeriodSeconds") or spec.get(
                "terminationGracePeriodSeconds", 30
            )
        return max(0, int(requested))

    def _remove(self, resource_type: ResourceType, obj: Json) -> Json:
        meta = obj["metadata"]
        if resource_type.storage_key == CRD_KEY:
            self._drop_crd(obj)
        removed = self.store.remove(resource_type.storage_key, meta.get("namespace", ""), meta["name"])
        return removed or obj

    def _start_crd_deletion(self, resource_type: ResourceType, crd: Json) -> Json:
        """Mark a CRD terminating, as apiextensions' REST.Delete does; the answer is that CRD.

        The `customresourcecleanup` finalizer holds it while the controllers delete its custom resources
        (`Controllers`), then it goes and its resource stops being served.
        Reference: k8s.io/apiextensions-apiserver/pkg/registry/customresourcedefinition/etcd.go.
        """
        new = copy.deepcopy(crd)
        meta = new["metadata"]
        meta["deletionTimestamp"] = _objects.now()
        finalizers = list(meta.get("finalizers") or [])
        if CRD_CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CRD_CLEANUP_FINALIZER)
        meta["finalizers"] = finalizers
        new["status"] = _objects.crd_terminating(
            new,
            "InstanceDeletionPending",
            "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
        )
        return self._commit(resource_type, new, Options())

    def _drop_crd(self, crd: Json) -> None:
        types = self.registry.remove_crd(crd["metadata"]["name"])
        for key in {resource_type.storage_key for resource_type in types}:
            for namespace in self.store.namespaces_in_use(key):
                for custom in list(self.store.iter_objects(key, namespace)):
                    self.store.remove(key, namespace, custom["metadata"]["name"])
            self.store.drop_resource(key)

    async def _orphan_dependents(self, owner_uid: str) -> None:
        for key, namespace, name in self.store.dependents(owner_uid):
            dependent = self.store.get(key, namespace, name)
            resource_type = self.registry.by_storage_key(key)
            if dependent is None or resource_type is None:
                continue
            new = copy.deepcopy(dependent)
            new["metadata"]["ownerReferences"] = [
                ref for ref in new["metadata"].get("ownerReferences") or [] if ref.get("uid") != owner_uid
            ]
            if not new["metadata"]["ownerReferences"]:
                del new["metadata"]["ownerReferences"]
            self._commit(resource_type, new, Options())

    def _start_namespace_deletion(self, resource_type: ResourceType, namespace_obj: Json) -> Json:
        if namespace_obj["metadata"].get("deletionTimestamp"):
            return namespace_obj
        new = copy.deepcopy(namespace_obj)
        new["metadata"]["deletionTimestamp"] = _objects.now()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        new["status"] = {"phase": "Terminating"}
        return self._commit(resource_type, new, Options())

    async def delete_collection(
        self,
        resource_type: ResourceType,
        namespace: str | None,
        *,
        label_selector: str | None,
        field_selector: str | None,
        delete_options: Json | None,
        options: Options | None = None,
    ) -> builtins.list[Json]:
        matched = self.list(
            resource_type, namespace, label_selector=label_selector, field_selector=field_selector
        )
        deleted = []
        for obj in matched.items:
            meta = obj["metadata"]
            try:
                deleted.append(
                    await self.delete(
                        resource_type, meta.get("namespace", ""), meta["name"], delete_options, options
                    )
                )
            except ApiError as error:
                if error.code != 404:
                    raise
        return deleted

    # --- start-up ----------------------------------------------------------------------------

    async def bootstrap(self) -> None:
        """The objects every cluster has: the system namespaces and the default ServiceAccount."""
        namespaces = self.registry.lookup("", "v1", "namespaces")
        assert namespaces is not None
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            if self.store.get(NAMESPACE_KEY, "", name) is None:
                await self.create(namespaces, "", {"metadata": {"name": name}})


def _metadata_name_causes(name: str, schema: Json) -> list[Json]:
    """The CRD schema's rules for metadata.name (the only metadata a CRD may constrain besides
    generateName), worded as kube-apiserver words them: its object-meta validation, not kube-openapi's.
    """
    rules = (((schema.get("properties") or {}).get("metadata") or {}).get("properties") or {}).get(
        "name"
    ) or {}
    causes: list[Json] = []
    if "maxLength" in rules and len(name.encode()) > int(rules["maxLength"]):
        causes.append(
            {
                "reason": "FieldValueTooLong",
                "field": "metadata.name",
                "message": f"Too long: may not be more than {int(rules['maxLength'])} bytes",
            }
        )
    elif "pattern" in rules and re.search(str(rules["pattern"]), name) is None:
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "field": "metadata.name",
                "message": (
                    f"Invalid value: \"{name}\": metadata.name in body should match '{rules['pattern']}'"
                ),
            }
        )
    return causes
