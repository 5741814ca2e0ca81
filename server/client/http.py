"""A small HTTP client on the standard library (the CLI stays quick to start): JSON, problem+json, uploads."""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib import error, parse, request

from server.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    NothingToCommit,
    S2Error,
    TooLarge,
    Unauthorized,
    UpstreamFailed,
)

BY_STATUS = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 413: TooLarge, 422: InvalidInput, 502: UpstreamFailed}
BY_TYPE = {"already-exists": AlreadyExists, "nothing-to-commit": NothingToCommit, "upstream-failed": UpstreamFailed}


class ServerUnreachable(S2Error):
    """The s2 server did not answer."""


class Http:
    """Requests to one s2 server with one bearer token."""

    def __init__(self, url: str, token: str | None, timeout: float = 600):
        self.base = url.rstrip("/")
        self.token, self.timeout = token, timeout

    def _open(
        self,
        method: str,
        path: str,
        *,
        query: dict | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        stream: bool = False,
    ):
        q = {k: v for k, v in (query or {}).items() if v is not None}
        url = f"{self.base}{path}" + (f"?{parse.urlencode(q, doseq=True)}" if q else "")
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if content_type:
            headers["Content-Type"] = content_type
        req = request.Request(url, data=body, method=method, headers=headers)
        try:
            return request.urlopen(req, timeout=None if stream else self.timeout)
        except error.HTTPError as exc:
            raise self._problem(exc) from None
        except (error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerUnreachable(f"cannot reach the s2 server at {self.base}: {reason} (check --server / S2_SERVER)") from None

    @staticmethod
    def _problem(exc: error.HTTPError) -> S2Error:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        detail = body.get("detail") or f"the server answered {exc.code} {exc.reason}"
        kind = str(body.get("type", "")).rsplit("/", 1)[-1]
        cls = BY_TYPE.get(kind) or BY_STATUS.get(exc.code, S2Error)
        extra = {k: v for k, v in body.items() if k not in ("type", "title", "status", "detail", "instance")}
        return cls(detail, extra=extra)

    def call(self, method: str, path: str, *, json_body: object = None, query: dict | None = None):
        """One JSON request; the decoded answer (None for 204)."""
        body = None if json_body is None else json.dumps(json_body).encode()
        with self._open(method, path, query=query, body=body, content_type="application/json" if body else None) as resp:
            data = resp.read()
        return json.loads(data) if data else None

    def pages(self, path: str, query: dict | None = None, limit: int | None = None) -> Iterator[dict]:
        """Every item of a paged list (at most limit)."""
        cursor, seen = None, 0
        while True:
            page = self.call("GET", path, query={**(query or {}), "cursor": cursor, "limit": min(1000, limit or 1000)})
            for item in page["items"]:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def upload(self, path: str, files: list[Path], query: dict | None = None):
        """POST files as multipart/form-data (field `files`), streamed from disk."""
        boundary = f"s2-{uuid.uuid4().hex}"
        heads = [
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{f.name}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            for f in files
        ]
        tail = f"--{boundary}--\r\n".encode()
        size = sum(len(h) + f.stat().st_size + 2 for h, f in zip(heads, files)) + len(tail)

        def chunks():
            for head, f in zip(heads, files):
                yield head
                with open(f, "rb") as src:
                    while block := src.read(1 << 20):
                        yield block
                yield b"\r\n"
            yield tail

        q = {k: v for k, v in (query or {}).items() if v is not None}
        url = f"{self.base}{path}" + (f"?{parse.urlencode(q)}" if q else "")
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(size), "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = request.Request(url, data=chunks(), method="POST", headers=headers)
        try:
            with request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except error.HTTPError as exc:
            raise self._problem(exc) from None
        except (error.URLError, OSError) as exc:
            raise ServerUnreachable(f"cannot reach the s2 server at {self.base}: {getattr(exc, 'reason', exc)}") from None

    def get_bytes(self, path: str, query: dict | None = None) -> bytes:
        """A response body as bytes (media)."""
        with self._open("GET", path, query=query) as resp:
            return resp.read()

    def download(self, path: str, target: Path, query: dict | None = None) -> str:
        """Save a response body to target; returns its Content-Type."""
        with self._open("GET", path, query=query, stream=True) as resp, open(target, "wb") as out:
            while block := resp.read(1 << 20):
                out.write(block)
            return resp.headers.get("Content-Type", "")

    def events(self, path: str) -> Iterator[tuple[str, dict]]:
        """Server-Sent Events from path as (event, data) pairs."""
        with self._open("GET", path, stream=True) as resp:
            event, data = "message", []
            for raw in resp:
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line:
                    if data:
                        yield event, json.loads("\n".join(data))
                    event, data = "message", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
