"""Reading a revision for training: Arrow batches, or a PyTorch Dataset of (input bytes, label)."""

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from server.blobs import BlobStore, default_blob_store
from server.datasets.arrow import SNAPSHOT_SCHEMA
from server.datasets.history import resolve_rev
from server.datasets.service import get_dataset
from server.datasets.snapshot import iter_snapshot
from server.db import session_scope


@dataclass(frozen=True)
class Snapshot:
    """One revision of a dataset, pinned to its commit id: what training consumes."""

    dataset: str
    commit: str
    modality: str
    labels: tuple[str, ...]
    rows: int

    def batches(self, batch_rows: int = 65_536, db_url: str | None = None, blobs: BlobStore | None = None) -> Iterator[pa.RecordBatch]:
        """The examples, key-sorted, as Arrow batches (key, input blob id, label, split, meta)."""
        blobs = blobs or default_blob_store()
        with session_scope(db_url) as db:
            ds = get_dataset(db, self.dataset)
            yield from iter_snapshot(db, blobs, resolve_rev(db, ds, self.commit).pk, batch_rows)

    def table(self, **kwargs) -> pa.Table:
        """All examples as one Arrow table."""
        return pa.Table.from_batches(list(self.batches(**kwargs)), schema=SNAPSHOT_SCHEMA)

    def torch_dataset(self, db_url: str | None = None, blobs: BlobStore | None = None):
        """A map-style torch Dataset yielding dicts {key, input (bytes), label (index or -1), split}."""
        from server.datasets.torch_data import SnapshotDataset

        blobs = blobs or default_blob_store()
        return SnapshotDataset(self.table(db_url=db_url, blobs=blobs), self.labels, blobs)


def open_snapshot(dataset: str, rev: str | None = None, db_url: str | None = None) -> Snapshot:
    """Pin rev (default: the default branch) of dataset to a commit for reading."""
    with session_scope(db_url) as db:
        ds = get_dataset(db, dataset)
        commit = resolve_rev(db, ds, rev or ds.default_branch)
        return Snapshot(dataset=ds.name, commit=commit.id, modality=ds.modality, labels=tuple(ds.labels), rows=commit.row_count)
