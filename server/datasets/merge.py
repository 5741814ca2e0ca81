"""Three-way merge by key of one revision into a branch, from the deltas since their merge base."""

from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.commits import effective_delta, move_branch, write_commit
from server.datasets.datasets import get_dataset
from server.datasets.graph import commits_since_base, is_ancestor, merge_base
from server.datasets.history import commit_read, resolve_rev
from server.datasets.lookup import lookup_many, touched_keys
from server.datasets.models import Commit
from server.datasets.refs import get_branch
from server.datasets.rows import Row
from server.datasets.schemas import CommitRead
from server.errors import Conflict


def merge(
    db: Session, blobs: BlobStore, *, dataset: str, source: str, into: str, author: str, message: str | None = None
) -> tuple[str, CommitRead]:
    """Merge revision `source` into branch `into`, three-way by key; returns (how, resulting head).

    how is "up-to-date", "fast-forward" or "merge". Keys both sides changed differently are
    conflicts: all are listed in the raised Conflict and nothing is written.
    """
    ds = get_dataset(db, dataset)
    dst_branch = get_branch(db, ds, into)
    ours = db.get(Commit, dst_branch.head_pk)
    theirs = resolve_rev(db, ds, source)
    if is_ancestor(db, theirs, ours):
        return "up-to-date", commit_read(db, ours)
    if is_ancestor(db, ours, theirs):
        move_branch(db, dst_branch, expected_pk=ours.pk, new_pk=theirs.pk)
        return "fast-forward", commit_read(db, theirs)
    base = merge_base(db, ours, theirs)
    our_commits, their_commits = commits_since_base(db, ours, theirs, base)
    their_keys = touched_keys(db, their_commits)
    our_keys = touched_keys(db, our_commits)
    at_base, at_theirs, at_ours = lookup_many(db, blobs, [base, theirs.pk, ours.pk], their_keys)  # every commit shares the root
    updates: dict[str, Row | None] = {}
    conflicts: list[str] = []
    for key in sorted(their_keys):
        b, t, o = at_base.get(key), at_theirs.get(key), at_ours.get(key)
        if t == b or t == o:
            continue  # they changed nothing net, or both sides agree
        if key in our_keys and o != b:
            conflicts.append(f"{key} (base {_show(b)}, {dst_branch.name} {_show(o)}, {source} {_show(t)})")
            continue
        updates[key] = t
    if conflicts:
        shown = "; ".join(conflicts[:5]) + (f"; and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
        raise Conflict(f"merge of '{source}' into '{dst_branch.name}' conflicts on {len(conflicts)} example(s): {shown}")
    delta = effective_delta(updates, at_ours)
    commit = write_commit(
        db,
        dataset=ds,
        branch=dst_branch,
        parent=ours,
        delta=delta,
        before=at_ours,
        message=message or f"merge {source} into {dst_branch.name}",
        author=author,
        merge_parent=theirs,
    )
    return "merge", commit_read(db, commit)


def _show(row: Row | None) -> str:
    if row is None:
        return "absent"
    return f"label={row.label!r}" + (f" input={row.input[:8]}" if row.input else "")
