"""Reading a revision: its checkpoint plus the deltas since, streamed as key-sorted Arrow batches."""
import bisect
from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.history import checkpoint_chain, first_parent_chain
from server.datasets.models import Change, Commit
from server.datasets.arrow import SNAPSHOT_SCHEMA, batch_to_rows, rows_to_batch
from server.datasets.rows import Row

BATCH_ROWS = 65_536
IN_CHUNK = 500  # keys per SQL IN (...) list: well under SQLite's variable limit
INDEXED_LOOKUP_RATIO = 20  # look keys up by index when they are under 1/20 of the table


def load_delta(db: Session, commit_pks: list[int]) -> dict[str, Row | None]:
    """The net effect of commits' deltas applied in order: key -> new row, or None if removed."""
    order = {pk: i for i, pk in enumerate(commit_pks)}
    result: dict[str, Row | None] = {}
    if not commit_pks:
        return result
    rows = db.execute(
        select(Change.commit_pk, Change.key, Change.removed, Change.input, Change.label, Change.split, Change.meta)
        .where(Change.commit_pk.in_(commit_pks))
    ).all()
    for commit_pk, key, removed, input_, label, split, meta in sorted(rows, key=lambda r: order[r[0]]):
        result[key] = None if removed else Row(key, input_, label, split, meta)
    return result


def touched_keys(db: Session, commit_pks: Iterable[int]) -> set[str]:
    """Every key some of these commits changed."""
    pks = sorted(set(commit_pks))
    keys: set[str] = set()
    for i in range(0, len(pks), IN_CHUNK):
        keys.update(db.scalars(select(Change.key).where(Change.commit_pk.in_(pks[i : i + IN_CHUNK]))))
    return keys


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


def lookup(db: Session, blobs: BlobStore, commit_pk: int, keys: Iterable[str]) -> dict[str, Row]:
    """The rows these keys hold at a commit; keys absent there are absent from the result."""
    return lookup_many(db, blobs, [commit_pk], keys)[0]


def lookup_many(db: Session, blobs: BlobStore, commit_pks: list[int], keys: Iterable[str]) -> list[dict[str, Row]]:
    """The rows these keys hold at each of several commits (one dict per commit).

    A few keys are found through the (dataset, key) index of the deltas, at a cost that grows
    with the keys asked for, not with the table; many keys are cheaper to find by one scan of
    the checkpoint.
    """
    wanted = set(keys)
    results: list[dict[str, Row]] = [{} for _ in commit_pks]
    if not wanted:
        return results
    commits = [db.get(Commit, pk) for pk in commit_pks]
    indexed = [i for i, c in enumerate(commits) if len(wanted) * INDEXED_LOOKUP_RATIO < c.row_count]
    for i, c in enumerate(commits):
        if i not in indexed:
            results[i] = _lookup_by_scan(db, blobs, c.pk, wanted)
    if indexed:
        positions = [{pk: d for d, pk in enumerate(first_parent_chain(db, commits[i].pk))} for i in indexed]
        nearest: list[dict[str, tuple[int, Row | None]]] = [{} for _ in indexed]
        ordered = sorted(wanted)
        for start in range(0, len(ordered), IN_CHUNK):
            versions = db.execute(
                select(Change.commit_pk, Change.key, Change.removed, Change.input, Change.label, Change.split, Change.meta)
                .where(Change.dataset_id == commits[0].dataset_id, Change.key.in_(ordered[start : start + IN_CHUNK]))
            ).all()
            for commit_pk, key, removed, input_, label, split, meta in versions:
                for position, best in zip(positions, nearest):
                    depth = position.get(commit_pk)
                    if depth is not None and (key not in best or depth < best[key][0]):
                        best[key] = (depth, None if removed else Row(key, input_, label, split, meta))
        for i, best in zip(indexed, nearest):
            results[i] = {key: row for key, (_, row) in best.items() if row is not None}
    return results


def _lookup_by_scan(db: Session, blobs: BlobStore, commit_pk: int, wanted: set[str]) -> dict[str, Row]:
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
