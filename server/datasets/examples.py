"""Reading examples one at a time or a page at a time, with what an editor needs to edit them."""

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.datasets import get_dataset
from server.datasets.history import resolve_rev
from server.datasets.lookup import lookup
from server.datasets.models import Branch, StagedEdit
from server.datasets.rows import Row
from server.datasets.schemas import ExampleRead
from server.datasets.staging import example_version
from server.errors import NotFound


def example_read(row: Row, staged: StagedEdit | None = None) -> ExampleRead:
    """The public view of an example, with its staged edit (if any) and edit version."""
    return ExampleRead(
        key=row.key,
        input=row.input,
        inline=row.inline,
        label=row.label,
        split=row.split,
        meta=json.loads(row.meta) if row.meta else {},
        staged_label=staged.label if staged else None,
        staged_remove=bool(staged and staged.remove),
        staged_by=staged.author if staged else None,
        version=example_version(row, staged),
    )


def get_example(db: Session, blobs: BlobStore, *, dataset: str, key: str, rev: str | None) -> ExampleRead:
    """One example at rev (default: the default branch); on a branch, its staged edit and version too."""
    ds = get_dataset(db, dataset)
    rev = rev or ds.default_branch
    branch = db.scalar(select(Branch).where(Branch.dataset_id == ds.id, Branch.name == rev))
    commit_pk = branch.head_pk if branch is not None else resolve_rev(db, ds, rev).pk
    row = lookup(db, blobs, commit_pk, [key]).get(key)
    if row is None:
        raise NotFound(f"no example '{key}' at '{rev}' of dataset '{dataset}'")
    staged = None
    if branch is not None:
        staged = db.scalar(select(StagedEdit).where(StagedEdit.branch_id == branch.id, StagedEdit.key == key))
    return example_read(row, staged)


def list_examples(
    db: Session, blobs: BlobStore, *, dataset: str, rev: str | None, after: str | None, limit: int, label: str | None = None
) -> list[ExampleRead]:
    """Up to limit examples at rev with keys after `after`, in key order (optionally of one label)."""
    from server.datasets.snapshot import page_rows

    ds = get_dataset(db, dataset)
    rev = rev or ds.default_branch
    commit = resolve_rev(db, ds, rev)
    found = page_rows(db, blobs, commit.pk, after=after, limit=limit, label=label)
    staged: dict[str, StagedEdit] = {}
    branch_row = db.scalar(select(Branch).where(Branch.dataset_id == ds.id, Branch.name == rev))
    if branch_row is not None and found:
        staged = {
            e.key: e
            for e in db.scalars(select(StagedEdit).where(StagedEdit.branch_id == branch_row.id, StagedEdit.key.in_([r.key for r in found])))
        }
    return [example_read(r, staged.get(r.key)) for r in found]
