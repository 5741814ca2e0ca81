"""Writing commits: a row delta against the first parent, a hashed id, a compare-and-swap branch move.

A commit is written as a stream of key-sorted delta batches (CommitWriter), so an import of
millions of rows never holds its delta in memory; a small delta goes through write_commit.
"""

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.models import Branch, Change, Commit, CommitParent, Dataset, DatasetInput
from server.datasets.rows import Row
from server.errors import BranchMoved, NothingToCommit
from server.events import HeadMoved, publish

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


def label_counts(db: Session, blobs: BlobStore, commit: Commit) -> dict[str, int]:
    """Examples per label in commit's snapshot; read from the snapshot once for commits older than the column."""
    if commit.label_counts is None:
        from server.datasets.snapshot import iter_snapshot

        counts: Counter = Counter()
        for batch in iter_snapshot(db, blobs, commit.pk):
            counts.update(label for label in batch.column("label").to_pylist() if label is not None)
        commit.label_counts = dict(sorted(counts.items()))
    return commit.label_counts


def commit_id_of(dataset: str, parents: list[str], author: str, message: str, when: datetime, delta_digest: str) -> str:
    """A commit's id: the sha256 of its content and its parents, as git does."""
    payload = json.dumps(
        {"dataset": dataset, "parents": parents, "author": author, "message": message, "time": when.isoformat(), "delta": delta_digest},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _digest_line(key: str, row: Row | None) -> bytes:
    fields = ["-"] if row is None else ["+", row.input, row.label or "", row.split or "", row.meta or ""]
    return "\0".join([key, *fields]).encode() + b"\n"


def delta_digest(delta: dict[str, Row | None]) -> str:
    """A digest of a delta's content in key order: part of the commit id (CommitWriter computes it as rows stream)."""
    digest = hashlib.sha256()
    for key in sorted(delta):
        digest.update(_digest_line(key, delta[key]))
    return digest.hexdigest()


class CommitWriter:
    """One commit being written: delta batches in key order, then finish() names it and moves the branch.

    The commit row exists (under a placeholder id, invisible outside the transaction) from the
    start, so delta rows are inserted as they come; finish() computes the real id from the
    delta's digest, updates the counts and compare-and-swaps the branch from `parent` to it.
    """

    def __init__(
        self,
        db: Session,
        *,
        dataset: Dataset,
        branch: Branch,
        parent: Commit,
        message: str,
        author: str,
        merge_parent: Commit | None = None,
        when: datetime | None = None,
    ):
        self.db, self.dataset, self.branch, self.parent = db, dataset, branch, parent
        self.parents = [parent] + ([merge_parent] if merge_parent is not None else [])
        self.message, self.author, self.when = message, author, when or datetime.now(UTC)
        self.digest = hashlib.sha256()
        self.changes = self.added = self.removed = 0
        self.counts = dict(parent.label_counts) if parent.label_counts is not None else None
        self.last_key: str | None = None
        self.sources: dict[str, str] = {}  # key -> where its edit came from, when suggested (changes.source)
        self.commit = Commit(
            id=f"pending-{uuid.uuid4().hex}",
            dataset_id=dataset.id,
            first_parent_pk=parent.pk,
            generation=1 + max(p.generation for p in self.parents),
            author=author,
            message=message,
            created_at=self.when,
            change_count=0,
            row_count=parent.row_count,
            checkpoint_blob=None,
            chain_rows=0,
            chain_length=0,
        )
        db.add(self.commit)
        db.flush()
        db.execute(
            insert(CommitParent), [{"commit_pk": self.commit.pk, "position": i, "parent_pk": p.pk} for i, p in enumerate(self.parents)]
        )

    def add(self, items: Iterable[tuple[str, Row | None, Row | None, str | None]]) -> None:
        """Record (key, new row or None for removed, the parent's row or None, the edit's author) in key order."""
        rows, inputs = [], set()
        for key, row, before, edit_author in items:
            if self.last_key is not None and key <= self.last_key:
                raise ValueError(f"delta keys must come in increasing order: {key!r} after {self.last_key!r}")
            self.last_key = key
            self.digest.update(_digest_line(key, row))
            self.changes += 1
            self.added += row is not None and before is None
            self.removed += row is None and before is not None
            if self.counts is not None:
                if before is not None and before.label is not None:
                    self.counts[before.label] -= 1
                if row is not None and row.label is not None:
                    self.counts[row.label] = self.counts.get(row.label, 0) + 1
            if row is not None and row.inline is None and (before is None or before.input != row.input or before.inline is not None):
                inputs.add(row.input)  # a blob input (new, or stored inline until now): the dataset may serve it
            rows.append(
                {
                    "commit_pk": self.commit.pk,
                    "key": key,
                    "dataset_id": self.dataset.id,
                    "removed": row is None,
                    "input": row and row.input,
                    "label": row and row.label,
                    "split": row and row.split,
                    "meta": row and row.meta,
                    "inline": row and row.inline,
                    "author": edit_author if edit_author != self.author else None,
                    "source": self.sources.get(key),
                }
            )
            if len(rows) >= INSERT_CHUNK:
                self.db.execute(insert(Change), rows)
                rows = []
        if rows:
            self.db.execute(insert(Change), rows)
        record_inputs(self.db, self.dataset.id, inputs)

    def finish(self) -> Commit:
        """Name the commit by its content and move the branch to it (BranchMoved if it moved meanwhile)."""
        if not self.changes and len(self.parents) == 1:
            raise NothingToCommit(
                f"nothing to commit on branch '{self.branch.name}' of dataset '{self.dataset.name}': no example would change"
            )
        c, parent = self.commit, self.parent
        c.id = commit_id_of(self.dataset.name, [p.id for p in self.parents], self.author, self.message, self.when, self.digest.hexdigest())
        c.change_count = self.changes
        c.row_count = parent.row_count + self.added - self.removed
        c.chain_rows = (0 if parent.checkpoint_blob else parent.chain_rows) + self.changes
        c.chain_length = (0 if parent.checkpoint_blob else parent.chain_length) + 1
        c.label_counts = {label: n for label, n in sorted(self.counts.items()) if n} if self.counts is not None else None
        self.db.flush()
        move_branch(self.db, self.branch, expected_pk=parent.pk, new_pk=c.pk)
        return c


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
    authors: dict[str, str] | None = None,
    sources: dict[str, str] | None = None,
) -> Commit:
    """Record delta (new state per changed key, None = removed) on top of parent and move branch to it.

    `before` holds the parent's rows for the delta's keys; `authors` who made each edit (default:
    the committer), `sources` where a suggested edit came from. The branch moves only if its head is still `parent` (compare-and-swap);
    otherwise BranchMoved is raised and nothing is kept. `when` is the commit time (default:
    now); like git's committer date, a given one makes the id reproducible from the content alone.
    """
    if not delta and merge_parent is None:
        raise NothingToCommit(f"nothing to commit on branch '{branch.name}' of dataset '{dataset.name}': no example would change")
    writer = CommitWriter(
        db, dataset=dataset, branch=branch, parent=parent, message=message, author=author, merge_parent=merge_parent, when=when
    )
    writer.sources = {key: source for key, source in (sources or {}).items() if key in delta}
    writer.add((key, delta[key], before.get(key), (authors or {}).get(key)) for key in sorted(delta))
    return writer.finish()


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
    """Point branch at new_pk if it still points at expected_pk; else raise BranchMoved. Publishes HeadMoved."""
    moved = db.execute(
        update(Branch)
        .where(Branch.id == branch.id, Branch.head_pk == expected_pk)
        .values(head_pk=new_pk)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        raise BranchMoved(f"branch '{branch.name}' moved while this change was being made")
    branch.head_pk = new_pk
    publish(db, HeadMoved(dataset_id=branch.dataset_id, branch=branch.name, commit_id=db.get(Commit, new_pk).id))
