"""Compaction: a new checkpoint when a commit's delta chain grows long, written off the request path.

A snapshot is read as its nearest checkpoint plus the deltas since; when those deltas pass a
fraction of the table (or the chain passes S2_CHECKPOINT_MAX_CHAIN commits) the commit's full
snapshot is written as a new checkpoint. That costs O(table), so a server does it on a
background thread after answering; losing it (a crash) only means the next commit tries again.
"""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select, update

from server.blobs import BlobStore
from server.config import get_settings
from server.datasets.models import Commit

log = logging.getLogger(__name__)
_background: list[ThreadPoolExecutor] = []
_pending: set[str] = set()
_lock = threading.Lock()


def needs_checkpoint(commit: Commit) -> bool:
    """Whether the deltas since the last checkpoint have grown enough to write a new one."""
    settings = get_settings()
    if commit.checkpoint_blob is not None or commit.chain_rows == 0:
        return False
    limit = max(settings.checkpoint_min_rows, settings.checkpoint_delta_fraction * commit.row_count)
    return commit.chain_rows > limit or commit.chain_length > settings.checkpoint_max_chain


def compact(blobs: BlobStore, commit_id: str) -> bool:
    """Write a checkpoint at commit_id if its delta chain has grown past the limits; True if written.

    The snapshot is read and written out in a read-only transaction (on SQLite it holds no writer
    up for the minutes a large table takes); only recording the checkpoint is a write.
    """
    from server.datasets.checkpoints import write_checkpoint
    from server.datasets.snapshot import iter_snapshot
    from server.db import read_scope, run_in_transaction

    with read_scope() as db:
        commit = db.scalar(select(Commit).where(Commit.id == commit_id))
        if commit is None or not needs_checkpoint(commit):
            return False
        blob_id, rows = write_checkpoint(blobs, iter_snapshot(db, blobs, commit.pk))
        if rows != commit.row_count:  # the deltas and the row count disagree: never record such a checkpoint
            raise RuntimeError(f"snapshot of commit {commit.id} has {rows} rows but the commit records {commit.row_count}")
        pk = commit.pk
    run_in_transaction(
        lambda db: db.execute(
            update(Commit)
            .where(Commit.pk == pk, Commit.checkpoint_blob.is_(None))
            .values(checkpoint_blob=blob_id, chain_rows=0, chain_length=0)
            .execution_options(synchronize_session=False)
        )
    )
    return True


def compact_now(blobs: BlobStore, commit_id: str) -> None:
    """compact(), its failure logged rather than raised: the commit stands, and the next one on the line tries again."""
    try:
        compact(blobs, commit_id)
    except Exception:
        log.exception("compaction after commit %s failed", commit_id)
    finally:
        with _lock:
            _pending.discard(commit_id)


def run_in_background() -> None:
    """From now on, compact_after hands compaction to a background thread (servers call this at start)."""
    with _lock:
        if not _background:
            _background.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="s2-compact"))


def compact_after(blobs: BlobStore, commit_id: str) -> None:
    """Compact after a commit: on the background thread in a server, else now (the CLI, a worker, a job)."""
    with _lock:
        if commit_id in _pending:
            return
        _pending.add(commit_id)
        executor = _background[0] if _background else None
    if executor is None:
        compact_now(blobs, commit_id)
    else:
        executor.submit(compact_now, blobs, commit_id)
