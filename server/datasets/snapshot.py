"""Reading a whole revision: its checkpoint plus the deltas since, streamed as key-sorted Arrow batches."""

import bisect
from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.arrow import SNAPSHOT_SCHEMA, batch_to_rows, rows_to_batch
from server.datasets.history import checkpoint_chain
from server.datasets.lookup import load_delta
from server.datasets.rows import Row

BATCH_ROWS = 65_536


def read_checkpoint(blobs: BlobStore, blob_id: str) -> pq.ParquetFile:
    """A checkpoint's Parquet file, its bytes verified against the blob id."""
    return pq.ParquetFile(pa.BufferReader(blobs.get(blob_id)))


def iter_snapshot(db: Session, blobs: BlobStore, commit_pk: int, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The examples at a commit, sorted by key, as Arrow batches (memory: one batch plus the delta)."""
    checkpoint, chain = checkpoint_chain(db, commit_pk)
    delta = load_delta(db, chain)
    puts = sorted(row for row in delta.values() if row is not None)
    put_keys = [row.key for row in puts]
    changed = pa.array(list(delta), type=pa.string())
    taken = 0
    if checkpoint is not None:
        for batch in read_checkpoint(blobs, checkpoint).iter_batches(batch_size=batch_rows):
            if batch.num_rows == 0:
                continue
            last_key = batch.column(0)[-1].as_py()
            if len(changed):
                batch = batch.filter(pc.invert(pc.is_in(batch.column(0), value_set=changed)))
            upto = bisect.bisect_right(put_keys, last_key, lo=taken)
            if upto > taken:  # delta rows that sort inside this batch's key range
                merged = pa.Table.from_batches([batch, rows_to_batch(puts[taken:upto])]).sort_by("key")
                batch, taken = merged.combine_chunks().to_batches()[0], upto
            if batch.num_rows:
                yield batch
    for start in range(taken, len(puts), batch_rows):
        yield rows_to_batch(puts[start : start + batch_rows])


def read_table(db: Session, blobs: BlobStore, commit_pk: int) -> pa.Table:
    """The whole snapshot of a commit as one Arrow table."""
    return pa.Table.from_batches(list(iter_snapshot(db, blobs, commit_pk)), schema=SNAPSHOT_SCHEMA)


def lookup_by_scan(db: Session, blobs: BlobStore, commit_pk: int, wanted: set[str]) -> dict[str, Row]:
    """The rows of wanted keys at a commit, found by one scan of its checkpoint plus the deltas since."""
    checkpoint, chain = checkpoint_chain(db, commit_pk)
    found: dict[str, Row] = {}
    rest = set(wanted)
    for key, row in load_delta(db, chain).items():
        if key in rest:
            rest.discard(key)
            if row is not None:
                found[key] = row
    if rest and checkpoint is not None:
        pf = read_checkpoint(blobs, checkpoint)
        values = pa.array(sorted(rest), type=pa.string())
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            hits = batch.filter(pc.is_in(batch.column(0), value_set=values))
            for row in batch_to_rows(hits):
                found[row.key] = row
    return found


def write_checkpoint(blobs: BlobStore, batches: Iterable[pa.RecordBatch]) -> tuple[str, int]:
    """Store a key-sorted snapshot as one Parquet blob; returns its id and row count."""
    sink = pa.BufferOutputStream()
    rows = 0
    with pq.ParquetWriter(sink, SNAPSHOT_SCHEMA, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(batch, row_group_size=BATCH_ROWS)
            rows += batch.num_rows
    return blobs.put(sink.getvalue().to_pybytes()), rows
