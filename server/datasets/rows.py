"""An example's state in a snapshot (pure Python: light commands never load Arrow)."""

import json
from typing import NamedTuple


class Row(NamedTuple):
    """One example as stored: a key and what the key holds at some commit."""

    key: str
    input: str  # sha256 of the input bytes: a blob id, or the id of the inline input below
    label: str | None
    split: str | None = None
    meta: str | None = None
    inline: str | None = None  # the input itself when small (a short text, a tabular row as JSON)

    def same_content(self, other: "Row | None") -> bool:
        """Whether other holds the same input, label, split and metadata (inline follows from input)."""
        return other is not None and self[1:5] == other[1:5]


def canonical_json(obj: dict) -> str | None:
    """A stable JSON text for a metadata dict (None for empty), so equal dicts compare equal."""
    if not obj:
        return None
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
