"""Errors as RFC 9457 problem details (application/problem+json), each with a message a person can act on."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from server import errors
from server.blobs import BlobCorrupt, BlobMissing

PROBLEM = "application/problem+json"
log = logging.getLogger("s2.api")

STATUS = [  # most specific first
    (errors.CommitOutcomeUnknown, 503, "commit-outcome-unknown"),
    (errors.BranchMoved, 409, "branch-moved"),
    (errors.TooLarge, 413, "too-large"),
    (errors.VersionRequired, 428, "version-required"),
    (errors.TooManyAttempts, 429, "too-many-attempts"),
    (errors.Unauthorized, 401, "unauthorized"),
    (errors.Forbidden, 403, "forbidden"),
    (errors.NotFound, 404, "not-found"),
    (errors.AlreadyExists, 409, "already-exists"),
    (errors.Conflict, 409, "conflict"),
    (errors.NothingToCommit, 409, "nothing-to-commit"),
    (errors.InvalidInput, 422, "invalid-input"),
    (errors.UpstreamFailed, 502, "upstream-failed"),
]
TITLES = {
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    502: "Bad Gateway",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    428: "Precondition Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


WHEN = {
    401: "No API token, or one that names no active token",
    403: "The caller's role or dataset assignment does not allow this",
    404: "Something the request names (dataset, branch, revision, example, run, model, user) does not exist",
    409: "The change collides with the current state (a name taken, a stale edit, a merge conflict, a moved branch, "
    "nothing to commit, a regression)",
    413: "Over the size limit of a request body (S2_JSON_MAX_BYTES) or an upload (S2_UPLOAD_MAX_BYTES)",
    422: "The request is malformed: `errors` lists every invalid field",
    428: "A labeler's edit must carry the example `version` it was made on (from GET .../examples/{key})",
    502: "A service s2 talks to on the caller's behalf (Label Studio) could not be reached, or failed",
    503: "A service the server depends on (the database, the blob store) is unavailable",
}


class Issue(BaseModel):
    """One invalid field of a request."""

    field: str = Field(description="Where it is, e.g. body.labels or query.limit")
    message: str


class Problem(BaseModel):
    """An error as RFC 9457 problem details; some add machine-readable fields (a stale edit names the current `version`)."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="The kind of problem, e.g. https://s2.dev/problems/not-found")
    title: str
    status: int
    detail: str = Field(description="What went wrong and what to do about it")
    instance: str | None = Field(default=None, description="The path the request was made to")
    errors: list[Issue] | None = Field(default=None, description="Every invalid field (invalid-request problems only)")


def responses(*codes: int) -> dict[int, dict]:
    """OpenAPI `responses` entries for error statuses: each a problem+json body."""
    ref = {"$ref": "#/components/schemas/Problem"}
    return {code: {"description": WHEN[code], "content": {PROBLEM: {"schema": ref}}} for code in codes}


COMMON = responses(401, 403, 404, 413, 422)  # any route: authentication, roles, named things, a body too large, validation
CONFLICT = responses(409)


def document(app: FastAPI) -> None:
    """Put the Problem schema that the error responses refer to into the app's OpenAPI components."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            found = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(found.pop("$defs", {}))
            components["Problem"] = found
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def problem(status: int, detail: str, kind: str = "about:blank", request: Request | None = None, **extra) -> JSONResponse:
    """A problem+json response."""
    body = {
        "type": kind if kind == "about:blank" else f"https://s2.dev/problems/{kind}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    body.update(extra)
    headers = {"WWW-Authenticate": 'Bearer realm="s2"'} if status == 401 else None
    if status == 429 and "retry_after" in extra:
        headers = {"Retry-After": str(extra["retry_after"])}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def wants_page(request: Request) -> bool:
    """A browser asking for a page (not the API, not a script): it gets an HTML answer."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def status_of(exc: errors.S2Error) -> tuple[int, str]:
    """The HTTP status and problem type of a domain error."""
    for cls, status, kind in STATUS:
        if isinstance(exc, cls):
            return status, kind
    return 400, "bad-request"


def install(app: FastAPI) -> None:
    """Register handlers so that no error leaves the API as anything but problem+json."""

    @app.exception_handler(errors.S2Error)
    async def domain_error(request: Request, exc: errors.S2Error) -> JSONResponse:
        status, kind = status_of(exc)
        return problem(status, str(exc), kind, request, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            issues.append({"field": where, "message": err.get("msg", "invalid")})
        first = issues[0] if issues else {"field": "request", "message": "invalid"}
        more = f" (and {len(issues) - 1} more problem(s))" if len(issues) > 1 else ""
        return problem(422, f"{first['field']}: {first['message']}{more}", "invalid-request", request, errors=issues)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 400:  # a body FastAPI could not parse (not UTF-8, broken multipart): as invalid JSON is, a 422
            message = "the request body could not be parsed: send UTF-8 JSON, or multipart/form-data for uploads"
            return problem(422, f"body: {message}", "invalid-request", request, errors=[{"field": "body", "message": message}])
        if exc.status_code == 404 and detail == "Not Found":
            if wants_page(request):
                from server.web.pages import not_found_page

                return not_found_page(request)
            detail = f"no endpoint {request.url.path}: see /docs for the API"
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}: see /docs for the API"
        return problem(exc.status_code, detail, request=request)

    @app.exception_handler(BlobMissing)
    @app.exception_handler(BlobCorrupt)
    async def blob_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("blob store: %s", exc)
        return problem(503, f"the blob store failed: {exc}; an operator should run `s2 fsck`", "blob-store", request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "the server failed unexpectedly; the error is in its log", "internal", request)
