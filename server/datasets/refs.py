"""Ref operations beyond create and list: protecting branches, listing tags."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.datasets.models import Commit, Tag
from server.datasets.schemas import BranchRead
from server.datasets.service import get_branch, get_dataset
from server.errors import InvalidInput


def set_protected(db: Session, *, dataset: str, branch: str, protected: bool) -> BranchRead:
    """Mark a branch protected (it then changes only by merge or import) or not."""
    ds = get_dataset(db, dataset)
    br = get_branch(db, ds, branch, lock=True)
    if not protected and br.name == ds.default_branch:
        raise InvalidInput(
            f"branch '{br.name}' is the default branch of dataset '{dataset}': it is always protected (it changes only by merge or import)"
        )
    br.protected = protected
    db.flush()
    return BranchRead(name=br.name, head=db.get(Commit, br.head_pk).id, protected=protected)


def list_tags(db: Session, *, dataset: str) -> list[tuple[str, str]]:
    """The dataset's tags as (name, commit id), by name."""
    ds = get_dataset(db, dataset)
    rows = db.execute(
        select(Tag.name, Commit.id).join(Commit, Commit.pk == Tag.commit_pk).where(Tag.dataset_id == ds.id).order_by(Tag.name)
    )
    return [(n, c) for n, c in rows]
