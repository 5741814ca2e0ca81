"""Routes whose JSON bodies are parsed off the event loop.

FastAPI parses a JSON body with json.loads on the event loop; a body at the 1 MiB cap takes tens
of milliseconds, during which every other request of the process waits (health checks, SSE
streams). Parsed in a worker thread instead, only that request waits for it.
"""

import json

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool


class OffLoopRequest(Request):
    """A request whose .json() decodes in a thread."""

    async def json(self):  # noqa: ANN201
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = await run_in_threadpool(json.loads, body)
        return self._json


class OffLoopRoute(APIRoute):
    """An APIRoute handing its handler an OffLoopRequest."""

    def get_route_handler(self):  # noqa: ANN201
        handler = super().get_route_handler()

        async def off_loop(request: Request):  # noqa: ANN202
            return await handler(OffLoopRequest(request.scope, request.receive))

        return off_loop
