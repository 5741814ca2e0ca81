"""Checking the store: every blob hashes to its id, every referenced blob exists, and what crashes left behind."""

from collections.abc import Callable

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.models import DatasetInput
from server.maintenance.gc import Leftover, cutoff, kept_blobs, leftovers

LEFTOVER_AGE_S = 60.0  # younger partial writes and folders may belong to work in progress


class FsckReport(BaseModel):
    """What s2 fsck found; leftovers are not damage (s2 gc removes them)."""

    checked: int
    corrupt: list[str]
    missing: list[str]
    leftovers: list[Leftover] = []


def check_store(db: Session, blobs: BlobStore, tick: Callable[[int], None] | None = None) -> FsckReport:
    """Hash every stored blob, look for referenced blobs that are gone, and list leftovers of killed processes."""
    stored, corrupt = set(), []
    for blob_id in blobs.iter_ids():
        stored.add(blob_id)
        if not blobs.verify(blob_id):
            corrupt.append(blob_id)
        if tick:
            tick(1)
    referenced = set(db.scalars(select(DatasetInput.blob_id)))
    referenced |= kept_blobs(db)
    left = leftovers(db, blobs, cutoff(db, blobs, LEFTOVER_AGE_S, fail_stale=False))
    return FsckReport(checked=len(stored), corrupt=sorted(corrupt), missing=sorted(referenced - stored), leftovers=left)
