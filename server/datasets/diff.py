"""Diffs by key between two revisions, a page at a time, from the deltas that separate them."""

from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.datasets import get_dataset
from server.datasets.graph import separating_commits
from server.datasets.history import resolve_rev
from server.datasets.lookup import changed_keys_after, lookup_many
from server.datasets.models import Commit, Dataset
from server.datasets.rows import Row
from server.datasets.schemas import DiffRead, Relabel

PAGE = 5000  # keys per page when a whole diff is gathered


def diff_rows(before: dict[str, Row], after: dict[str, Row], keys: list[str]) -> DiffRead:
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


def _extend(into: DiffRead, page: DiffRead) -> None:
    into.added += page.added
    into.removed += page.removed
    into.relabeled += page.relabeled
    into.modified += page.modified


def changed_rows(
    db: Session, blobs: BlobStore, a: Commit, b: Commit, *, after: str | None, limit: int
) -> tuple[list[str], dict[str, Row], dict[str, Row], str | None]:
    """Up to limit keys after `after` whose deltas separate a and b, their rows at a and at b, and the next cursor.

    Some of the keys may have changed and changed back (their rows are equal).
    """
    keys, more = changed_keys_after(db, separating_commits(db, a, b), after, limit)
    if not keys:
        return [], {}, {}, None
    before, now = lookup_many(db, blobs, [a.pk, b.pk], keys)
    return keys, before, now, keys[-1] if more else None


def commits_page(db: Session, blobs: BlobStore, a: Commit, b: Commit, *, after: str | None, limit: int) -> tuple[DiffRead, str | None]:
    """The changes from a to b of up to `limit` keys after `after`, in key order, and the cursor for the next page.

    Candidate keys come from the separating commits' deltas by key range (each page reads only
    its range); keys whose changes cancel out are skipped.
    """
    result = DiffRead(added=[], removed=[], relabeled=[], modified=[])
    if a.pk == b.pk:
        return result, None
    counted = 0
    while counted < limit:
        keys, before, now, after = changed_rows(db, blobs, a, b, after=after, limit=limit - counted)
        page = diff_rows(before, now, keys)
        _extend(result, page)
        counted += len(set(page.added) | set(page.removed) | {r.key for r in page.relabeled} | set(page.modified))
        if after is None:
            return result, None
    return result, after


def diff_commits(db: Session, blobs: BlobStore, a: Commit, b: Commit) -> DiffRead:
    """Everything that changes from commit a to commit b (every page)."""
    result = DiffRead(added=[], removed=[], relabeled=[], modified=[])
    after: str | None = None
    while True:
        page, after = commits_page(db, blobs, a, b, after=after, limit=PAGE)
        _extend(result, page)
        if after is None:
            return result


def diff(db: Session, blobs: BlobStore, *, dataset: str, rev_a: str, rev_b: str) -> DiffRead:
    """Everything that changes from revision rev_a to revision rev_b."""
    ds: Dataset = get_dataset(db, dataset)
    return diff_commits(db, blobs, resolve_rev(db, ds, rev_a), resolve_rev(db, ds, rev_b))


def diff_page(
    db: Session, blobs: BlobStore, *, dataset: str, rev_a: str, rev_b: str, after: str | None, limit: int
) -> tuple[DiffRead, str | None]:
    """One page of the changes from rev_a to rev_b: up to limit keys after `after`, and the next cursor (None: done)."""
    ds: Dataset = get_dataset(db, dataset)
    return commits_page(db, blobs, resolve_rev(db, ds, rev_a), resolve_rev(db, ds, rev_b), after=after, limit=limit)
