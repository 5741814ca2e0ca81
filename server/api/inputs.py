"""Strings s2 cannot store: a NUL (PostgreSQL text and JSON cannot hold one) or a lone UTF-16 surrogate (JSON's
"\\ud800" decodes to one; it has no UTF-8 form). A request carrying either is a 422, not a 500."""

from urllib.parse import parse_qsl

NUL = "\x00"
MESSAGE = "contains a NUL character (\\u0000) or a lone surrogate (\\ud800-\\udfff), which s2 cannot store or look up"


def unstorable(text: str) -> bool:
    """Whether text holds a NUL or a lone surrogate."""
    if NUL in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def find_nul(value: object, where: str = "") -> str | None:
    """The dotted place of the first string (or key) in a JSON-like value that s2 cannot store; None when there is none."""
    if isinstance(value, str):
        return where if unstorable(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and unstorable(key):
                return here.encode("utf-8", "replace").decode("utf-8")
            if (found := find_nul(item, here)) is not None:
                return found
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if (found := find_nul(item, f"{where}.{i}" if where else str(i))) is not None:
                return found
    return None


def nul_in_url(scope: dict) -> str | None:
    """'path' or 'query.NAME' when the request's decoded path or a query parameter holds a NUL."""
    if NUL in scope.get("path", ""):
        return "path"
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if NUL in name or NUL in value:
            return f"query.{name.replace(NUL, '?')}"
    return None


class RefuseNul:
    """ASGI middleware: a path or query parameter with a NUL is refused before any route reads it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        where = nul_in_url(scope) if scope["type"] == "http" else None
        if where is None:
            return await self.app(scope, receive, send)
        from server.api.problems import problem

        response = problem(
            422,
            f"{where} {MESSAGE}",
            "invalid-request",
            errors=[{"field": where, "message": MESSAGE}],
            instance=scope["path"].replace(NUL, "\\u0000"),
        )
        await response(scope, receive, send)
