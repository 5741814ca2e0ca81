"""Errors as RFC 9457 problem details (application/problem+json), each with a message a person can act on."""
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from server import errors
from server.blobs import BlobCorrupt, BlobMissing

PROBLEM = "application/problem+json"
log = logging.getLogger("s2.api")

STATUS = [  # most specific first
    (errors.BranchMoved, 409, "branch-moved"),
    (errors.TooLarge, 413, "too-large"),
    (errors.Unauthorized, 401, "unauthorized"),
    (errors.Forbidden, 403, "forbidden"),
    (errors.NotFound, 404, "not-found"),
    (errors.AlreadyExists, 409, "already-exists"),
    (errors.Conflict, 409, "conflict"),
    (errors.NothingToCommit, 409, "nothing-to-commit"),
    (errors.InvalidInput, 422, "invalid-input"),
]
TITLES = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
          413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content", 500: "Internal Server Error",
          503: "Service Unavailable"}


def problem(status: int, detail: str, kind: str = "about:blank", request: Request | None = None, **extra) -> JSONResponse:
    """A problem+json response."""
    body = {"type": kind if kind == "about:blank" else f"https://s2.dev/problems/{kind}",
            "title": TITLES.get(status, "Error"), "status": status, "detail": detail}
    if request is not None:
        body["instance"] = request.url.path
    body.update(extra)
    headers = {"WWW-Authenticate": 'Bearer realm="s2"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


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
        if exc.status_code == 404 and detail == "Not Found":
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
