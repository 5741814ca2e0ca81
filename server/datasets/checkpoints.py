"""Checkpoints: full key-sorted snapshots of a commit, found by key without reading them whole.

A checkpoint is a zstd Parquet blob, read through the host's Arrow cache (arrow_cache.py): a key
is found by binary search over the mapped, sorted key column and a page is a zero-copy slice, so
a lookup costs the same at ten million rows as at a hundred thousand.
"""

import bisect
import os
from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from server.blobs import BlobStore
from server.datasets.arrow import SNAPSHOT_SCHEMA, batch_to_rows, conform
from server.datasets.arrow_cache import cache_dir, open_cached, tmp_beside, trim
from server.datasets.rows import Row

BATCH_ROWS = 65_536  # rows per Parquet row group and per cached record batch


class _Keys:
    """A sorted Arrow string column as a sequence of str, for bisect (one element converted per probe)."""

    def __init__(self, column: pa.Array):
        self.column = column

    def __len__(self) -> int:
        return len(self.column)

    def __getitem__(self, i: int) -> str:
        return self.column[i].as_py()


class Checkpoint:
    """One checkpoint, memory-mapped from the local cache: record batches sorted by key."""

    def __init__(self, reader: pa.RecordBatchFileReader):
        self.batches = [b for b in (reader.get_batch(i) for i in range(reader.num_record_batches)) if b.num_rows]
        self.keys = [_Keys(b.column(0)) for b in self.batches]
        self.last_keys = [k[len(k) - 1] for k in self.keys]
        self.num_rows = sum(b.num_rows for b in self.batches)

    def _position(self, key: str, *, after: bool) -> tuple[int, int]:
        """(batch, row) of the first row whose key is > key (after) or >= key."""
        i = (bisect.bisect_right if after else bisect.bisect_left)(self.last_keys, key)
        if i == len(self.batches):
            return i, 0
        return i, (bisect.bisect_right if after else bisect.bisect_left)(self.keys[i], key)

    def find(self, keys: Iterable[str]) -> dict[str, Row]:
        """The rows of these keys that the checkpoint holds (binary search; nothing else is read)."""
        found: dict[str, Row] = {}
        for key in keys:
            i, j = self._position(key, after=False)
            if i < len(self.batches) and self.keys[i][j] == key:
                found[key] = batch_to_rows(self.batches[i].slice(j, 1))[0]
        return found

    def find_many(self, keys: list[str]) -> dict[str, Row]:
        """Like find, for many sorted keys: a batch holding many of them is filtered whole instead of searched key by key."""
        import pyarrow.compute as pc

        by_batch: dict[int, list[str]] = {}
        for key in keys:
            by_batch.setdefault(bisect.bisect_left(self.last_keys, key), []).append(key)
        found: dict[str, Row] = {}
        for i, wanted in by_batch.items():
            if i >= len(self.batches):
                continue
            if len(wanted) < 64:
                found.update(self.find(wanted))
            else:
                batch = self.batches[i]
                hits = batch.filter(pc.is_in(batch.column(0), value_set=pa.array(wanted, type=pa.string())))
                found.update((row.key, row) for row in batch_to_rows(hits))
        return found

    def iter_batches(self, after: str | None = None) -> Iterator[pa.RecordBatch]:
        """The batches (zero-copy) from the first key after `after` (None: from the start)."""
        i, j = self._position(after, after=True) if after is not None else (0, 0)
        for k in range(i, len(self.batches)):
            yield self.batches[k].slice(j) if k == i and j else self.batches[k]

    def rows_after(self, after: str | None, n: int) -> list[Row]:
        """Up to n rows with keys after `after`, in key order."""
        rows: list[Row] = []
        for batch in self.iter_batches(after):
            rows.extend(batch_to_rows(batch.slice(0, n - len(rows))))
            if len(rows) >= n:
                break
        return rows


def _convert(source: pq.ParquetFile):
    for batch in source.iter_batches(batch_size=BATCH_ROWS):
        yield conform(batch)


def open_checkpoint(blobs: BlobStore, blob_id: str) -> Checkpoint:
    """The checkpoint blob_id, mapped from this host's cache (filled from the blob store on first use)."""
    return open_cached(blobs, blob_id, _convert, Checkpoint)


def write_checkpoint(blobs: BlobStore, batches: Iterable[pa.RecordBatch]) -> tuple[str, int]:
    """Store a key-sorted snapshot as a Parquet blob (and in the local cache); returns its id and rows."""
    folder = cache_dir()
    rows = 0
    parquet, arrow = tmp_beside(folder / "checkpoint.parquet"), tmp_beside(folder / "checkpoint.arrow")
    with parquet as parquet_path, arrow as arrow_path:
        with (
            pq.ParquetWriter(parquet_path, SNAPSHOT_SCHEMA, compression="zstd", write_statistics=["key"]) as pwriter,
            pa.OSFile(str(arrow_path), "wb") as sink,
            pa.ipc.new_file(sink, SNAPSHOT_SCHEMA) as awriter,
        ):
            for batch in _rebatch(batches):
                pwriter.write_batch(batch, row_group_size=BATCH_ROWS)
                awriter.write_batch(batch)
                rows += batch.num_rows
        blob_id = blobs.put_file(parquet_path)
        os.replace(arrow_path, folder / f"{blob_id}.arrow")
    trim(keep=folder / f"{blob_id}.arrow")
    return blob_id, rows


def _rebatch(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Batches of BATCH_ROWS rows (the last may be shorter), whatever sizes come in."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(conform(batch))
        count += batch.num_rows
        while count >= BATCH_ROWS:
            table = pa.Table.from_batches(pending, schema=SNAPSHOT_SCHEMA).combine_chunks()
            yield table.slice(0, BATCH_ROWS).to_batches()[0]
            rest = table.slice(BATCH_ROWS)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending, schema=SNAPSHOT_SCHEMA).combine_chunks().to_batches()[0]
