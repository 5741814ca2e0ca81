"""Cursor pagination shared by every list endpoint: opaque cursors, stable order, bounded pages."""

import base64
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from server.errors import InvalidInput

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass next_cursor back as ?cursor= for the next (null: this is the last)."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(value: object) -> str:
    """An opaque cursor for the position after value."""
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> object:
    """The position a cursor stands for (None when no cursor was given, or an empty one: clients send ?cursor= for none)."""
    if not cursor:
        return None
    from server.api.inputs import find_nul

    foreign = InvalidInput(f"cursor {cursor!r} is not one this API gave out: pass next_cursor from the previous page as is")
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise foreign from None
    if value is None or find_nul(value) is not None:  # positions we never give out
        raise foreign
    return value


def cursor_str(cursor: str | None) -> str | None:
    """A cursor that must stand for a string position (a key, a name)."""
    value = decode_cursor(cursor)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"cursor {cursor!r} does not belong to this list")
    return value


def cursor_int(cursor: str | None) -> int | None:
    """A cursor that must stand for an integer position (an id)."""
    value = decode_cursor(cursor)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise InvalidInput(f"cursor {cursor!r} does not belong to this list")
    return value


def page_from(items: Sequence[T], limit: int, position: Callable[[T], object]) -> Page[T]:
    """A page of items fetched with limit + 1 (the extra one only says another page exists)."""
    more = len(items) > limit
    items = list(items[:limit])
    return Page(items=items, next_cursor=encode_cursor(position(items[-1])) if more and items else None)


Cursor = Annotated[str | None, Query(description="next_cursor of the previous page; omit for the first page")]
Limit = Annotated[int, Query(ge=1, le=1000, description="How many items a page holds at most")]


def page_following(items: Sequence[T], cursor: str | None, limit: int, ident: Callable[[T], str]) -> Page[T]:
    """A page of an in-memory list in a fixed order that is not by ident (e.g. history), after the item the cursor names."""
    after = cursor_str(cursor)
    start = 0
    if after is not None:
        found = next((i for i, it in enumerate(items) if ident(it) == after), None)
        if found is None:
            raise InvalidInput(f"cursor {cursor!r} names nothing in this list any more: start again without a cursor")
        start = found + 1
    return page_from(items[start : start + limit + 1], limit, ident)


def history_frontier(cursor: str | None) -> list[int] | None:
    """The history walk's frontier a cursor carries (commit keys; never more than a walk can hold)."""
    from server.errors import InvalidInput

    value = decode_cursor(cursor)
    if value is None:
        return None
    pks = value.get("f") if isinstance(value, dict) else None
    if not (isinstance(pks, list) and 0 < len(pks) <= 10_000 and all(type(pk) is int and 0 < pk < 2**63 for pk in pks)):
        raise InvalidInput(f"cursor {cursor!r} does not belong to this list")
    return pks
