"""A merge in progress, like git's MERGE_HEAD: a conflicted merge's source, the head it met, and the resolutions so far.

A merge that conflicts records one per (dataset, target branch), replacing any older one; `resolve`
adds a resolution per key and completes the merge once every conflict has one, re-planned against
the branch's current head: where the branch moved since, a resolution whose key the branch changed
again is dropped and its conflict asked for anew, never silently applied over the new change.
"""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, String, Text, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from server.blobs import BlobStore
from server.datasets.datasets import get_dataset
from server.datasets.history import resolve_rev
from server.datasets.lookup import lookup_many
from server.datasets.merge import check_resolutions, conflict_json, merge, plan_merge
from server.datasets.models import Commit, Dataset, utcnow
from server.datasets.refs import get_branch
from server.db import Base
from server.errors import Conflict, InvalidInput, NotFound


class PendingMerge(Base):
    """The conflicted merge of source_commit into branch `target`, planned against target_head."""

    __tablename__ = "pending_merges"
    __table_args__ = (UniqueConstraint("dataset_id", "target", name="uq_pending_merges_target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(256))  # the revision as the user named it
    source_commit: Mapped[str] = mapped_column(String(64))
    target_head: Mapped[str] = mapped_column(String(64))
    # key -> {"take": "ours"|"theirs"} or {"label": LABEL}
    resolutions: Mapped[dict[str, dict[str, str]]] = mapped_column(JSON, default=dict)
    message: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def split_resolutions(resolutions: dict[str, dict[str, str]] | None) -> tuple[dict[str, str], dict[str, str]]:
    """(take, labels) as merge() wants them, from {key: {"take": side} | {"label": label}}."""
    take, labels = {}, {}
    for key, r in (resolutions or {}).items():
        if set(r) == {"take"}:
            take[key] = r["take"]
        elif set(r) == {"label"}:
            labels[key] = r["label"]
        else:
            raise InvalidInput(f"resolution of '{key}' must give one of take (ours or theirs) or label, not {sorted(r) or 'nothing'}")
    return take, labels


def merge_tracked(
    db: Session,
    blobs: BlobStore,
    *,
    dataset: str,
    source: str,
    into: str,
    author: str,
    message: str | None = None,
    strategy: str | None = None,
    resolutions: dict[str, dict[str, str]] | None = None,
):
    """merge(), and a success drops the pending merge of the same source into that branch (a conflict is raised as is)."""
    take, labels = split_resolutions(resolutions)
    how, head = merge(
        db, blobs, dataset=dataset, source=source, into=into, author=author, message=message, take=take, strategy=strategy, labels=labels
    )
    ds = get_dataset(db, dataset)
    found = _pending(db, ds, into)
    if found is not None and found.source_commit == resolve_rev(db, ds, source).id:
        db.delete(found)
    return how, head


def record_conflicted(
    db: Session,
    *,
    dataset: str,
    exc: Conflict,
    author: str,
    message: str | None = None,
    resolutions: dict[str, dict[str, str]] | None = None,
) -> PendingMerge | None:
    """Record (or replace) the pending merge a merge's Conflict describes; None for a conflict that is no merge's."""
    extra = exc.extra
    if "conflicts" not in extra or "source_commit" not in extra:
        return None
    ds = get_dataset(db, dataset)
    db.execute(delete(PendingMerge).where(PendingMerge.dataset_id == ds.id, PendingMerge.target == extra["into"]))
    made = PendingMerge(
        dataset_id=ds.id,
        target=extra["into"],
        source=extra["source"],
        source_commit=extra["source_commit"],
        target_head=extra["target_head"],
        resolutions=dict(resolutions or {}),
        message=message,
        author=author,
    )
    db.add(made)
    db.flush()
    return made


def _pending(db: Session, ds: Dataset, into: str | None, lock: bool = False) -> PendingMerge | None:
    q = select(PendingMerge).where(PendingMerge.dataset_id == ds.id)
    if into is not None:
        q = q.where(PendingMerge.target == into)
    if lock:
        q = q.with_for_update()
    found = list(db.scalars(q))
    if into is None and len(found) > 1:
        names = ", ".join(sorted(p.target for p in found))
        raise InvalidInput(f"dataset '{ds.name}' has merges in progress into several branches ({names}): say which with --into")
    return found[0] if found else None


def get_pending(db: Session, ds: Dataset, into: str | None, lock: bool = False) -> PendingMerge:
    found = _pending(db, ds, into, lock)
    if found is None:
        where = f" into '{into}'" if into else ""
        raise NotFound(f"no merge in progress{where} in dataset '{ds.name}': start one with s2 merge {ds.name} SRC --into BRANCH")
    return found


def _current(db: Session, blobs: BlobStore, ds: Dataset, p: PendingMerge):
    """(plan against the branch's current head, that head, whether it moved, resolutions still valid)."""
    ours = db.get(Commit, get_branch(db, ds, p.target).head_pk)
    theirs = resolve_rev(db, ds, p.source_commit)
    plan = plan_merge(db, blobs, ds, ours, theirs)
    moved = ours.id != p.target_head
    keep = dict(p.resolutions or {})
    if moved and keep:  # a resolution stays only where the branch did not touch its key since
        then = resolve_rev(db, ds, p.target_head)
        before, now = lookup_many(db, blobs, [then.pk, ours.pk], set(keep))
        keep = {k: r for k, r in keep.items() if before.get(k) == now.get(k)}
    open_keys = {c.key for c in plan.conflicts}
    keep = {k: r for k, r in keep.items() if k in open_keys}
    return plan, ours, moved, keep


def pending_json(db: Session, blobs: BlobStore, *, dataset: str, into: str | None) -> dict:
    """The merge in progress: its source, the head it met, and every current conflict with its resolution (or None)."""
    ds = get_dataset(db, dataset)
    p = get_pending(db, ds, into)
    plan, ours, moved, keep = _current(db, blobs, ds, p)
    return _read(ds, p, plan, ours, moved, keep)


def _read(ds: Dataset, p: PendingMerge, plan, ours: Commit, moved: bool, keep: dict) -> dict:
    conflicts = [{**conflict_json(c), "resolution": keep.get(c.key)} for c in plan.conflicts]
    return {
        "dataset": ds.name,
        "into": p.target,
        "source": p.source,
        "source_commit": p.source_commit,
        "target_head": ours.id,
        "target_moved": moved,
        "conflicts": conflicts,
        "unresolved": sum(1 for c in conflicts if c["resolution"] is None),
        "created_at": p.created_at,
    }


def resolve(
    db: Session,
    blobs: BlobStore,
    *,
    dataset: str,
    into: str | None,
    key: str,
    resolution: dict[str, str],
    author: str,
    source: str | None = None,
) -> dict:
    """Record a resolution for key; when every conflict has one, complete the merge.

    Answers {"state": "merged", "outcome", "head", "changes"} or {"state": "pending", ...pending_json}.
    """
    ds = get_dataset(db, dataset)
    p = get_pending(db, ds, into, lock=True)
    if source is not None and source not in (p.source, p.source_commit) and resolve_rev(db, ds, source).id != p.source_commit:
        raise InvalidInput(f"the merge in progress into '{p.target}' is of '{p.source}', not '{source}'")
    take, labels = split_resolutions({key: resolution})
    check_resolutions(ds, take=take, labels=labels)
    plan, ours, moved, keep = _current(db, blobs, ds, p)
    if plan.how != "merge" or not plan.conflicts:
        return _complete(db, blobs, ds, p, keep, author)
    if key not in {c.key for c in plan.conflicts}:
        shown = ", ".join(c.key for c in plan.conflicts[:5]) + (" ..." if len(plan.conflicts) > 5 else "")
        raise InvalidInput(f"example '{key}' is not in conflict in the merge of '{p.source}' into '{p.target}' (conflicts: {shown})")
    keep[key] = resolution
    p.resolutions, p.target_head = keep, ours.id
    if all(c.key in keep for c in plan.conflicts):
        return _complete(db, blobs, ds, p, keep, author)
    return {"state": "pending", **_read(ds, p, plan, ours, moved, keep)}


def _complete(db: Session, blobs: BlobStore, ds: Dataset, p: PendingMerge, keep: dict, author: str) -> dict:
    take, labels = split_resolutions(keep)
    how, head = merge(
        db,
        blobs,
        dataset=ds.name,
        source=p.source_commit,
        into=p.target,
        author=author,
        message=p.message or f"merge {p.source} into {p.target}",
        take=take,
        labels=labels,
    )
    db.delete(p)
    return {"state": "merged", "into": p.target, "outcome": how, "head": head.id, "changes": head.changes if how == "merge" else 0}


def abort(db: Session, *, dataset: str, into: str | None) -> str:
    """Drop the merge in progress (nothing was written to the branch); returns its target branch."""
    ds = get_dataset(db, dataset)
    p = get_pending(db, ds, into, lock=True)
    db.delete(p)
    return p.target
