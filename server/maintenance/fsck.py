"""Checking the store: every blob hashes to its id, every referenced blob exists."""

from collections.abc import Callable

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.models import Change, Commit
from server.runs.models import ModelVersion


class FsckReport(BaseModel):
    """What s2 fsck found."""

    checked: int
    corrupt: list[str]
    missing: list[str]


def check_store(db: Session, blobs: BlobStore, tick: Callable[[int], None] | None = None) -> FsckReport:
    """Hash every stored blob and look for referenced blobs that are gone."""
    stored, corrupt = set(), []
    for blob_id in blobs.iter_ids():
        stored.add(blob_id)
        if not blobs.verify(blob_id):
            corrupt.append(blob_id)
        if tick:
            tick(1)
    referenced = set(db.scalars(select(Change.input).where(Change.input.is_not(None), Change.inline.is_(None)).distinct()))
    referenced.update(db.scalars(select(Commit.checkpoint_blob).where(Commit.checkpoint_blob.is_not(None))))
    for weights, predictions in db.execute(select(ModelVersion.weights_blob, ModelVersion.predictions_blob)):
        referenced.update((weights, predictions))
    return FsckReport(checked=len(stored), corrupt=sorted(corrupt), missing=sorted(referenced - stored))
