"""Paths of the REST API as the remote backend writes them."""

from urllib.parse import quote

API = "/api/v1"


def q(segment: str) -> str:
    """A path segment, escaped ('/' too)."""
    return quote(segment, safe="")


def qk(key: str) -> str:
    """An example key in a path (its '/' kept: keys are paths)."""
    return quote(key, safe="/")
