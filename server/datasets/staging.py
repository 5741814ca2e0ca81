"""Staged edits (a branch's index) and committing them atomically."""
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.commits import effective_delta, write_commit
from server.datasets.models import Commit, StagedEdit, utcnow
from server.datasets.rows import Row
from server.datasets.schemas import CommitRead, StagedRead
from server.datasets.service import commit_read, get_branch, get_dataset
from server.datasets.lookup import lookup
from server.errors import Conflict, InvalidInput, NotFound, NothingToCommit


def check_label(labels: list[str], label: str | None, where: str) -> None:
    """Refuse a label outside the dataset's label set, naming where it came from."""
    if label is not None and label not in labels:
        raise InvalidInput(f"{where}: label {label!r} is not in the label set ({', '.join(labels)})")


def stage_edits(
    db: Session, blobs: BlobStore, *, dataset: str, branch: str | None, edits: list[tuple[str, str | None, bool]],
    author: str, expected_versions: dict[str, int] | None = None,
) -> list[StagedRead]:
    """Stage (key, label, remove) edits on a branch; every key must exist there, every label be known.

    expected_versions maps a key to the staged version the editor saw (0: none staged);
    a different current version is a Conflict, never a silent overwrite.
    """
    ds = get_dataset(db, dataset)
    br = get_branch(db, ds, branch, lock=True)
    seen: dict[str, int] = {}
    for i, (key, label, remove) in enumerate(edits, 1):
        if key in seen:
            raise InvalidInput(f"edit {i}: key '{key}' is edited twice (first at edit {seen[key]})")
        seen[key] = i
        if not remove:
            check_label(ds.labels, label, f"edit {i} (key '{key}')")
    existing = lookup(db, blobs, br.head_pk, seen)
    missing = [key for key in seen if key not in existing]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise NotFound(f"no example '{missing[0]}'{more} on branch '{br.name}' of dataset '{dataset}'")
    staged = {e.key: e for e in db.scalars(select(StagedEdit).where(StagedEdit.branch_id == br.id)) if e.key in seen}
    for key, version in (expected_versions or {}).items():
        current = staged[key].version if key in staged else 0
        if current != version:
            raise Conflict(f"example '{key}' was edited by {staged[key].author} since you loaded it (version {current}, you saw {version}); its staged label is {staged[key].label!r}")
    result, fresh = [], []
    for key, label, remove in edits:
        label = None if remove else label
        edit = staged.get(key)
        if edit is None:
            fresh.append({"branch_id": br.id, "key": key, "remove": remove, "label": label, "author": author,
                          "version": 1, "updated_at": utcnow()})
            version = 1
        else:
            edit.remove, edit.label, edit.author, edit.version = remove, label, author, edit.version + 1
            edit.updated_at = utcnow()
            version = edit.version
        result.append(StagedRead(key=key, remove=remove, label=label, author=author, version=version))
    if fresh:
        db.execute(insert(StagedEdit), fresh)
    db.flush()
    return result


def list_staged(db: Session, *, dataset: str, branch: str | None) -> list[StagedRead]:
    """The branch's uncommitted edits, by key."""
    br = get_branch(db, get_dataset(db, dataset), branch)
    edits = db.scalars(select(StagedEdit).where(StagedEdit.branch_id == br.id).order_by(StagedEdit.key))
    return [StagedRead(key=e.key, remove=e.remove, label=e.label, author=e.author, version=e.version) for e in edits]


def unstage(db: Session, *, dataset: str, branch: str | None, keys: list[str] | None) -> int:
    """Drop staged edits (all of them when keys is None); returns how many were dropped."""
    br = get_branch(db, get_dataset(db, dataset), branch, lock=True)
    query = delete(StagedEdit).where(StagedEdit.branch_id == br.id)
    if keys is not None:
        query = query.where(StagedEdit.key.in_(keys))
    return db.execute(query.execution_options(synchronize_session=False)).rowcount


def commit_staged(db: Session, blobs: BlobStore, *, dataset: str, branch: str | None, message: str, author: str) -> CommitRead | None:
    """Turn the branch's staged edits into one commit and clear them, in one transaction.

    Returns None (edits cleared, no commit) when every staged edit matches the head already.
    """
    ds = get_dataset(db, dataset)
    br = get_branch(db, ds, branch, lock=True)
    edits = list(db.scalars(select(StagedEdit).where(StagedEdit.branch_id == br.id)))
    if not edits:
        raise NothingToCommit(f"nothing staged on branch '{br.name}' of dataset '{dataset}' (stage edits with: s2 label {dataset} KEY LABEL)")
    parent = db.get(Commit, br.head_pk)
    before = lookup(db, blobs, parent.pk, [e.key for e in edits])
    gone = [e.key for e in edits if e.key not in before]
    if gone:
        raise Conflict(f"staged example '{gone[0]}' no longer exists on branch '{br.name}'; drop the edit with: s2 unstage {dataset} {gone[0]}")
    updates: dict[str, Row | None] = {
        e.key: None if e.remove else before[e.key]._replace(label=e.label) for e in edits
    }
    delta = effective_delta(updates, before)
    db.execute(delete(StagedEdit).where(StagedEdit.branch_id == br.id).execution_options(synchronize_session=False))
    if not delta:  # edits that change nothing are dropped (kept, they could undo a later change)
        return None
    commit = write_commit(db, dataset=ds, branch=br, parent=parent, delta=delta, before=before, message=message, author=author)
    return commit_read(commit)
