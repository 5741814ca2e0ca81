"""`s2 gc`: reclaim blobs nothing references and what killed processes left behind (mark and sweep).

Marked (kept): every blob that is an input of a dataset at any revision (history is forever),
every checkpoint, every model's weights and predictions. Swept: any other blob, and partial
blob writes, upload folders and import spill folders, once they are older than the cutoff.

The cutoff is what makes gc safe beside a running import: an import stores its inputs before
the commit that references them, and a put that finds a blob present refreshes its time. So
nothing newer than the grace period, or than the start of the oldest import still running
(less the store's refresh slack), is touched.
"""

import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.config import get_settings
from server.datasets.models import Commit, DatasetInput
from server.errors import InvalidInput
from server.imports.models import ImportJob
from server.imports.service import TERMINAL, job_read
from server.runs.models import ModelVersion

BATCH = 500  # blob ids asked about per query
MIN_GRACE_S = 60


class GcReport(BaseModel):
    """What s2 gc freed (or, with dry_run, would free)."""

    dry_run: bool
    cutoff: datetime  # nothing modified after this was considered
    blobs: int
    blob_bytes: int
    temp_files: int
    folders: int
    freed_bytes: int


class Leftover(BaseModel):
    """Something a killed process left behind: a partial blob write, an upload or a spill folder."""

    kind: str  # partial-blob | upload | spill
    path: str
    modified: datetime
    bytes: int


def cutoff(db: Session, blobs: BlobStore, grace_s: float, *, fail_stale: bool = True) -> float:
    """The newest modification time gc may reclaim (a Unix timestamp)."""
    if fail_stale:
        for job in db.scalars(select(ImportJob).where(ImportJob.state.not_in(TERMINAL))):
            job_read(db, job)  # a job whose process died is failed here, so it no longer holds the cutoff back
    limit = time.time() - grace_s
    oldest = db.scalar(select(ImportJob.created_at).where(ImportJob.state.not_in(TERMINAL)).order_by(ImportJob.created_at).limit(1))
    if oldest is not None:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        limit = min(limit, oldest.timestamp() - blobs.refresh_after_s - 1)
    return limit


def kept_blobs(db: Session) -> set[str]:
    """Blobs that are not inputs: checkpoints and model files (few)."""
    kept = set(db.scalars(select(Commit.checkpoint_blob).where(Commit.checkpoint_blob.is_not(None))))
    for weights, predictions in db.execute(select(ModelVersion.weights_blob, ModelVersion.predictions_blob)):
        kept.update((weights, predictions))
    return kept


def unreferenced(db: Session, blobs: BlobStore, before: float) -> Iterator[tuple[str, int]]:
    """(blob id, size) of stored blobs older than `before` that nothing references, checked a batch at a time."""
    kept = kept_blobs(db)
    batch: list[tuple[str, int]] = []

    def sweep(batch: list[tuple[str, int]]) -> Iterator[tuple[str, int]]:
        ids = [blob_id for blob_id, _ in batch]
        inputs = set(db.scalars(select(DatasetInput.blob_id).where(DatasetInput.blob_id.in_(ids)).distinct()))
        yield from ((blob_id, size) for blob_id, size in batch if blob_id not in inputs and blob_id not in kept)

    for blob_id, modified, size in blobs.iter_entries():
        if modified < before:
            batch.append((blob_id, size))
            if len(batch) >= BATCH:
                yield from sweep(batch)
                batch = []
    if batch:
        yield from sweep(batch)


def leftovers(db: Session, blobs: BlobStore, before: float) -> list[Leftover]:
    """Partial blob writes, upload folders and spill folders older than `before` that no running import uses."""
    home = get_settings().home.resolve()
    in_use = {job.work_dir for job in db.scalars(select(ImportJob).where(ImportJob.state.not_in(TERMINAL))) if job.work_dir}
    found = [
        Leftover(kind="partial-blob", path=path, modified=_when(modified), bytes=size)
        for path, modified, size in blobs.iter_temp_files()
        if modified < before
    ]
    for kind, folder in (("upload", home / "uploads"), ("spill", home / "tmp")):
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            modified = entry.stat().st_mtime
            if entry.path not in in_use and modified < before:
                found.append(Leftover(kind=kind, path=entry.path, modified=_when(modified), bytes=_size(Path(entry.path))))
    return found


def _when(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def collect_garbage(blobs: BlobStore, *, grace_s: float, dry_run: bool = False, tick: Callable[[int], None] | None = None) -> GcReport:
    """Delete (or, dry_run, count) unreferenced blobs and leftovers older than the cutoff.

    Its own units of work: a short write (jobs whose process died are failed, so they no longer
    hold the cutoff back), then reads only, so a long sweep never holds writers up. A blob is
    checked once more just before it goes: one an import stored again meanwhile is kept.
    """
    from server.db import read_scope, run_in_transaction

    if grace_s < MIN_GRACE_S:
        raise InvalidInput(
            f"grace period {grace_s:g} s is too short: gc leaves alone what is younger than {MIN_GRACE_S} s at least "
            "(a blob and the row that references it are written within that)"
        )
    before = run_in_transaction(lambda db: cutoff(db, blobs, grace_s))
    count = size = 0
    with read_scope() as db:
        for blob_id, blob_size in unreferenced(db, blobs, before):
            if dry_run or blobs.delete_if_older(blob_id, before):
                count, size = count + 1, size + blob_size
            if tick:
                tick(1)
        left = leftovers(db, blobs, before)
    if not dry_run:
        for item in left:
            if item.kind == "partial-blob":
                blobs.remove_temp_file(item.path)
            elif Path(item.path).is_dir():
                shutil.rmtree(item.path, ignore_errors=True)
            else:
                Path(item.path).unlink(missing_ok=True)
    temp_files = sum(1 for item in left if item.kind == "partial-blob")
    return GcReport(
        dry_run=dry_run,
        cutoff=_when(before),
        blobs=count,
        blob_bytes=size,
        temp_files=temp_files,
        folders=len(left) - temp_files,
        freed_bytes=size + sum(item.bytes for item in left),
    )
