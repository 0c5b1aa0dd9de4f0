"""A local Data Manager API (audienceMembers:ingest / :remove) and Google token endpoint.

Written from Google's public pages:
- https://developers.google.com/data-manager/api/reference/rest/v1/audienceMembers/ingest and
  .../audienceMembers/remove: `destinations[]` (`operatingAccount`, `loginAccount`,
  `productDestinationId`), `audienceMembers[]` (`userData.userIdentifiers[]`), `consent`, `encoding`,
  `validateOnly`; the answer is `{"requestId": …}`.
- https://developers.google.com/data-manager/api/limits: at most 10,000 members a request, 10
  identifiers a member; `RESOURCE_EXHAUSTED` / HTTP 429 past the project's quota, `quota_limit` in
  the `ErrorInfo` metadata.
- https://developers.google.com/data-manager/api/devguides/concepts/understand-errors: fast fail, a
  `BadRequest` detail with `fieldViolations` naming `audience_members[i]`; google.rpc.Status shape.
- https://developers.google.com/data-manager/api/devguides/concepts/formatting: hex SHA-256 values.
- https://developers.google.com/data-manager/api/reference/rest/v1/requestStatus/retrieve and
  https://developers.google.com/data-manager/api/devguides/diagnostics: accepted requests are
  processed later; `GET /v1/requestStatus:retrieve?requestId=…` answers `requestStatusPerDestination[]`
  (in the request's destination order) with `destination`, `requestStatus` (`PROCESSING`, then
  `SUCCESS`, `PARTIAL_SUCCESS` or `FAILED`), `errorInfo.errorCounts[]` (`reason`, a
  `ProcessingErrorReason`, and `recordCount`, an int64 as JSON text) and
  `audienceMembersIngestionStatus.userDataIngestionStatus` / `audienceMembersRemovalStatus
  .userDataRemovalStatus` (`recordCount`, `userIdentifierCount`). Not documented, so assumed here: an
  unknown request id answers NOT_FOUND, and a destination still processing has no `errorInfo`.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.providers.oauth_fake import TokenEndpoint
from tests.providers.servers import Request, Response

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def status(code: int, status_name: str, message: str, *details: dict[str, Any]) -> Response:
    return Response(
        code, {"error": {"code": code, "message": message, "status": status_name, "details": list(details)}}
    )


@dataclass
class DataManager:
    """Members of one user list, keyed by their hashed email (or first identifier)."""

    tokens: TokenEndpoint = field(default_factory=TokenEndpoint)
    account: str = "1234567890"
    user_list: str = "987654321"
    refuse: set[str] = field(default_factory=set)
    """Hashed emails answered with a fast-fail INVALID_AUDIENCE_MEMBER violation."""
    exhausted: list[Response] = field(default_factory=list)
    """Answers given (once each) before any ingest is processed, e.g. a RESOURCE_EXHAUSTED."""
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    processing_errors: dict[str, str] = field(default_factory=dict)
    """Hashed email → the ProcessingErrorReason its member fails with, after its request was accepted."""
    processing_polls: int = 0
    """Status polls of each request answered PROCESSING before its final status."""
    error_counts: bool = True
    """Whether final statuses carry `errorInfo.errorCounts` ("may not be populated in all cases")."""
    status_answers: list[Response] = field(default_factory=list)
    """Answers given (once each) to status polls before any is processed, e.g. a RESOURCE_EXHAUSTED."""
    polls: list[str] = field(default_factory=list)
    """The request ids asked about, in order."""
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Request id → what its processing needs: `destination`, `removing`, `members` (keys), `polls`."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Request) -> Response:
        if self.tokens.handles(request):
            return self.tokens(request)
        if not self.tokens.api_accepts(request.header("authorization")):
            return status(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if request.method == "GET" and request.path == "/v1/requestStatus:retrieve":
            return self.retrieve(request.query.get("requestId", ""))
        if request.method != "POST" or request.path not in (
            "/v1/audienceMembers:ingest",
            "/v1/audienceMembers:remove",
        ):
            return status(404, "NOT_FOUND", f"no method {request.path}")
        body = request.json()
        with self._lock:
            if self.exhausted:
                return self.exhausted.pop(0)
            self.bodies.append(body)
        members = body.get("audienceMembers", [])
        if body.get("validateOnly"):
            return (
                status(400, "INVALID_ARGUMENT", "destinations must not be empty")
                if not body.get("destinations")
                else Response(200, {"requestId": "validate"})
            )
        if len(members) > 10_000:
            return status(
                400, "INVALID_ARGUMENT", "too many members",
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "TOO_MANY_AUDIENCE_MEMBERS"},
            )  # fmt: skip
        destination = (body.get("destinations") or [{}])[0]
        if (
            destination.get("operatingAccount", {}).get("accountId") != self.account
            or destination.get("productDestinationId") != self.user_list
        ):
            return status(404, "NOT_FOUND", "The destination was not found.")
        if body.get("encoding") != "HEX":
            return status(400, "INVALID_ARGUMENT", "encoding is required for user data")
        violations = []
        for index, member in enumerate(members):
            identifiers = member.get("userData", {}).get("userIdentifiers", [])
            if not identifiers or len(identifiers) > 10:
                violations.append((index, 0, "INVALID_AUDIENCE_MEMBER"))
                continue
            for position, identifier in enumerate(identifiers):
                hashed = [
                    v
                    for v in (identifier.get("emailAddress"), identifier.get("phoneNumber"))
                    if v is not None
                ]
                hashed += (
                    [identifier["address"][k] for k in ("givenName", "familyName")]
                    if "address" in identifier
                    else []
                )
                if any(not HEX64.match(value) for value in hashed):
                    violations.append((index, position, "INVALID_HEX_ENCODING"))
                elif identifier.get("emailAddress") in self.refuse:
                    violations.append((index, position, "INVALID_AUDIENCE_MEMBER"))
        if violations:
            return status(
                400, "INVALID_ARGUMENT", "There was a problem with the request.",
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {"field": f"audience_members[{i}].user_data.user_identifiers[{p}]", "reason": reason}
                        for i, p, reason in violations
                    ],
                },
            )  # fmt: skip
        removing = request.path.endswith(":remove")
        with self._lock:
            keys = []
            for member in members:
                identifiers = member["userData"]["userIdentifiers"]
                key = next(
                    (i["emailAddress"] for i in identifiers if "emailAddress" in i), str(identifiers[0])
                )
                keys.append(key)
                if key in self.processing_errors:
                    continue  # accepted, then fails in processing
                if removing:
                    self.members.pop(key, None)
                else:
                    self.members[key] = {"member": member, "consent": body.get("consent")}
            request_id = f"req-{len(self.bodies)}"
            self.requests[request_id] = {
                "destination": destination,
                "removing": removing,
                "members": keys,
                "polls": 0,
            }
        return Response(200, {"requestId": request_id})

    def retrieve(self, request_id: str) -> Response:
        """`requestStatus:retrieve`: PROCESSING for `processing_polls` polls, then the final status."""
        with self._lock:
            self.polls.append(request_id)
            if self.status_answers:
                return self.status_answers.pop(0)
            sent = self.requests.get(request_id)
            if sent is None:
                return status(404, "NOT_FOUND", f"Request {request_id} was not found.")
            sent["polls"] += 1
            still_processing = sent["polls"] <= self.processing_polls
        entry: dict[str, Any] = {"destination": sent["destination"]}
        members = sent["members"]
        count = {"recordCount": str(len(members)), "userIdentifierCount": str(len(members))}
        if sent["removing"]:
            entry["audienceMembersRemovalStatus"] = {"userDataRemovalStatus": count}
        else:
            entry["audienceMembersIngestionStatus"] = {
                "userDataIngestionStatus": {**count, "uploadMatchRateRange": "MATCH_RATE_RANGE_NOT_ELIGIBLE"}
            }
        if still_processing:
            entry["requestStatus"] = "PROCESSING"
            return Response(200, {"requestStatusPerDestination": [entry]})
        errors: dict[str, int] = {}
        for key in members:
            if key in self.processing_errors:
                errors[self.processing_errors[key]] = errors.get(self.processing_errors[key], 0) + 1
        failed = sum(errors.values())
        entry["requestStatus"] = (
            "SUCCESS" if failed == 0 else "FAILED" if failed == len(members) else "PARTIAL_SUCCESS"
        )
        if errors and self.error_counts:
            entry["errorInfo"] = {
                "errorCounts": [
                    {"reason": reason, "recordCount": str(records)} for reason, records in errors.items()
                ]
            }
        return Response(200, {"requestStatusPerDestination": [entry]})


def resource_exhausted(
    retry_delay: str | None = "30s", quota_limit: str = "IngestionMutateRequestsPerMinutePerProject"
) -> Response:
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "RATE_LIMIT_EXCEEDED",
            "domain": "googleapis.com",
            "metadata": {"quota_limit": quota_limit, "service": "datamanager.googleapis.com"},
        }
    ]
    if retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    return status(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", *details)
