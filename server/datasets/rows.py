"""An example's state in a snapshot, and the Arrow schema snapshots are streamed in."""
import json
from typing import NamedTuple

import pyarrow as pa

SNAPSHOT_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("input", pa.string()),  # blob id of the input bytes
        pa.field("label", pa.string()),
        pa.field("split", pa.string()),
        pa.field("meta", pa.string()),  # canonical JSON object
    ]
)


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


def rows_to_batch(rows: list[Row]) -> pa.RecordBatch:
    """An Arrow batch of rows in the snapshot schema."""
    cols = list(zip(*rows)) if rows else [[] for _ in SNAPSHOT_SCHEMA]
    return pa.RecordBatch.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, SNAPSHOT_SCHEMA)], schema=SNAPSHOT_SCHEMA)


def batch_to_rows(batch: pa.RecordBatch | pa.Table) -> list[Row]:
    """Rows of an Arrow batch in the snapshot schema."""
    cols = [batch.column(name).to_pylist() for name in SNAPSHOT_SCHEMA.names]
    return [Row(*values) for values in zip(*cols)]
