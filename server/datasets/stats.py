"""Figures of a revision as a whole: how many examples carry each label.

A commit is immutable, so its figures are computed once per process and kept (LRU). The work is
the checkpoint's label column counted in Arrow (vectorized over the memory-mapped cache file,
itself cached per checkpoint), corrected by the deltas since the checkpoint: O(changes since the
checkpoint) in Python, which compaction bounds, so a ten-million-row head costs one column scan
the first time and nothing after.
"""

from collections import Counter

from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.checkpoints import open_checkpoint
from server.datasets.datasets import get_dataset
from server.datasets.graph import checkpoint_chain
from server.datasets.history import resolve_rev
from server.datasets.lookup import stream_chain

_CHECKPOINTS: dict[str, dict[str | None, int]] = {}  # checkpoint blob id (a content hash) -> its counts
_COMMITS: dict[str, dict[str | None, int]] = {}  # dataset id:commit id -> its counts
_KEPT = 256


def _remember(into: dict, key: str, value: dict) -> None:
    if len(into) >= _KEPT:
        into.pop(next(iter(into)))  # the oldest entry
    into[key] = value


def _checkpoint_counts(blobs: BlobStore, blob_id: str) -> dict[str | None, int]:
    if blob_id not in _CHECKPOINTS:
        import pyarrow.compute as pc

        counts: Counter = Counter()
        for batch in open_checkpoint(blobs, blob_id).iter_batches():
            for item in pc.value_counts(batch.column(2)).to_pylist():
                counts[item["values"]] += item["counts"]
        _remember(_CHECKPOINTS, blob_id, dict(counts))
    return _CHECKPOINTS[blob_id]


def label_counts(db: Session, blobs: BlobStore, *, dataset: str, rev: str | None) -> dict[str | None, int]:
    """How many examples of the revision carry each label (None: unlabeled), labels with none left out."""
    ds = get_dataset(db, dataset)
    commit = resolve_rev(db, ds, rev or ds.default_branch)
    cache_key = f"{ds.id}:{commit.id}"
    if cache_key in _COMMITS:
        return dict(_COMMITS[cache_key])
    checkpoint, chain = checkpoint_chain(db, commit.pk)
    counts: Counter = Counter(_checkpoint_counts(blobs, checkpoint)) if checkpoint is not None else Counter()
    changed = list(stream_chain(db, chain))  # each key the deltas touched, with its row now (None: removed)
    if changed:
        before = open_checkpoint(blobs, checkpoint).find_many([k for k, _ in changed]) if checkpoint is not None else {}
        for key, row in changed:
            if key in before:
                counts[before[key].label] -= 1
            if row is not None:
                counts[row.label] += 1
    result = {label: n for label, n in counts.items() if n > 0}
    _remember(_COMMITS, cache_key, result)
    return dict(result)
