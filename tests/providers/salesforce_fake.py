"""A local Salesforce org: OAuth token endpoint, sObject Collections upsert, Bulk API 2.0, SOQL query, limits.

Written from Salesforce's public pages:
- Refresh token flow (no `expires_in`, `instance_url`, rotation):
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm
- sObject Collections upsert (`PATCH /composite/sobjects/{object}/{externalIdField}`, at most 200
  records, `allOrNone`, results with `id`, `success`, `created`, `errors[]`):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_upsert.htm
- Bulk API 2.0 ingest (create, `PUT …/batches` CSV, `PATCH` `UploadComplete`, job info `state`,
  `successfulResults` with `sf__Id`,`sf__Created`, `failedResults` with `sf__Id`,`sf__Error`,
  `unprocessedrecords`): https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/bulk_api_2_0.htm
- Bulk API 2.0 query (`POST /jobs/query`, results CSV with `Sforce-Locator`, `null` on the last page):
  https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/query_get_job_results.htm
- REST query (`GET /query?q=`, up to 2,000 `records` a response, `done`, `nextRecordsUrl`):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm;
  a request's URI and headers together may be at most 16,384 bytes (414 URI Too Long when the URI alone
  is longer, 431 Request Header Fields Too Large otherwise):
  https://help.salesforce.com/s/articleView?id=000386264&type=1
- sObject Collections create (`POST /composite/sobjects`: at most 200 records, each with
  `attributes.type` and no `id`; SaveResults `id`, `success`, `errors[]` in request order) and update
  (`PATCH /composite/sobjects`: each record with `id` and `attributes.type`):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_create.htm
  and https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_update.htm
- Duplicates: a create that reuses a Unique field's value fails with `DUPLICATE_VALUE` ("duplicate value
  found: <field> duplicates value on record with id: <id>"), and an upsert whose external ID matches
  several records updates none ("If the key is matched multiple times, then an error is generated";
  Apex Developer Guide, Upserting Records); a DML list holding one Id twice fails as a whole, whatever
  allOrNone (https://salesforce.stackexchange.com/questions/214333). The REST error code of that last
  case is not documented: this fake answers 400 for the whole request.
- Errors as `[{"message", "errorCode"}]`; `INVALID_SESSION_ID` (401), `REQUEST_LIMIT_EXCEEDED` (403);
  `Sforce-Limit-Info: api-usage=n/m`: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
  and https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.providers.oauth_fake import TokenEndpoint
from tests.providers.servers import Request, Response

VERSION = "v62.0"
API = f"/services/data/{VERSION}"
TOKEN_PATH = "/services/oauth2/token"
URI_LIMIT = 16_384
MAX_COLLECTION = 200


def sf_error(status: int, code: str, message: str) -> Response:
    return Response(status, [{"message": message, "errorCode": code}])


@dataclass
class Org:
    """One org with Contacts keyed by their external ID (case-insensitive, as unique email fields are)."""

    tokens: TokenEndpoint = field(default_factory=lambda: TokenEndpoint(path=TOKEN_PATH, expires_in=None))
    external_id: str = "Email"
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    refuse: set[str] = field(default_factory=set)
    """External IDs refused per record (INVALID_EMAIL_ADDRESS), in collections and bulk jobs alike."""
    external_id_unique: bool = True
    """Whether the external-ID field is also Unique: a create reusing a value is refused DUPLICATE_VALUE.
    Without it (e.g. Contact.Email) a create makes a second record with the same value."""
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    """More records whose external ID another record already has (a non-unique field allows it)."""
    required: set[str] = field(default_factory=set)
    """Fields a created record must carry (a real org's Contact needs LastName): REQUIRED_FIELD_MISSING."""
    query_batch_size: int = 2000
    """Records per REST query response; the rest behind `nextRecordsUrl`."""
    cursors: dict[str, tuple[list[dict[str, Any]], int]] = field(default_factory=dict)
    api_usage: tuple[int, int] = (100, 15_000)
    limit_exceeded: bool = False
    polls_before_done: int = 1
    page_size_cap: int | None = None
    requests_log: list[tuple[str, str]] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Request) -> Response:
        if self.tokens.handles(request):
            return self.tokens(request)
        response = self._serve(request)
        response.headers.setdefault("Sforce-Limit-Info", f"api-usage={self.api_usage[0]}/{self.api_usage[1]}")
        return response

    def _serve(self, request: Request) -> Response:
        with self._lock:
            self.requests_log.append((request.method, request.path))
        if len(request.target) > URI_LIMIT:
            return Response(414, "URI Too Long")
        header_bytes = sum(len(name) + len(value) + 4 for name, value in request.headers.items())
        if len(request.target) + header_bytes > URI_LIMIT:
            return Response(431, "Request Header Fields Too Large")
        if not self.tokens.api_accepts(request.header("authorization")):
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if self.limit_exceeded:
            return sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        path = request.path
        if path == f"{API}/limits":
            return Response(
                200,
                {
                    "DailyApiRequests": {
                        "Max": self.api_usage[1],
                        "Remaining": self.api_usage[1] - self.api_usage[0],
                    }
                },
            )
        if path in (f"{API}/composite/sobjects", f"{API}/composite/sobjects/"):
            if request.method == "POST":
                return self._create(request)
            if request.method == "PATCH":
                return self._update(request)
            return sf_error(405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed")
        if match := re.fullmatch(rf"{API}/composite/sobjects/(\w+)/(\w+)", path):
            return self._collection(request, match.group(1), match.group(2))
        if path == f"{API}/jobs/ingest" and request.method == "POST":
            return self._create_job(request.json(), "ingest")
        if path == f"{API}/jobs/query" and request.method == "POST":
            return self._create_job(request.json(), "query")
        if match := re.fullmatch(rf"{API}/jobs/(ingest|query)/(\w+)(/[A-Za-z]+/?)?", path):
            return self._job(request, match.group(2), (match.group(3) or "").strip("/"))
        if path == f"{API}/query":
            return self._query(request.query["q"])
        if path.startswith(f"{API}/query/"):
            return self._query_more(path.rsplit("/", 1)[1])
        return sf_error(404, "NOT_FOUND", f"The requested resource does not exist: {path}")

    # ----------------------------------------------------------------------------------- upserts

    def _upsert(self, row: dict[str, Any]) -> tuple[bool, bool, str]:
        """(success, created, error) for one record."""
        key = str(row.get(self.external_id) or "")
        if key in self.refuse:
            return False, False, f"invalid email address: {key}"
        fields = {k: v for k, v in row.items() if k != "attributes"}
        with self._lock:
            if len(self._matching(key)) > 1:
                return False, False, "DUPLICATE_EXTERNAL_ID"
            existing = self.contacts.get(key.lower())
            if existing is None:
                self.contacts[key.lower()] = {"Id": f"003{next(self._ids):012d}", **fields}
                return True, True, ""
            existing.update(fields)
            return True, False, ""

    def _collection(self, request: Request, sobject: str, external_id: str) -> Response:
        if request.method != "PATCH":
            return sf_error(405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed")
        if sobject != "Contact" or external_id != self.external_id:
            return sf_error(400, "INVALID_FIELD", f"Field {external_id} is not an external id on {sobject}")
        body = request.json()
        records = body.get("records", [])
        if len(records) > 200:
            return sf_error(
                400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records"
            )
        if body.get("allOrNone") is not False:
            return sf_error(400, "TEST_EXPECTS_ALL_OR_NONE_FALSE", "this fake expects allOrNone false")
        results = []
        for record in records:
            if record.get("attributes", {}).get("type") != sobject:
                return sf_error(400, "INVALID_TYPE", "attributes.type must match the URI")
            success, created, error = self._upsert(record)
            if error == "DUPLICATE_EXTERNAL_ID":
                results.append(_failure(
                    "DUPLICATE_EXTERNAL_ID",
                    f"more than one record found for external id field: {self.external_id}",
                    [self.external_id],
                ))  # fmt: skip
                continue
            results.append(
                {"id": None, "success": False, "errors": [
                    {"statusCode": "INVALID_EMAIL_ADDRESS", "message": error, "fields": ["Email"]}
                ]}
                if not success
                else {"id": "003x", "success": True, "errors": [], "created": created}
            )  # fmt: skip
        return Response(200, results)

    # ------------------------------------------------------------------------ create and update

    def _records_of(self, request: Request) -> list[dict[str, Any]] | Response:
        """The body's records, or the 400 a malformed collection gets."""
        body = request.json()
        records = body.get("records", [])
        if len(records) > MAX_COLLECTION:
            return sf_error(
                400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records"
            )
        if body.get("allOrNone") is not False:
            return sf_error(400, "TEST_EXPECTS_ALL_OR_NONE_FALSE", "this fake expects allOrNone false")
        if any(record.get("attributes", {}).get("type") != "Contact" for record in records):
            return sf_error(400, "INVALID_TYPE", "each record needs attributes.type (this org has Contact)")
        return list(records)

    def _matching(self, key: str) -> list[dict[str, Any]]:
        """Every record whose external ID equals `key` (ignoring case, as the field compares)."""
        every = [*self.contacts.values(), *self.duplicates]
        return [r for r in every if str(r.get(self.external_id) or "").lower() == key.lower()]

    def _create(self, request: Request) -> Response:
        records = self._records_of(request)
        if isinstance(records, Response):
            return records
        results = []
        for record in records:
            fields = {k: v for k, v in record.items() if k != "attributes"}
            key = str(fields.get(self.external_id) or "")
            missing = sorted(name for name in self.required if fields.get(name) in (None, ""))
            with self._lock:
                clash = self._matching(key) if key and self.external_id_unique else []
                if "id" in fields or "Id" in fields:
                    results.append(_failure(
                        "INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"]
                    ))  # fmt: skip
                elif key in self.refuse:
                    results.append(_failure(
                        "INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {key}", ["Email"]
                    ))  # fmt: skip
                elif missing:
                    results.append(
                        _failure("REQUIRED_FIELD_MISSING", f"Required fields are missing: {missing}", missing)
                    )
                elif clash:
                    results.append(_failure(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {self.external_id} duplicates value on record with id: "
                        f"{clash[0]['Id']}",
                        [],
                    ))  # fmt: skip
                else:
                    created = {"Id": f"003{next(self._ids):012d}", **fields}
                    if key.lower() in self.contacts:
                        self.duplicates.append(created)
                    else:
                        self.contacts[key.lower()] = created
                    results.append({"id": created["Id"], "success": True, "errors": []})
        return Response(200, results)

    def _update(self, request: Request) -> Response:
        records = self._records_of(request)
        if isinstance(records, Response):
            return records
        ids = [record.get("id") for record in records if record.get("id")]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            return sf_error(400, "INVALID_FIELD", f"Duplicate id in list: {repeated[0]}")
        results = []
        for record in records:
            fields = {k: v for k, v in record.items() if k not in ("attributes", "id")}
            record_id = record.get("id")
            with self._lock:
                every = [*self.contacts.values(), *self.duplicates]
                target = next((r for r in every if r["Id"] == record_id), None)
                if not record_id:
                    results.append(_failure("MISSING_ARGUMENT", "Id not specified in an update call", []))
                elif target is None:
                    results.append(_failure("ENTITY_IS_DELETED", "entity is deleted", []))
                elif str(fields.get(self.external_id) or "") in self.refuse:
                    results.append(_failure(
                        "INVALID_EMAIL_ADDRESS",
                        f"Email: invalid email address: {fields.get(self.external_id)}",
                        ["Email"],
                    ))  # fmt: skip
                else:
                    target.update(fields)
                    results.append({"id": record_id, "success": True, "errors": []})
        return Response(200, results)

    # -------------------------------------------------------------------------------------- jobs

    def _create_job(self, body: dict[str, Any], kind: str) -> Response:
        job_id = f"750{next(self._ids):012d}"
        job = {"id": job_id, "kind": kind, "polls": 0, **body}
        if kind == "ingest":
            if body.get("operation") != "upsert" or body.get("externalIdFieldName") != self.external_id:
                return sf_error(400, "INVALIDJOB", "InvalidJob : External ID was blank or invalid")
            job["state"] = "Open"
        else:
            if not str(body.get("query", "")).lower().startswith("select"):
                return sf_error(400, "MALFORMED_QUERY", "unexpected token")
            job["state"] = "UploadComplete"
        with self._lock:
            self.jobs[job_id] = job
        return Response(200, {k: v for k, v in job.items() if k not in ("polls", "kind", "csv", "results")})

    def _job(self, request: Request, job_id: str, part: str) -> Response:
        job = self.jobs.get(job_id)
        if job is None:
            return sf_error(404, "NOT_FOUND", "job not found")
        if part == "batches" and request.method == "PUT":
            if job["state"] != "Open" or request.header("content-type") != "text/csv":
                return sf_error(400, "INVALIDJOBSTATE", "upload only to an Open job, as text/csv")
            job["csv"] = request.body.decode()
            return Response(201)
        if not part and request.method == "PATCH":
            if request.json().get("state") == "UploadComplete":
                job["state"] = "UploadComplete"
                self._process(job)
            return Response(200, {"id": job_id, "state": job["state"]})
        if not part and request.method == "GET":
            job["polls"] += 1
            shown = job["state"]
            if shown == "UploadComplete" and job["polls"] >= self.polls_before_done:
                job["state"] = shown = "JobComplete"
            elif shown == "UploadComplete":
                shown = "InProgress"
            return Response(
                200,
                {
                    "id": job_id,
                    "state": shown,
                    "numberRecordsProcessed": len(job.get("results", {}).get("ok", [])),
                },
            )
        if job["kind"] == "ingest" and part in ("successfulResults", "failedResults", "unprocessedrecords"):
            results = job.get("results", {})
            if part == "successfulResults":
                return _csv(["sf__Id", "sf__Created", *job["columns"]], results.get("ok", []))
            if part == "failedResults":
                return _csv(["sf__Id", "sf__Error", *job["columns"]], results.get("failed", []))
            return _csv(job["columns"], [])
        if job["kind"] == "query" and part == "results":
            return self._query_page(job, request)
        return sf_error(404, "NOT_FOUND", part)

    def _process(self, job: dict[str, Any]) -> None:
        rows = list(csv.DictReader(io.StringIO(job.get("csv", ""))))
        job["columns"] = list(rows[0]) if rows else []
        ok, failed = [], []
        for row in rows:
            cleaned = {k: (None if v == "" else v) for k, v in row.items()}
            success, created, error = self._upsert(cleaned)
            if success:
                ok.append({"sf__Id": "003x", "sf__Created": "true" if created else "false", **row})
            else:
                code = error if error == "DUPLICATE_EXTERNAL_ID" else "INVALID_EMAIL_ADDRESS"
                failed.append({"sf__Id": "", "sf__Error": f"{code}:{error}:Email --", **row})
        job["results"] = {"ok": ok, "failed": failed}

    def _query_rows(self, soql: str) -> tuple[list[str], list[dict[str, Any]]]:
        match = re.fullmatch(
            r"(?is)\s*select\s+(.+?)\s+from\s+contact(?:\s+where\s+(\w+)\s+in\s+\((.*)\))?\s*", soql
        )
        if match is None:
            raise ValueError(soql)
        columns = [c.strip() for c in match.group(1).split(",")]
        rows = [*self.contacts.values(), *self.duplicates]
        if match.group(2):
            literals = re.findall(r"'((?:[^'\\]|\\.)*)'", match.group(3))
            wanted = {re.sub(r"\\(.)", r"\1", value).lower() for value in literals}
            rows = [row for row in rows if str(row.get(match.group(2), "")).lower() in wanted]
        return columns, rows

    def _query_page(self, job: dict[str, Any], request: Request) -> Response:
        columns, rows = self._query_rows(job["query"])
        size = int(request.query.get("maxRecords", 1000))
        if self.page_size_cap:
            size = min(size, self.page_size_cap)
        start = int(request.query.get("locator") or 0)
        page = rows[start : start + size]
        more = start + size < len(rows)
        response = _csv(columns, [{c: _get(row, c) for c in columns} for row in page])
        response.headers.update(
            {
                "Sforce-Locator": str(start + size) if more else "null",
                "Sforce-NumberOfRecords": str(len(page)),
            }
        )
        return response

    def _query(self, soql: str) -> Response:
        try:
            columns, rows = self._query_rows(soql)
        except ValueError:
            return sf_error(400, "MALFORMED_QUERY", "unexpected token")
        records = [_nest({c: _get(row, c) for c in columns}) for row in rows]
        return self._query_batch(records, len(records))

    def _query_batch(self, records: list[dict[str, Any]], total: int) -> Response:
        page, rest = records[: self.query_batch_size], records[self.query_batch_size :]
        body: dict[str, Any] = {"totalSize": total, "done": not rest, "records": page}
        if rest:
            cursor = f"01g{next(self._ids):012d}-{self.query_batch_size}"
            with self._lock:
                self.cursors[cursor] = (rest, total)
            body["nextRecordsUrl"] = f"{API}/query/{cursor}"
        return Response(200, body)

    def _query_more(self, cursor: str) -> Response:
        with self._lock:
            pending = self.cursors.pop(cursor, None)
        if pending is None:
            return sf_error(400, "INVALID_QUERY_LOCATOR", cursor)
        return self._query_batch(*pending)


def _failure(code: str, message: str, fields: list[str]) -> dict[str, Any]:
    """One record's SaveResult when Salesforce refused it."""
    return {
        "id": None,
        "success": False,
        "errors": [{"statusCode": code, "message": message, "fields": fields}],
    }


def _get(row: dict[str, Any], column: str) -> Any:
    value: Any = row
    for part in column.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """REST query records: relationship paths as nested objects with `attributes`."""
    nested: dict[str, Any] = {"attributes": {"type": "Contact"}}
    for column, value in flat.items():
        target = nested
        *parents, leaf = column.split(".")
        for parent in parents:
            target = target.setdefault(parent, {"attributes": {"type": parent}})
        target[leaf] = value
    return nested


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return Response(200, buffer.getvalue().encode(), {"Content-Type": "text/csv"})
