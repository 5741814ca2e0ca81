"""A request body limit enforced while the body streams in, before anything parses or spools it."""

import json

from server.config import get_settings


class BodyTooLarge(Exception):
    """The client sent more bytes than the limit."""


class BodyLimitMiddleware:
    """413 for a body over S2_UPLOAD_MAX_BYTES: at once from Content-Length, or as soon as the stream passes it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = get_settings().upload_max_bytes
        declared = dict(scope.get("headers") or {}).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _refuse(send, limit)
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
                await _refuse(send, limit)
            started = started or message["type"] == "http.response.start"
            if not refused:
                await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send, limit)


async def _refuse(send, limit: int) -> None:
    body = json.dumps(
        {
            "type": "https://s2.dev/problems/too-large",
            "title": "Content Too Large",
            "status": 413,
            "detail": f"the request body is larger than the {limit} byte limit (S2_UPLOAD_MAX_BYTES); "
            "split the upload into several imports",
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
