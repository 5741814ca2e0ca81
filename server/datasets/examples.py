"""Reading examples one at a time or a page at a time, with what an editor needs to edit them."""

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.history import resolve_rev
from server.datasets.lookup import lookup
from server.datasets.models import Branch, StagedEdit
from server.datasets.rows import Row
from server.datasets.schemas import ExampleRead
from server.datasets.service import get_branch, get_dataset
from server.datasets.staging import example_version
from server.errors import NotFound


def example_read(row: Row, staged: StagedEdit | None = None) -> ExampleRead:
    """The public view of an example, with its staged edit (if any) and edit version."""
    return ExampleRead(
        key=row.key,
        input=row.input,
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
    import pyarrow.compute as pc

    from server.datasets.snapshot import iter_snapshot

    ds = get_dataset(db, dataset)
    rev = rev or ds.default_branch
    commit = resolve_rev(db, ds, rev)
    found: list[Row] = []
    for batch in iter_snapshot(db, blobs, commit.pk):
        keys = batch.column("key")
        if after is not None and len(keys) and keys[-1].as_py() <= after:
            continue  # the whole batch sorts before the cursor
        mask = pc.greater(keys, after) if after is not None else None
        if label is not None:
            by_label = pc.equal(batch.column("label"), label)
            mask = by_label if mask is None else pc.and_(mask, by_label)
        chosen = batch.filter(mask) if mask is not None else batch
        for rec in chosen.slice(0, limit - len(found)).to_pylist():
            found.append(Row(rec["key"], rec["input"], rec["label"], rec.get("split"), rec.get("meta")))
        if len(found) >= limit:
            break
    staged: dict[str, StagedEdit] = {}
    branch_row = db.scalar(select(Branch).where(Branch.dataset_id == ds.id, Branch.name == rev))
    if branch_row is not None and found:
        staged = {
            e.key: e
            for e in db.scalars(select(StagedEdit).where(StagedEdit.branch_id == branch_row.id, StagedEdit.key.in_([r.key for r in found])))
        }
    return [example_read(r, staged.get(r.key)) for r in found]


def branch_of(db: Session, dataset: str, branch: str | None) -> tuple[str, bool]:
    """The branch's name and whether it is protected (the default branch always is, over the API)."""
    ds = get_dataset(db, dataset)
    br = get_branch(db, ds, branch)
    return br.name, br.protected or br.name == ds.default_branch
