"""Admission webhooks registered through Mutating/ValidatingWebhookConfiguration objects, called the way
kube-apiserver calls them.

For every create, update and delete the sandbox looks up the configurations in its own store, picks the
webhooks whose rules, namespaceSelector and objectSelector match, and POSTs an `AdmissionReview`
(admission.k8s.io/v1) over HTTPS, trusting only the webhook's `caBundle`. Mutating webhooks run first,
in configuration-name order, and their JSONPatch responses are applied before the next one is called;
validating webhooks then see the final object. A refusal becomes the Status kube-apiserver returns
(`admission webhook "<name>" denied the request: <message>`), response warnings become `Warning:`
headers (kubectl prints them), and a webhook that cannot be reached or does not answer within
`timeoutSeconds` refuses the request (`failurePolicy: Fail`, the default) or is skipped (`Ignore`).
A dry-run request is refused if a matching webhook declares side effects (`Unknown` or `Some`).

Service references cannot resolve on a development machine, so `clientConfig.service` is mapped to a
local address: `Sandbox.set_webhook_service(namespace, name, "127.0.0.1:9443")` (or the
`webhook_services` option, keyed `"<namespace>/<name>"`). The TLS server name stays the one
kube-apiserver checks, `<name>.<namespace>.svc`, so the serving certificate is verified as in a cluster.
`clientConfig.url` is called as written.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import ssl
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from ._errors import ApiError, bad_request
from ._patch import json_patch
from ._store import Store

if TYPE_CHECKING:  # _cluster imports this module; the type is only needed for annotations
    from ._cluster import AdmissionRequest

Json = dict[str, Any]

MUTATING_KEY = ("admissionregistration.k8s.io", "mutatingwebhookconfigurations")
VALIDATING_KEY = ("admissionregistration.k8s.io", "validatingwebhookconfigurations")
_NAMESPACE_KEY = ("", "namespaces")
DEFAULT_TIMEOUT_SECONDS = 10
_OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


class WebhookFailure(Exception):
    """The webhook could not be called or gave no usable answer (failurePolicy decides what happens)."""


# ------------------------------------------------------------------------------------------ matching


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels, matchExpressions); an empty or absent one matches all."""
    if not isinstance(selector, Mapping):
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = set(expression.get("values") or [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _resource_matches(patterns: list[str], plural: str, subresource: str) -> bool:
    """`pods`, `pods/status`, `*` (main resources only), `pods/*`, `*/status` and `*/*`, as in rules."""
    wanted = f"{plural}/{subresource}" if subresource else plural
    for pattern in patterns:
        if pattern in ("*/*", wanted):
            return True
        resource, _, sub = pattern.partition("/")
        if not sub and resource == "*" and not subresource:
            return True
        if sub and subresource and resource in ("*", plural) and sub in ("*", subresource):
            return True
    return False


def rule_matches(rule: Mapping[str, Any], call: AdmissionRequest) -> bool:
    """One RuleWithOperations against the request: operation, group, version, resource and scope."""
    resource_type = call.resource_type
    operations = rule.get("operations") or []
    if "*" not in operations and call.operation not in operations:
        return False
    if not _listed(rule.get("apiGroups"), resource_type.group):
        return False
    if not _listed(rule.get("apiVersions"), resource_type.version):
        return False
    if not _resource_matches(list(rule.get("resources") or []), resource_type.plural, call.subresource):
        return False
    scope = str(rule.get("scope", "*"))
    return scope == "*" or (scope == "Namespaced") == resource_type.namespaced


def _listed(values: Any, value: str) -> bool:
    values = values or []
    return "*" in values or value in values


def _labels(obj: Json | None) -> Mapping[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


# ------------------------------------------------------------------------------------------- calling


class Webhooks:
    """Finds and calls the webhooks registered in one sandbox's store."""

    def __init__(self, store: Store, service_addresses: Mapping[str, str] | None = None) -> None:
        self.store = store
        #: "<namespace>/<name>" of a Service → "host:port" where its webhook server listens locally.
        self.service_addresses: dict[str, str] = dict(service_addresses or {})

    def _webhooks(self, key: tuple[str, str]) -> list[Json]:
        found: list[Json] = []
        for configuration in self.store.sorted_objects(key, None):
            found.extend(w for w in configuration.get("webhooks") or [] if isinstance(w, dict))
        return found

    def _applies(self, webhook: Json, call: AdmissionRequest) -> bool:
        if call.resource_type.group == "admissionregistration.k8s.io":
            return False  # kube-apiserver never sends webhook configurations to webhooks
        if not any(rule_matches(rule, call) for rule in webhook.get("rules") or []):
            return False
        if call.resource_type.namespaced:
            namespace = self.store.get(_NAMESPACE_KEY, "", call.namespace)
            namespace_labels = _labels(namespace) or {"kubernetes.io/metadata.name": call.namespace}
            if not selector_matches(webhook.get("namespaceSelector"), namespace_labels):
                return False
        elif call.resource_type.storage_key == _NAMESPACE_KEY and not selector_matches(
            webhook.get("namespaceSelector"), _labels(call.obj or call.old)
        ):
            return False
        object_selector = webhook.get("objectSelector")
        return any(
            selector_matches(object_selector, _labels(candidate))
            for candidate in (call.obj, call.old)
            if candidate is not None
        )

    async def admit(self, call: AdmissionRequest, warnings: list[str], *, mutating: bool) -> Json | None:
        """Run the mutating or the validating webhooks; the (possibly patched) object, or raise ApiError."""
        obj = call.obj
        for webhook in self._webhooks(MUTATING_KEY if mutating else VALIDATING_KEY):
            current = dataclasses.replace(call, obj=obj)
            if not self._applies(webhook, current):
                continue
            if call.dry_run and webhook.get("sideEffects") not in ("None", "NoneOnDryRun"):
                raise bad_request(f'admission webhook "{webhook.get("name")}" does not support dry run')
            response = await self._call_with_policy(webhook, current)
            if response is None:
                continue
            warnings.extend(str(w) for w in response.get("warnings") or [])
            if not response.get("allowed"):
                raise _denied(str(webhook.get("name", "")), response.get("status") or {})
            if mutating and response.get("patch") and obj is not None:
                obj = _patched(obj, response, str(webhook.get("name", "")))
        return obj

    async def _call_with_policy(self, webhook: Json, call: AdmissionRequest) -> Json | None:
        name = str(webhook.get("name", ""))
        try:
            return await self._call(webhook, call)
        except WebhookFailure as failure:
            if webhook.get("failurePolicy", "Fail") == "Ignore":
                return None
            raise ApiError(
                500,
                "InternalError",
                f'Internal error occurred: failed calling webhook "{name}": {failure}',
            ) from None

    def _target(self, client_config: Mapping[str, Any], timeout: int) -> tuple[str, str, str | None]:
        """(URL to connect to, URL as kube-apiserver would name it, TLS server name override)."""
        if client_config.get("url"):
            url = str(client_config["url"])
            return url, url, None
        service = client_config.get("service") or {}
        namespace, name = service.get("namespace", ""), service.get("name", "")
        port = int(service.get("port") or 443)
        path = service.get("path") or "/"
        server_name = f"{name}.{namespace}.svc"
        shown = f"https://{server_name}:{port}{path}?timeout={timeout}s"
        address = self.service_addresses.get(f"{namespace}/{name}")
        if address is None:
            raise WebhookFailure(
                f'failed to call webhook: Post "{shown}": service "{namespace}/{name}" has no local '
                "address in the sandbox (Sandbox.set_webhook_service)"
            )
        return f"https://{address}{path}", shown, server_name

    async def _call(self, webhook: Json, call: AdmissionRequest) -> Json:
        timeout = int(webhook.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS)
        client_config = webhook.get("clientConfig") or {}
        url, shown, server_name = self._target(client_config, timeout)
        review = _review(call)
        try:
            context = _ssl_context(client_config.get("caBundle"))
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    url,
                    json=review,
                    ssl=context,
                    server_hostname=server_name,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                ) as response,
            ):
                if response.status != 200:
                    text = (await response.text())[:200]
                    raise WebhookFailure(
                        f"failed to call webhook: the server responded with status {response.status}: {text}"
                    )
                answer = await response.json(content_type=None)
        except TimeoutError:
            raise WebhookFailure(
                f'failed to call webhook: Post "{shown}": context deadline exceeded'
            ) from None
        except aiohttp.ClientConnectorCertificateError:
            # Worded as Go's crypto/tls says it (kube-apiserver's client): an untrusted certificate.
            raise WebhookFailure(
                f'failed to call webhook: Post "{shown}": tls: failed to verify certificate: '
                "x509: certificate signed by unknown authority"
            ) from None
        except aiohttp.ClientConnectorError as error:
            reason = (
                "connection refused" if isinstance(error.os_error, ConnectionRefusedError) else error.os_error
            )
            where = f"dial tcp {error.host}:{error.port}: connect: {reason}"
            raise WebhookFailure(f'failed to call webhook: Post "{shown}": {where}') from None
        except (aiohttp.ClientError, OSError, ssl.SSLError, ValueError) as error:
            raise WebhookFailure(f'failed to call webhook: Post "{shown}": {error}') from None
        result = answer.get("response") if isinstance(answer, dict) else None
        if not isinstance(result, dict):
            raise WebhookFailure("received invalid webhook response: the response is empty")
        if result.get("uid") != review["request"]["uid"]:
            raise WebhookFailure(
                f"expected response.uid={review['request']['uid']!r}, got {result.get('uid')!r}"
            )
        return result


def _ssl_context(ca_bundle: Any) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_bundle:
        try:
            context.load_verify_locations(cadata=base64.b64decode(str(ca_bundle)).decode())
        except (ValueError, ssl.SSLError) as error:
            raise WebhookFailure(
                f"failed to call webhook: caBundle is not a PEM certificate: {error}"
            ) from None
    else:
        context.load_default_certs()
    return context


def _review(call: AdmissionRequest) -> Json:
    resource_type = call.resource_type
    group_version_kind = {
        "group": resource_type.group,
        "version": resource_type.version,
        "kind": resource_type.kind,
    }
    group_version_resource = {
        "group": resource_type.group,
        "version": resource_type.version,
        "resource": resource_type.plural,
    }
    request: Json = {
        "uid": str(uuid.uuid4()),
        "kind": group_version_kind,
        "resource": group_version_resource,
        "requestKind": group_version_kind,
        "requestResource": group_version_resource,
        "name": call.name,
        "operation": call.operation,
        "userInfo": {
            "username": call.caller.username,
            "uid": call.caller.uid,
            "groups": list(call.caller.groups),
        },
        "object": call.obj,
        "oldObject": call.old,
        "dryRun": call.dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": _OPTIONS_KIND.get(call.operation, "")},
    }
    if call.namespace:
        request["namespace"] = call.namespace
    if call.subresource:
        request["subResource"] = call.subresource
        request["requestSubResource"] = call.subresource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def _denied(name: str, status: Mapping[str, Any]) -> ApiError:
    """The refusal as kube-apiserver words it (webhook/errors.ToStatusErr): code ≥ 400, message prefixed."""
    denied_by = f'admission webhook "{name}" denied the request'
    code = int(status.get("code") or 0)
    code = code if code >= 400 else 400
    reason = str(status.get("reason") or "")
    message = status.get("message") or reason
    text = f"{denied_by}: {message}" if message else f"{denied_by} without explanation"
    details = status.get("details") if isinstance(status.get("details"), dict) else None
    return ApiError(code, reason, text, details=details)


def _patched(obj: Json, response: Mapping[str, Any], name: str) -> Json:
    if response.get("patchType", "JSONPatch") != "JSONPatch":
        raise ApiError(
            500, "InternalError", f'Internal error occurred: webhook "{name}" sent an unsupported patchType'
        )
    try:
        operations = json.loads(base64.b64decode(str(response["patch"])))
    except ValueError as error:
        raise ApiError(
            500, "InternalError", f'Internal error occurred: webhook "{name}" sent a bad patch: {error}'
        ) from None
    patched = json_patch(obj, operations)
    if not isinstance(patched, dict):
        raise ApiError(
            500, "InternalError", f'Internal error occurred: webhook "{name}" patch made a non-object'
        )
    return patched
