"""Diffs by key between two revisions, a page at a time, from the deltas that separate them."""

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from typing import NamedTuple

from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.datasets import get_dataset
from server.datasets.graph import separating_commits
from server.datasets.history import resolve_rev
from server.datasets.lookup import changed_keys_after, lookup_many
from server.datasets.models import Commit, Dataset
from server.datasets.rows import Row
from server.datasets.schemas import DiffExample, DiffExamplesPage, DiffKind, DiffRead, DiffSummary, Relabel, RelabelCount
from server.errors import InvalidInput

PAGE = 5000  # keys per page when a whole diff is gathered
SCAN_MAX = 20_000  # changed keys one filtered page may look at before it answers "more" with what it found
SUMMARIES_KEPT = 128  # diff summaries remembered per process (a few hundred bytes each, more with many class pairs)
TEXT_SHOWN = 4096  # characters of a text or tabular input a changed example carries
KINDS: tuple[DiffKind, ...] = ("added", "removed", "relabeled", "modified")


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


class _Counts(NamedTuple):
    """A whole diff reduced to numbers: what a summary caches (commits never change, so neither do these)."""

    added: int
    removed: int
    relabeled: int
    modified: int
    pairs: tuple[tuple[str | None, str | None, int], ...]


_summaries: OrderedDict[tuple[str, str], _Counts] = OrderedDict()
_summaries_lock = threading.Lock()


def _example(key: str, a: Row | None, b: Row | None) -> DiffExample | None:
    """What changed of one key from a to b (None: nothing, e.g. a change and its undoing)."""
    if a is None and b is None:
        return None
    kinds: list[DiffKind]
    if a is None or b is None:
        kinds = ["added" if a is None else "removed"]
    else:
        kinds = (["relabeled"] if a.label != b.label else []) + (
            ["modified"] if (a.input, a.split, a.meta) != (b.input, b.split, b.meta) else []
        )
        if not kinds:
            return None
    shown = b or a
    return DiffExample(key=key, kinds=kinds, from_=a.label if a else None, to=b.label if b else None, input=shown.input, text=shown.inline)


def scan_changes(
    db: Session, blobs: BlobStore, a: Commit, b: Commit, *, after: str | None, chunk: int
) -> Iterator[tuple[str, DiffExample | None]]:
    """Every key the separating deltas touch after `after`, in key order, with its change (None: none in the end).

    Keys are read in chunks that start at `chunk` and double up to PAGE, so a caller that stops
    early (a full page) reads little more than it used, and one that reads on pays O(changes).
    """
    if a.pk == b.pk:
        return
    commits = separating_commits(db, a, b)  # once: every chunk reads the same commits
    while True:
        keys, more = changed_keys_after(db, commits, after, chunk)
        if not keys:
            return
        before, now = lookup_many(db, blobs, [a.pk, b.pk], keys)
        for key in keys:
            yield key, _example(key, before.get(key), now.get(key))
        if not more:
            return
        after, chunk = keys[-1], min(2 * chunk, PAGE)


def _count(db: Session, blobs: BlobStore, a: Commit, b: Commit) -> _Counts:
    """Count every change from a to b: O(changes) in time, O(class pairs) in memory."""
    kinds: Counter[str] = Counter()
    pairs: Counter[tuple[str | None, str | None]] = Counter()
    for _, change in scan_changes(db, blobs, a, b, after=None, chunk=PAGE):
        if change is None:
            continue
        kinds.update(change.kinds)
        if "relabeled" in change.kinds:
            pairs[(change.from_, change.to)] += 1
    return _Counts(kinds["added"], kinds["removed"], kinds["relabeled"], kinds["modified"], tuple((f, t, n) for (f, t), n in pairs.items()))


def commits_counts(db: Session, blobs: BlobStore, a: Commit, b: Commit) -> _Counts:
    """The counts of a diff, remembered per (commit, commit): a commit's content never changes, so neither does its diff."""
    key = (a.id, b.id)
    with _summaries_lock:
        if key in _summaries:
            _summaries.move_to_end(key)
            return _summaries[key]
    counts = _count(db, blobs, a, b)  # outside the lock: two first readers may both count, and agree
    with _summaries_lock:
        _summaries[key] = counts
        while len(_summaries) > SUMMARIES_KEPT:
            _summaries.popitem(last=False)
    return counts


def label_order(labels: list[str]) -> Callable[[str | None], tuple]:
    """A sort key for labels: the dataset's order, then labels it no longer has (by name), then unlabeled."""
    position = {label: i for i, label in enumerate(labels)}
    return lambda label: (2, "") if label is None else (0, position[label]) if label in position else (1, label)


def diff_summary(db: Session, blobs: BlobStore, *, dataset: str, rev_a: str, rev_b: str) -> DiffSummary:
    """How many examples rev_a to rev_b adds, removes, relabels and modifies, and how many of each class pair relabels."""
    ds: Dataset = get_dataset(db, dataset)
    a, b = resolve_rev(db, ds, rev_a), resolve_rev(db, ds, rev_b)
    counts = commits_counts(db, blobs, a, b)
    order = label_order(list(ds.labels))
    cells = sorted(counts.pairs, key=lambda p: (order(p[0]), order(p[1])))
    return DiffSummary(
        a=a.id,
        b=b.id,
        added=counts.added,
        removed=counts.removed,
        relabeled=counts.relabeled,
        modified=counts.modified,
        relabels=[RelabelCount(from_=f, to=t, count=n) for f, t, n in cells],
    )


def _matches(change: DiffExample, kind: DiffKind | None, pair: tuple[str | None, str | None] | None) -> bool:
    if kind is not None and kind not in change.kinds:
        return False
    return pair is None or ("relabeled" in change.kinds and (change.from_, change.to) == pair)


def _with_text(blobs: BlobStore, change: DiffExample) -> DiffExample:
    """The change with the start of its input as text (read from the blob store when not inline)."""
    text = change.text if change.text is not None else blobs.get(change.input)[: TEXT_SHOWN * 4].decode("utf-8", "replace")
    change.text = text[:TEXT_SHOWN]
    return change


def diff_examples(
    db: Session,
    blobs: BlobStore,
    *,
    dataset: str,
    rev_a: str,
    rev_b: str,
    after: str | None = None,
    limit: int = 60,
    kind: DiffKind | None = None,
    pair: tuple[str | None, str | None] | None = None,
) -> DiffExamplesPage:
    """Up to limit changed examples after key `after`, in key order, of one kind or one class pair (None: any).

    Bounded per call: it stops at a full page, or after looking at SCAN_MAX changed keys, and
    then says where it stopped (next_after), so a rare class pair costs several pages, never one
    unbounded request. Text and tabular inputs come with their start (`text`); images by id.
    """
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"unknown kind of change {kind!r}: choose one of {', '.join(KINDS)}")
    ds: Dataset = get_dataset(db, dataset)
    a, b = resolve_rev(db, ds, rev_a), resolve_rev(db, ds, rev_b)
    found: list[DiffExample] = []
    more: str | None = None
    chunk = limit + 1 if kind is None and pair is None else 4 * limit
    for scanned, (key, change) in enumerate(scan_changes(db, blobs, a, b, after=after, chunk=chunk), 1):
        if change is not None and _matches(change, kind, pair):
            if len(found) == limit:  # one more exists: the next page starts after this page's last
                more = found[-1].key
                break
            found.append(change)
        if scanned >= SCAN_MAX:
            more = key
            break
    if ds.modality != "image":
        found = [_with_text(blobs, c) for c in found]
    return DiffExamplesPage(items=found, next_after=more)
