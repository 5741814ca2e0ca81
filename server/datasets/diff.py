"""Diff and three-way merge by key, computed from the deltas that separate two revisions."""

from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.commits import effective_delta, move_branch, write_commit
from server.datasets.history import CommitGraph, resolve_rev
from server.datasets.lookup import lookup_many, touched_keys
from server.datasets.models import Commit, Dataset
from server.datasets.rows import Row
from server.datasets.schemas import CommitRead, DiffRead, Relabel
from server.datasets.service import commit_read, get_branch, get_dataset
from server.errors import Conflict


def diff_rows(before: dict[str, Row], after: dict[str, Row], keys: set[str]) -> DiffRead:
    """Classify each key's change: added, removed, relabeled, modified (input, split or metadata)."""
    added, removed, relabeled, modified = [], [], [], []
    for key in sorted(keys):
        a, b = before.get(key), after.get(key)
        if a is None and b is None:
            continue
        if a is None:
            added.append(key)
        elif b is None:
            removed.append(key)
        else:
            if a.label != b.label:
                relabeled.append(Relabel(key=key, from_=a.label, to=b.label))
            if (a.input, a.split, a.meta) != (b.input, b.split, b.meta):
                modified.append(key)
    return DiffRead(added=added, removed=removed, relabeled=relabeled, modified=modified)


def _separating_keys(db: Session, graph: CommitGraph, a: int, b: int) -> set[str]:
    """Keys changed by any commit on either side since the merge base: a superset of what differs."""
    base = graph.merge_base(a, b)
    return touched_keys(db, graph.only_in(a, base) | graph.only_in(b, base))


def diff_commits(db: Session, blobs: BlobStore, ds: Dataset, a: Commit, b: Commit) -> DiffRead:
    """What changes from commit a to commit b."""
    if a.pk == b.pk:
        return DiffRead(added=[], removed=[], relabeled=[], modified=[])
    keys = _separating_keys(db, CommitGraph.load(db, ds.id), a.pk, b.pk)
    before, after = lookup_many(db, blobs, [a.pk, b.pk], keys)
    return diff_rows(before, after, keys)


def diff(db: Session, blobs: BlobStore, *, dataset: str, rev_a: str, rev_b: str) -> DiffRead:
    """What changes from revision rev_a to revision rev_b."""
    ds = get_dataset(db, dataset)
    return diff_commits(db, blobs, ds, resolve_rev(db, ds, rev_a), resolve_rev(db, ds, rev_b))


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
    graph = CommitGraph.load(db, ds.id)
    if theirs.pk in graph.ancestors(ours.pk):
        return "up-to-date", commit_read(ours)
    if ours.pk in graph.ancestors(theirs.pk):
        move_branch(db, dst_branch, expected_pk=ours.pk, new_pk=theirs.pk)
        return "fast-forward", commit_read(theirs)
    base = graph.merge_base(ours.pk, theirs.pk)
    their_keys = touched_keys(db, graph.only_in(theirs.pk, base))
    our_keys = touched_keys(db, graph.only_in(ours.pk, base))
    at_base, at_theirs, at_ours = lookup_many(db, blobs, [base, theirs.pk, ours.pk], their_keys)
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
    return "merge", commit_read(commit)


def _show(row: Row | None) -> str:
    if row is None:
        return "absent"
    return f"label={row.label!r}" + (f" input={row.input[:8]}" if row.input else "")
