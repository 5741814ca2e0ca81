"""Request bodies, bounded before anything parses or spools them.

A route that needs an API token checks it from the headers before a byte of the body is read:
a stranger gets a 401 and the server holds nothing of what they sent. Every body is then capped
at S2_JSON_MAX_BYTES (it is parsed in memory, JSON on the event loop), except an import's upload,
capped at S2_UPLOAD_MAX_BYTES: 413 at once from Content-Length, or as soon as the stream passes it.
"""

import json
import re
from collections.abc import Callable, Iterable

from starlette.requests import HTTPConnection
from starlette.routing import compile_path

from server.api.deps import authenticate_request
from server.config import get_settings
from server.errors import S2Error


class BodyTooLarge(Exception):
    """The client sent more bytes than the limit."""


def secured_operations(schema: dict) -> dict[str, list[re.Pattern]]:
    """Method -> path patterns of the operations an OpenAPI schema says need a token (a `security` requirement)."""
    found: dict[str, list[re.Pattern]] = {}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and operation.get("security"):
                found.setdefault(method.upper(), []).append(compile_path(path)[0])
    return found


class BodyLimitMiddleware:
    """401 before the body for a route that needs a token; 413 for a body over its limit.

    openapi: the app's schema, read once, says which operations need a token; uploads: the
    (method, path template) of the routes that take an upload (S2_UPLOAD_MAX_BYTES, not S2_JSON_MAX_BYTES).
    """

    def __init__(self, app, openapi: Callable[[], dict], uploads: Iterable[tuple[str, str]] = ()):
        self.app = app
        schema = openapi()
        self.secured = secured_operations(schema)
        self.uploads: dict[str, list[re.Pattern]] = {}
        for method, path in uploads:
            if method.lower() not in schema.get("paths", {}).get(path, {}):  # a renamed route must not fall back to the small limit
                raise ValueError(f"uploads names {method} {path}, which is no operation of the app")
            self.uploads.setdefault(method, []).append(compile_path(path)[0])

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        declared = headers.get(b"content-length")
        if declared in (None, b"0") and b"transfer-encoding" not in headers:
            return await self.app(scope, receive, send)  # no body
        method, path = scope["method"], _route_path(scope)
        if any(p.match(path) for p in self.secured.get(method, ())):
            try:
                await authenticate_request(HTTPConnection(scope))
            except S2Error as exc:  # no token, or a bad one: answered from the headers alone
                return await _refuse_caller(scope, receive, send, exc)
        settings = get_settings()
        if any(p.match(path) for p in self.uploads.get(method, ())):
            limit, setting = settings.upload_max_bytes, "S2_UPLOAD_MAX_BYTES"
        else:
            limit, setting = settings.json_max_bytes, "S2_JSON_MAX_BYTES"
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _refuse(send, limit, setting)
        seen, started, over, refused = 0, False, False, False

        async def counting_receive():
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    raise BodyTooLarge()
            return message

        async def tracking_send(message):
            nonlocal started, refused
            if over and not started and message["type"] == "http.response.start":
                refused = True  # the app answered BodyTooLarge itself (FastAPI: "error parsing the body"): a 413 instead
                await _refuse(send, limit, setting)
            started = started or message["type"] == "http.response.start"
            if not refused:
                await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send, limit, setting)


def _route_path(scope) -> str:
    """The path routes match against (without the root path a proxy mounts the app under)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _refuse_caller(scope, receive, send, exc: S2Error) -> None:
    from server.api.problems import problem, status_of

    status, kind = status_of(exc)
    response = problem(status, str(exc), kind, instance=scope["path"])
    response.headers["connection"] = "close"  # the body stays unread: the connection cannot carry another request
    await response(scope, receive, send)


async def _refuse(send, limit: int, setting: str) -> None:
    advice = "split the upload into several imports" if setting == "S2_UPLOAD_MAX_BYTES" else "split it into smaller requests"
    body = json.dumps(
        {
            "type": "https://s2.dev/problems/too-large",
            "title": "Content Too Large",
            "status": 413,
            "detail": f"the request body is larger than the {limit} byte limit ({setting}); {advice}",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
