"""An example's state in a snapshot (pure Python: light commands never load Arrow)."""

import json
from typing import NamedTuple


class Row(NamedTuple):
    """One example as stored: a key and what the key holds at some commit."""

    key: str
    input: str
    label: str | None
    split: str | None = None
    meta: str | None = None

    def same_content(self, other: "Row | None") -> bool:
        """Whether other holds the same input, label, split and metadata."""
        return other is not None and self[1:] == other[1:]


def canonical_json(obj: dict) -> str | None:
    """A stable JSON text for a metadata dict (None for empty), so equal dicts compare equal."""
    if not obj:
        return None
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
