"""Finding what keys hold at a revision through the deltas' (dataset, key) index: no Arrow needed."""

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.history import first_parent_chain
from server.datasets.models import Change, Commit
from server.datasets.rows import Row

IN_CHUNK = 500  # keys per SQL IN (...) list: well under SQLite's variable limit
INDEXED_LOOKUP_RATIO = 20  # look keys up by index when they are under 1/20 of the table


def load_delta(db: Session, commit_pks: list[int]) -> dict[str, Row | None]:
    """The net effect of commits' deltas applied in order: key -> new row, or None if removed."""
    order = {pk: i for i, pk in enumerate(commit_pks)}
    result: dict[str, Row | None] = {}
    if not commit_pks:
        return result
    rows = db.execute(
        select(Change.commit_pk, Change.key, Change.removed, Change.input, Change.label, Change.split, Change.meta).where(
            Change.commit_pk.in_(commit_pks)
        )
    ).all()
    for _, key, removed, input_, label, split, meta in sorted(rows, key=lambda r: order[r[0]]):
        result[key] = None if removed else Row(key, input_, label, split, meta)
    return result


def touched_keys(db: Session, commit_pks: Iterable[int]) -> set[str]:
    """Every key some of these commits changed."""
    pks = sorted(set(commit_pks))
    keys: set[str] = set()
    for i in range(0, len(pks), IN_CHUNK):
        keys.update(db.scalars(select(Change.key).where(Change.commit_pk.in_(pks[i : i + IN_CHUNK]))))
    return keys


def lookup(db: Session, blobs: BlobStore, commit_pk: int, keys: Iterable[str]) -> dict[str, Row]:
    """The rows these keys hold at a commit; keys absent there are absent from the result."""
    return lookup_many(db, blobs, [commit_pk], keys)[0]


def lookup_many(db: Session, blobs: BlobStore, commit_pks: list[int], keys: Iterable[str]) -> list[dict[str, Row]]:
    """The rows these keys hold at each of several commits (one dict per commit).

    A few keys are found through the (dataset, key) index of the deltas, at a cost that grows
    with the keys asked for, not with the table; many keys are cheaper to find by one scan of
    the checkpoint.
    """
    wanted = set(keys)
    results: list[dict[str, Row]] = [{} for _ in commit_pks]
    if not wanted:
        return results
    commits = [db.get(Commit, pk) for pk in commit_pks]
    indexed = [i for i, c in enumerate(commits) if len(wanted) * INDEXED_LOOKUP_RATIO < c.row_count]
    for i, c in enumerate(commits):
        if i not in indexed:
            from server.datasets.snapshot import lookup_by_scan  # Arrow, only for big lookups

            results[i] = lookup_by_scan(db, blobs, c.pk, wanted)
    if indexed:
        positions = [{pk: d for d, pk in enumerate(first_parent_chain(db, commits[i].pk))} for i in indexed]
        nearest: list[dict[str, tuple[int, Row | None]]] = [{} for _ in indexed]
        ordered = sorted(wanted)
        for start in range(0, len(ordered), IN_CHUNK):
            versions = db.execute(
                select(Change.commit_pk, Change.key, Change.removed, Change.input, Change.label, Change.split, Change.meta).where(
                    Change.dataset_id == commits[0].dataset_id, Change.key.in_(ordered[start : start + IN_CHUNK])
                )
            ).all()
            for commit_pk, key, removed, input_, label, split, meta in versions:
                for position, best in zip(positions, nearest):
                    depth = position.get(commit_pk)
                    if depth is not None and (key not in best or depth < best[key][0]):
                        best[key] = (depth, None if removed else Row(key, input_, label, split, meta))
        for i, best in zip(indexed, nearest):
            results[i] = {key: row for key, (_, row) in best.items() if row is not None}
    return results
