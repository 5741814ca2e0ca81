"""The Arrow schema snapshots are streamed in, and conversions between rows and batches."""

import pyarrow as pa

from server.datasets.rows import Row

SNAPSHOT_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("input", pa.string()),  # sha256 of the input bytes
        pa.field("label", pa.string()),
        pa.field("split", pa.string()),
        pa.field("meta", pa.string()),  # canonical JSON object
        pa.field("inline", pa.string()),  # the input itself when stored with the example
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


def conform(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch of a checkpoint written before a column existed, with that column as nulls."""
    if batch.schema.names == SNAPSHOT_SCHEMA.names:
        return batch
    columns = [batch.column(f.name) if f.name in batch.schema.names else pa.nulls(batch.num_rows, type=f.type) for f in SNAPSHOT_SCHEMA]
    return pa.RecordBatch.from_arrays(columns, schema=SNAPSHOT_SCHEMA)
