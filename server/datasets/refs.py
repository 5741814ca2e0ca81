"""Refs: branches (movable, maybe protected) and tags (fixed), created, listed and found by name."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.datasets.datasets import REF_NAME, SUGGEST_AMONG, check_name, did_you_mean, get_dataset
from server.datasets.history import HEAD, resolve_rev
from server.datasets.models import Branch, Commit, Dataset, Tag
from server.datasets.schemas import BranchRead
from server.errors import AlreadyExists, InvalidInput, NotFound


def get_branch(db: Session, ds: Dataset, name: str | None, *, lock: bool | str = False) -> Branch:
    """The branch called name (default: the dataset's default branch), or NotFound.

    lock=True holds the branch row exclusively until the transaction ends (PostgreSQL; SQLite
    transactions are serialized already), so its staged edits are read and changed by one
    writer at a time; lock="share" lets other sharers in but keeps exclusive lockers out.
    """
    name = name or ds.default_branch
    query = select(Branch).where(Branch.dataset_id == ds.id, Branch.name == name)
    if lock:
        query = query.with_for_update(read=lock == "share")
    branch = db.scalar(query)
    if branch is None:
        close = did_you_mean(
            name, db.scalars(select(Branch.name).where(Branch.dataset_id == ds.id).order_by(Branch.name).limit(SUGGEST_AMONG))
        )
        if close:
            raise NotFound(f"no branch '{name}' in dataset '{ds.name}'; {close}")
        raise NotFound(
            f"no branch '{name}' in dataset '{ds.name}' (list them with: s2 branch {ds.name}; create it with: s2 branch {ds.name} {name})"
        )
    return branch


def branch_of(db: Session, dataset: str, branch: str | None) -> tuple[str, bool]:
    """The branch's name and whether it is protected (the default branch always is, over the API)."""
    ds = get_dataset(db, dataset)
    br = get_branch(db, ds, branch)
    return br.name, br.protected or br.name == ds.default_branch


def _check_ref_name(kind: str, name: str) -> None:
    check_name(kind, name, REF_NAME)
    if name == HEAD:
        raise InvalidInput(f"invalid {kind} name 'HEAD': in a revision HEAD means the branch you work on (or the default branch)")


def _ref_taken(db: Session, ds: Dataset, name: str) -> bool:
    branch = db.scalar(select(Branch.id).where(Branch.dataset_id == ds.id, Branch.name == name))
    tag = db.scalar(select(Tag.id).where(Tag.dataset_id == ds.id, Tag.name == name))
    return branch is not None or tag is not None


def create_branch(db: Session, *, dataset: str, name: str, from_rev: str | None) -> BranchRead:
    """A new branch at from_rev (default: the default branch's head)."""
    ds = get_dataset(db, dataset)
    _check_ref_name("branch", name)
    if _ref_taken(db, ds, name):
        raise AlreadyExists(f"'{name}' already names a branch or tag in dataset '{dataset}'")
    start = resolve_rev(db, ds, from_rev or ds.default_branch)
    db.add(Branch(dataset_id=ds.id, name=name, head_pk=start.pk, protected=False))
    db.flush()
    return BranchRead(name=name, head=start.id, protected=False)


def list_branches(db: Session, *, dataset: str, after: str | None = None, limit: int | None = None) -> list[BranchRead]:
    """The dataset's branches and their heads, by name after the cursor."""
    ds = get_dataset(db, dataset)
    query = (
        select(Branch.name, Commit.id, Branch.protected)
        .join(Commit, Commit.pk == Branch.head_pk)
        .where(Branch.dataset_id == ds.id)
        .order_by(Branch.name)
    )
    if after is not None:
        query = query.where(Branch.name > after)
    if limit is not None:
        query = query.limit(limit)
    return [BranchRead(name=n, head=h, protected=p or n == ds.default_branch) for n, h, p in db.execute(query)]


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


def create_tag(db: Session, *, dataset: str, name: str, rev: str) -> str:
    """Tag rev with name; returns the tagged commit id. Tags never move."""
    ds = get_dataset(db, dataset)
    _check_ref_name("tag", name)
    if _ref_taken(db, ds, name):
        raise AlreadyExists(f"'{name}' already names a branch or tag in dataset '{dataset}'")
    commit = resolve_rev(db, ds, rev)
    db.add(Tag(dataset_id=ds.id, name=name, commit_pk=commit.pk))
    db.flush()
    return commit.id


def list_tags(db: Session, *, dataset: str, after: str | None = None, limit: int | None = None) -> list[tuple[str, str]]:
    """The dataset's tags as (name, commit id), by name after the cursor."""
    ds = get_dataset(db, dataset)
    query = select(Tag.name, Commit.id).join(Commit, Commit.pk == Tag.commit_pk).where(Tag.dataset_id == ds.id).order_by(Tag.name)
    if after is not None:
        query = query.where(Tag.name > after)
    if limit is not None:
        query = query.limit(limit)
    return [(n, c) for n, c in db.execute(query)]


def delete_branch(db: Session, *, dataset: str, branch: str) -> dict:
    """Delete a branch (its commits stay, reachable from other refs or by id; its staged edits, watch rule and pending merge go).

    The default branch and protected branches are refused, and so is a branch an open merge
    request or an unfinished import works on. Returns {"name", "head", "dropped_staged"}: the head it
    had, so `s2 branch NAME B --from HEAD_ID` brings it back.
    """
    from sqlalchemy import func

    from server.datasets.models import StagedEdit
    from server.datasets.pending import PendingMerge
    from server.imports.models import ImportJob
    from server.imports.service import _stale
    from server.merge_requests.models import MergeRequest
    from server.runs.models import WatchRule

    ds = get_dataset(db, dataset)
    br = get_branch(db, ds, branch, lock=True)
    if br.name == ds.default_branch:
        raise InvalidInput(f"branch '{br.name}' is the default branch of dataset '{dataset}': it cannot be deleted")
    if br.protected:
        raise InvalidInput(
            f"branch '{br.name}' of dataset '{dataset}' is protected: unprotect it first (s2 protect {dataset} {br.name} --off)"
        )
    request = db.scalar(
        select(MergeRequest.number)
        .where(MergeRequest.dataset_id == ds.id, MergeRequest.state == "open")
        .where((MergeRequest.source == br.name) | (MergeRequest.target == br.name))
        .order_by(MergeRequest.number)
        .limit(1)
    )
    if request is not None:
        raise InvalidInput(
            f"branch '{br.name}' of dataset '{dataset}' is used by open merge request !{request}: "
            f"merge or close it first (s2 mr close {dataset} {request})"
        )
    jobs = db.scalars(
        select(ImportJob).where(ImportJob.dataset_id == ds.id, ImportJob.branch == br.name, ImportJob.state.in_(("queued", "running")))
    )
    job = next((j for j in jobs if not _stale(j)), None)
    if job is not None:
        raise InvalidInput(f"branch '{br.name}' of dataset '{dataset}' is receiving import job {job.id}: wait for it to finish")
    staged = db.scalar(select(func.count()).select_from(StagedEdit).where(StagedEdit.branch_id == br.id)) or 0
    head = db.get(Commit, br.head_pk).id
    for rule in db.scalars(select(WatchRule).where(WatchRule.dataset_id == ds.id, WatchRule.branch == br.name)):
        db.delete(rule)
    for pending in db.scalars(select(PendingMerge).where(PendingMerge.dataset_id == ds.id, PendingMerge.target == br.name)):
        db.delete(pending)  # a conflicted merge into it, half resolved: part of the branch's state, as its staged edits are
    db.delete(br)
    db.flush()
    return {"name": branch, "head": head, "dropped_staged": staged}


def delete_tag(db: Session, *, dataset: str, tag: str) -> dict:
    """Delete a tag (the commit it named stays); returns {"name", "commit"}."""
    ds = get_dataset(db, dataset)
    found = db.scalar(select(Tag).where(Tag.dataset_id == ds.id, Tag.name == tag))
    if found is None:
        names = db.scalars(select(Tag.name).where(Tag.dataset_id == ds.id).order_by(Tag.name).limit(SUGGEST_AMONG))
        close = did_you_mean(tag, names)
        raise NotFound(f"no tag '{tag}' in dataset '{dataset}'" + (f"; {close}" if close else f" (list them with: s2 tag list {dataset})"))
    commit = db.get(Commit, found.commit_pk).id
    db.delete(found)
    db.flush()
    return {"name": tag, "commit": commit}
