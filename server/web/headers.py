"""Headers on every response: no MIME sniffing, no framing by other sites (pages add their CSP themselves)."""

EXTRA = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]


class SecurityHeaders:
    """Pure ASGI middleware (no body buffering): adds EXTRA to each response that lacks them."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in EXTRA if h[0] not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)
