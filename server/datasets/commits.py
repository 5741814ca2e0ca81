"""Writing commits: a row delta against the first parent, a hashed id, a compare-and-swap branch move."""

import hashlib
import json
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.config import get_settings
from server.datasets.models import Branch, Change, Commit, Dataset, DatasetInput
from server.datasets.rows import Row
from server.errors import BranchMoved, NothingToCommit

INSERT_CHUNK = 20_000  # rows per executemany: bounded memory on million-row imports


def effective_delta(updates: dict[str, Row | None], before: dict[str, Row]) -> dict[str, Row | None]:
    """The updates that change something: new content for a key, or removal of a key that exists."""
    delta: dict[str, Row | None] = {}
    for key, row in updates.items():
        old = before.get(key)
        if row is None:
            if old is not None:
                delta[key] = None
        elif not row.same_content(old):
            delta[key] = row
    return delta


def next_label_counts(counts: dict[str, int] | None, delta: dict[str, Row | None], before: dict[str, Row]) -> dict[str, int] | None:
    """The parent's label counts moved by the delta (None stays None: the parent's are not known yet)."""
    if counts is None:
        return None
    counts = dict(counts)
    for key, row in delta.items():
        old = before.get(key)
        if old is not None and old.label is not None:
            counts[old.label] -= 1
        if row is not None and row.label is not None:
            counts[row.label] = counts.get(row.label, 0) + 1
    return {label: n for label, n in sorted(counts.items()) if n}


def label_counts(db: Session, blobs: BlobStore, commit: Commit) -> dict[str, int]:
    """Examples per label in commit's snapshot; read from the snapshot once for commits older than the column."""
    if commit.label_counts is None:
        from server.datasets.snapshot import read_table

        labels = read_table(db, blobs, commit.pk).column("label").to_pylist()
        commit.label_counts = dict(sorted(Counter(label for label in labels if label is not None).items()))
    return commit.label_counts


def delta_digest(delta: dict[str, Row | None]) -> str:
    """A digest of a delta's content (key order does not matter): part of the commit id."""
    digest = hashlib.sha256()
    for key in sorted(delta):
        row = delta[key]
        fields = ["-"] if row is None else ["+", row.input, row.label or "", row.split or "", row.meta or ""]
        digest.update("\0".join([key, *fields]).encode() + b"\n")
    return digest.hexdigest()


def commit_id_of(dataset: str, parents: list[str], author: str, message: str, when: datetime, delta_digest: str) -> str:
    """A commit's id: the sha256 of its content and its parents, as git does."""
    payload = json.dumps(
        {"dataset": dataset, "parents": parents, "author": author, "message": message, "time": when.isoformat(), "delta": delta_digest},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def write_commit(
    db: Session,
    *,
    dataset: Dataset,
    branch: Branch,
    parent: Commit,
    delta: dict[str, Row | None],
    before: dict[str, Row],
    message: str,
    author: str,
    merge_parent: Commit | None = None,
    when: datetime | None = None,
) -> Commit:
    """Record delta (new state per changed key, None = removed) on top of parent and move branch to it.

    `before` holds the parent's rows for the delta's keys. The branch moves only if its head is
    still `parent` (compare-and-swap); otherwise BranchMoved is raised and nothing is kept. `when`
    is the commit time (default: now); like git's committer date, a given one makes the id
    reproducible from the content alone.
    """
    if not delta and merge_parent is None:
        raise NothingToCommit(f"nothing to commit on branch '{branch.name}' of dataset '{dataset.name}': no example would change")
    added = sum(1 for k, row in delta.items() if row is not None and k not in before)
    removed = sum(1 for k, row in delta.items() if row is None and k in before)
    parents = [parent] + ([merge_parent] if merge_parent is not None else [])
    when = when or datetime.now(UTC)
    commit = Commit(
        id=commit_id_of(dataset.name, [p.id for p in parents], author, message, when, delta_digest(delta)),
        dataset_id=dataset.id,
        parent_ids=[p.id for p in parents],
        first_parent_pk=parent.pk,
        generation=1 + max(p.generation for p in parents),
        author=author,
        message=message,
        created_at=when,
        change_count=len(delta),
        row_count=parent.row_count + added - removed,
        checkpoint_blob=None,
        chain_rows=(0 if parent.checkpoint_blob else parent.chain_rows) + len(delta),
        chain_length=(0 if parent.checkpoint_blob else parent.chain_length) + 1,
        label_counts=next_label_counts(parent.label_counts, delta, before),
    )
    db.add(commit)
    db.flush()
    rows = [
        {
            "commit_pk": commit.pk,
            "key": key,
            "dataset_id": dataset.id,
            "removed": row is None,
            "input": row and row.input,
            "label": row and row.label,
            "split": row and row.split,
            "meta": row and row.meta,
        }
        for key, row in delta.items()
    ]
    for start in range(0, len(rows), INSERT_CHUNK):
        db.execute(insert(Change), rows[start : start + INSERT_CHUNK])
    record_inputs(
        db,
        dataset.id,
        {row.input for key, row in delta.items() if row is not None and (key not in before or before[key].input != row.input)},
    )
    move_branch(db, branch, expected_pk=parent.pk, new_pk=commit.pk)
    return commit


def record_inputs(db: Session, dataset_id: int, blob_ids: set[str]) -> None:
    """Note blob_ids as inputs of the dataset (those already noted are skipped, also when a concurrent commit races)."""
    if not blob_ids:
        return
    if db.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    ordered = sorted(blob_ids)  # one lock order for concurrent writers
    for start in range(0, len(ordered), INSERT_CHUNK):
        chunk = [{"dataset_id": dataset_id, "blob_id": b} for b in ordered[start : start + INSERT_CHUNK]]
        db.execute(upsert(DatasetInput).on_conflict_do_nothing(), chunk)


def move_branch(db: Session, branch: Branch, *, expected_pk: int, new_pk: int) -> None:
    """Point branch at new_pk if it still points at expected_pk; else raise BranchMoved."""
    moved = db.execute(
        update(Branch)
        .where(Branch.id == branch.id, Branch.head_pk == expected_pk)
        .values(head_pk=new_pk)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        raise BranchMoved(f"branch '{branch.name}' moved while this change was being made")
    branch.head_pk = new_pk
    from server.runs.service import on_branch_moved  # every new head of a watched branch is trained

    on_branch_moved(db, branch.dataset_id, branch.name, db.get(Commit, new_pk).id)


def needs_checkpoint(commit: Commit) -> bool:
    """Whether the deltas since the last checkpoint have grown enough to write a new one."""
    settings = get_settings()
    if commit.checkpoint_blob is not None or commit.chain_rows == 0:
        return False
    limit = max(settings.checkpoint_min_rows, settings.checkpoint_delta_fraction * commit.row_count)
    return commit.chain_rows > limit or commit.chain_length > settings.checkpoint_max_chain


def write_commit_checkpoint(db: Session, blobs: BlobStore, commit: Commit) -> None:
    """Store the commit's full snapshot as a Parquet checkpoint so later reads start from it."""
    from server.datasets.snapshot import iter_snapshot, write_checkpoint

    blob_id, rows = write_checkpoint(blobs, iter_snapshot(db, blobs, commit.pk))
    if rows != commit.row_count:  # the deltas and the row count disagree: never store such a checkpoint
        raise RuntimeError(f"snapshot of commit {commit.id} has {rows} rows but the commit records {commit.row_count}")
    commit.checkpoint_blob = blob_id
    commit.chain_rows = 0
    commit.chain_length = 0
    db.flush()


def upsert_rows(db: Session, blobs: BlobStore, *, dataset: Dataset, branch: Branch, rows: list[Row], message: str, author: str) -> Commit:
    """Commit rows on branch as an upsert by key: new keys are added, changed ones replaced."""
    from server.datasets.lookup import lookup

    parent = db.get(Commit, branch.head_pk)
    updates: dict[str, Row | None] = {row.key: row for row in rows}
    before = lookup(db, blobs, parent.pk, updates) if parent.row_count else {}
    delta = effective_delta(updates, before)
    if not delta:
        raise NothingToCommit(f"the import matches branch '{branch.name}' of dataset '{dataset.name}' already; nothing to commit")
    return write_commit(db, dataset=dataset, branch=branch, parent=parent, delta=delta, before=before, message=message, author=author)


def compact(db: Session, blobs: BlobStore, commit_id: str) -> bool:
    """Write a checkpoint at commit_id if its delta chain has grown past the limits; True if written."""
    from sqlalchemy import select

    commit = db.scalar(select(Commit).where(Commit.id == commit_id))
    if commit is None or not needs_checkpoint(commit):
        return False
    write_commit_checkpoint(db, blobs, commit)
    return True


def compact_after(blobs: BlobStore, commit_id: str) -> None:
    """Checkpoint a new commit if its delta chain grew long: its own transaction, safe to lose."""
    from server.db import run_in_transaction

    run_in_transaction(lambda db: compact(db, blobs, commit_id))
