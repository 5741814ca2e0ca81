"""Three-way merge by key of one revision into a branch, from the deltas since their merge base."""

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.commits import effective_delta, move_branch, write_commit
from server.datasets.datasets import get_dataset
from server.datasets.graph import commits_since_base, is_ancestor, merge_bases
from server.datasets.history import commit_read, resolve_rev
from server.datasets.lookup import lookup_many, touched_keys
from server.datasets.models import Commit, Dataset
from server.datasets.refs import get_branch
from server.datasets.rows import Row
from server.datasets.schemas import CommitRead
from server.errors import Conflict, InvalidInput


@dataclass
class MergeConflict:
    """A key both sides changed differently since their merge base: its row at the base and on each side (None: absent)."""

    key: str
    base: Row | None
    unresolved_base: bool  # the merge bases themselves disagree on it (after a criss-cross merge)
    ours: Row | None  # the target branch's
    theirs: Row | None  # the source revision's


@dataclass
class MergePlan:
    """What merging a revision into a branch would do: how, and for a real merge its updates and conflicts."""

    how: str  # up-to-date, fast-forward, merge
    ours: Commit
    theirs: Commit
    updates: dict[str, Row | None] = field(default_factory=dict)
    conflicts: list[MergeConflict] = field(default_factory=list)
    at_ours: dict[str, Row] = field(default_factory=dict)


def plan_merge(db: Session, blobs: BlobStore, ds: Dataset, ours: Commit, theirs: Commit) -> MergePlan:
    """Three-way by key from the deltas since the merge bases; writes nothing."""
    if is_ancestor(db, theirs, ours):
        return MergePlan("up-to-date", ours, theirs)
    if is_ancestor(db, ours, theirs):
        return MergePlan("fast-forward", ours, theirs)
    bases = merge_bases(db, ours, theirs)  # every commit of a dataset shares its root: never empty
    our_commits, their_commits = commits_since_base(db, ours, theirs, bases)
    keys = touched_keys(db, their_commits) | touched_keys(db, our_commits)
    at_theirs, at_ours = lookup_many(db, blobs, [theirs.pk, ours.pk], keys)
    at_base = virtual_base(db, blobs, bases, keys)
    found = MergePlan("merge", ours, theirs, at_ours=at_ours)
    for key in sorted(keys):
        b, t, o = at_base.get(key), at_theirs.get(key), at_ours.get(key)
        if t == o or (t == b and b is not UNRESOLVED):
            continue  # both sides agree, or they changed nothing net
        if o != b or b is UNRESOLVED:
            found.conflicts.append(MergeConflict(key, None if b is UNRESOLVED else b, b is UNRESOLVED, o, t))
            continue
        found.updates[key] = t
    return found


def merge(
    db: Session,
    blobs: BlobStore,
    *,
    dataset: str,
    source: str,
    into: str,
    author: str,
    message: str | None = None,
    take: dict[str, str] | None = None,
    strategy: str | None = None,
    labels: dict[str, str] | None = None,
) -> tuple[str, CommitRead]:
    """Merge revision `source` into branch `into`, three-way by key; returns (how, resulting head).

    how is "up-to-date", "fast-forward" or "merge". Keys both sides changed differently are
    conflicts, settled per key by `take` (key -> "ours", the branch's row, or "theirs", the
    source's) or for all by `strategy` ("ours" or "theirs"), or per key by `labels` (key -> a label
    of the dataset: the source's row, or the branch's where the source removed it, with that label);
    any left unsettled are all listed in the raised Conflict (extra: conflicts, one conflict_json
    each, with source_commit and target_head) and nothing is written.
    """
    ds = get_dataset(db, dataset)
    check_resolutions(ds, take=take, strategy=strategy, labels=labels)
    dst_branch = get_branch(db, ds, into)
    ours = db.get(Commit, dst_branch.head_pk)
    theirs = resolve_rev(db, ds, source)
    found = plan_merge(db, blobs, ds, ours, theirs)
    if found.how == "up-to-date":
        return "up-to-date", commit_read(db, ours)
    if found.how == "fast-forward":
        move_branch(db, dst_branch, expected_pk=ours.pk, new_pk=theirs.pk)
        return "fast-forward", commit_read(db, theirs)
    updates = dict(found.updates)
    left: list[str] = []
    unsettled: list[MergeConflict] = []
    for c in found.conflicts:
        side = (take or {}).get(c.key) or (None if c.key in (labels or {}) else strategy)
        if side == "theirs":
            updates[c.key] = c.theirs
        elif c.key in (labels or {}) and side is None:
            updates[c.key] = labeled(c, labels[c.key])
        elif side != "ours":
            shown = "the merge bases disagree" if c.unresolved_base else f"base {_show(c.base)}"
            left.append(f"{c.key} ({shown}, {dst_branch.name} {_show(c.ours)}, {source} {_show(c.theirs)})")
            unsettled.append(c)
    if left:
        shown = "; ".join(left[:5]) + (f"; and {len(left) - 5} more" if len(left) > 5 else "")
        raise Conflict(
            f"merge of '{source}' into '{dst_branch.name}' conflicts on {len(left)} example(s): {shown}",
            extra={
                "conflicts": [conflict_json(c) for c in unsettled],
                "source": source,
                "into": dst_branch.name,
                "source_commit": theirs.id,
                "target_head": ours.id,
            },
        )
    delta = effective_delta(updates, found.at_ours)
    commit = write_commit(
        db,
        dataset=ds,
        branch=dst_branch,
        parent=ours,
        delta=delta,
        before=found.at_ours,
        message=message or f"merge {source} into {dst_branch.name}",
        author=author,
        merge_parent=theirs,
    )
    return "merge", commit_read(db, commit)


SIDES = ("ours", "theirs")


def check_resolutions(
    ds: Dataset, *, take: dict[str, str] | None = None, strategy: str | None = None, labels: dict[str, str] | None = None
) -> None:
    """Refuse a side other than ours/theirs and a label outside the dataset's label set (InvalidInput, a 422)."""
    if strategy is not None and strategy not in SIDES:
        raise InvalidInput(f"merge strategy '{strategy}' is not one of: ours, theirs")
    for key, side in (take or {}).items():
        if side not in SIDES:
            raise InvalidInput(f"resolution of '{key}' takes '{side}', not one of: ours, theirs")
    for key, label in (labels or {}).items():
        if label not in ds.labels:
            raise InvalidInput(f"label '{label}' (for '{key}') is not in dataset '{ds.name}'s labels: {', '.join(ds.labels)}")


def labeled(c: MergeConflict, label: str) -> Row:
    """The row a label resolution keeps: the source's (the branch's where the source removed it) with that label."""
    row = c.theirs or c.ours or c.base
    assert row is not None  # a conflict has a row on at least one side
    return row._replace(label=label)


def conflict_json(c: MergeConflict) -> dict:
    """A conflict as the API and the CLI show it: labels at the base, on the target branch and in the source."""
    return {
        "key": c.key,
        "base_label": c.base.label if c.base else None,
        "target_label": c.ours.label if c.ours else None,
        "source_label": c.theirs.label if c.theirs else None,
        "base_removed": c.base is None and not c.unresolved_base,
        "target_removed": c.ours is None,
        "source_removed": c.theirs is None,
        "unresolved_base": c.unresolved_base,
    }


UNRESOLVED = object()  # a key whose merge bases hold different values that their own base cannot settle


def virtual_base(db: Session, blobs: BlobStore, bases: list[int], keys: set[str], depth: int = 0) -> dict[str, object]:
    """What each key holds at the merge base; with several bases (after a criss-cross merge), at a virtual one.

    Like git's recursive merge: two bases are merged three-way against their own base, key by key;
    a key they changed differently is UNRESOLVED (a conflict if the sides still disagree on it).
    Against one of the bases alone, a change one side had reverted could be silently undone.
    """
    if len(bases) == 1:
        found = lookup_many(db, blobs, bases, keys)[0]
        return {key: found.get(key) for key in keys}
    values = lookup_many(db, blobs, bases, keys)
    if len(bases) > 2 or depth >= 4:  # rare: agree, or leave it to the sides
        return {key: values[0].get(key) if all(v.get(key) == values[0].get(key) for v in values) else UNRESOLVED for key in keys}
    first, second = db.get(Commit, bases[0]), db.get(Commit, bases[1])
    below = virtual_base(db, blobs, merge_bases(db, first, second), keys, depth + 1)
    merged: dict[str, object] = {}
    for key in keys:
        x, y, m = values[0].get(key), values[1].get(key), below.get(key)
        merged[key] = x if x == y else y if (x == m and m is not UNRESOLVED) else x if (y == m and m is not UNRESOLVED) else UNRESOLVED
    return merged


def _show(row: Row | None) -> str:
    if row is None:
        return "absent"
    return f"label={row.label!r}" + (f" input={row.input[:8]}" if row.input else "")
