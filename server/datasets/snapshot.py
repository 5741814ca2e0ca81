"""Reading a revision whole or a page at a time: its checkpoint merged with the deltas since, by key."""

from collections.abc import Iterator

import pyarrow as pa
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.arrow import SNAPSHOT_SCHEMA, rows_to_batch
from server.datasets.checkpoints import BATCH_ROWS, open_checkpoint
from server.datasets.graph import checkpoint_chain
from server.datasets.lookup import changes_in_range, stream_chain
from server.datasets.models import Commit
from server.datasets.rows import Row

TAIL_ROWS = 8192  # delta rows past the checkpoint's end are turned into Arrow this many at a time (Python rows are big)


def iter_snapshot(db: Session, blobs: BlobStore, commit_pk: int, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The examples at a commit, sorted by key, as Arrow batches.

    Memory holds one checkpoint batch (a view of the mapped cache file) and the delta rows that
    sort inside it; the deltas stream from the database in key order.
    """
    checkpoint, chain = checkpoint_chain(db, commit_pk)
    deltas = stream_chain(db, chain)
    pending: tuple[str, Row | None] | None = next(deltas, None)
    batches = open_checkpoint(blobs, checkpoint).iter_batches() if checkpoint is not None else iter(())
    for batch in batches:
        last_key = batch.column(0)[-1].as_py()
        changed, puts = [], []
        while pending is not None and pending[0] <= last_key:
            changed.append(pending[0])
            if pending[1] is not None:
                puts.append(pending[1])
            pending = next(deltas, None)
        if changed:
            import pyarrow.compute as pc  # ~50 ms to import: only when a checkpoint's batch is patched

            batch = batch.filter(pc.invert(pc.is_in(batch.column(0), value_set=pa.array(changed, type=pa.string()))))
        if puts:
            merged = pa.Table.from_batches([batch, rows_to_batch(puts)]).sort_by("key").combine_chunks()
            batch = merged.to_batches()[0] if merged.num_rows else batch.slice(0, 0)
        for start in range(0, batch.num_rows, batch_rows):
            yield batch.slice(start, batch_rows)
    tail: list[Row] = []
    while pending is not None:
        if pending[1] is not None:
            tail.append(pending[1])
            if len(tail) >= min(batch_rows, TAIL_ROWS):
                yield rows_to_batch(tail)
                tail = []
        pending = next(deltas, None)
    if tail:
        yield rows_to_batch(tail)


def read_table(db: Session, blobs: BlobStore, commit_pk: int) -> pa.Table:
    """The whole snapshot of a commit as one Arrow table."""
    return pa.Table.from_batches(list(iter_snapshot(db, blobs, commit_pk)), schema=SNAPSHOT_SCHEMA)


def page_rows(db: Session, blobs: BlobStore, commit_pk: int, *, after: str | None, limit: int, label: str | None = None) -> list[Row]:
    """Up to limit examples at a commit with keys after `after`, in key order (optionally of one label).

    A window of checkpoint rows after the cursor is merged with the deltas of the same key range;
    each window costs a binary search and a few bounded queries, whatever the table's size.
    """
    checkpoint, chain = checkpoint_chain(db, commit_pk)
    dataset_id = db.get(Commit, commit_pk).dataset_id
    base = open_checkpoint(blobs, checkpoint) if checkpoint is not None else None
    found: list[Row] = []
    lo = after
    while len(found) < limit:
        want = limit - len(found)
        window = base.rows_after(lo, want + 1) if base is not None else []
        exhausted = len(window) <= want
        hi = None if exhausted else window[want - 1].key
        window = window[:want] if not exhausted else window
        changes, complete = changes_in_range(db, dataset_id, chain, lo, hi, want)
        if complete is not None:
            window = [row for row in window if row.key <= complete]
        merged = {row.key: row for row in window}
        for key, row in changes.items():
            if row is None:
                merged.pop(key, None)
            else:
                merged[key] = row
        found.extend(row for _, row in sorted(merged.items()) if label is None or row.label == label)
        if complete is None:
            break  # the checkpoint and every delta are read to the end
        lo = complete
    return found[:limit]
