"""The Arrow schema snapshots are streamed in, and conversions between rows and batches."""

import pyarrow as pa

from server.datasets.rows import Row

SNAPSHOT_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("input", pa.string()),  # blob id of the input bytes
        pa.field("label", pa.string()),
        pa.field("split", pa.string()),
        pa.field("meta", pa.string()),  # canonical JSON object
    ]
)


def rows_to_batch(rows: list[Row]) -> pa.RecordBatch:
    """An Arrow batch of rows in the snapshot schema."""
    cols = list(zip(*rows)) if rows else [[] for _ in SNAPSHOT_SCHEMA]
    return pa.RecordBatch.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, SNAPSHOT_SCHEMA)], schema=SNAPSHOT_SCHEMA)


def batch_to_rows(batch: pa.RecordBatch | pa.Table) -> list[Row]:
    """Rows of an Arrow batch in the snapshot schema."""
    cols = [batch.column(name).to_pylist() for name in SNAPSHOT_SCHEMA.names]
    return [Row(*values) for values in zip(*cols)]
