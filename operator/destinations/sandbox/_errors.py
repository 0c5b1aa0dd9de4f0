"""API errors as the Kubernetes API server reports them: a `Status` object with reason, code and details.

kubectl prints `Error from server (<reason>): <message>` from these objects and kopf decides what to retry
by their `code`, so every refusal of the sandbox goes through `ApiError` and renders exactly this shape.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


class ApiError(Exception):
    """A request the API server refuses; rendered as a `Status` object with the HTTP code."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: Json | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> Json:
        return status_object(self.code, self.reason, self.message, self.details)


def status_object(code: int, reason: str, message: str, details: Json | None = None) -> Json:
    status: Json = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        status["details"] = details
    return status


def qualified(resource: str, group: str) -> str:
    """`pods` for the core group, `destinationjobs.destinations.dev` otherwise, as the server names them."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    details: Json = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return ApiError(404, "NotFound", f'{qualified(resource, group)} "{name}" not found', details=details)


def already_exists(resource: str, group: str, name: str) -> ApiError:
    details: Json = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return ApiError(
        409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists', details=details
    )


def conflict(resource: str, group: str, name: str, why: str | None = None) -> ApiError:
    details: Json = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    reason = (
        why or "the object has been modified; please apply your changes to the latest version and try again"
    )
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {reason}',
        details=details,
    )


def invalid(kind: str, group: str, name: str, causes: list[Json]) -> ApiError:
    """422 Invalid listing every field error, formatted like the API server's field.ErrorList."""
    rendered = [
        f"{cause['field']}: {cause['message']}" if cause.get("field") else cause["message"]
        for cause in causes
    ]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    details: Json = {"name": name, "kind": kind, "causes": causes}
    if group:
        details["group"] = group
    return ApiError(
        422, "Invalid", f'{qualified(kind, group)} "{name}" is invalid: {summary}', details=details
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)
