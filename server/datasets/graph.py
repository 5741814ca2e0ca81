"""The commit graph of a dataset: ancestry walks bounded by generation, and the checkpoint chain.

A commit's generation is one more than its highest parent's, so along any path to an ancestor
generations only fall. A walk that stops below generation F therefore still finds every
ancestor at or above F, by every path: each question below (is A an ancestor of B, the merge
base, the commits that separate two revisions, a page of history) is answered by walking only
the generations it concerns, not the dataset's whole history.
"""

import heapq
from collections.abc import Iterable

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from server.datasets.models import Commit, CommitParent

WINDOW = 64  # generations a bounded walk looks at first; widened (x4) only when it finds nothing


def checkpoint_chain(db: Session, commit_pk: int) -> tuple[str | None, list[int]]:
    """The checkpoint a snapshot starts from and the commits whose deltas follow it, oldest first.

    Every delta is taken against the first parent, so this chain alone decides a snapshot; its
    length is bounded by compaction (S2_CHECKPOINT_MAX_CHAIN).
    """
    rows = db.execute(
        text(
            "WITH RECURSIVE chain(pk, first_parent_pk, checkpoint_blob, depth) AS ("
            " SELECT pk, first_parent_pk, checkpoint_blob, 0 FROM commits WHERE pk = :pk"
            " UNION ALL"
            " SELECT c.pk, c.first_parent_pk, c.checkpoint_blob, chain.depth + 1"
            " FROM commits c JOIN chain ON c.pk = chain.first_parent_pk"
            " WHERE chain.checkpoint_blob IS NULL)"
            " SELECT pk, checkpoint_blob FROM chain ORDER BY depth"
        ),
        {"pk": commit_pk},
    ).all()
    deltas: list[int] = []
    for pk, checkpoint_blob in rows:
        if checkpoint_blob is not None:
            return checkpoint_blob, deltas[::-1]
        deltas.append(pk)
    return None, deltas[::-1]


def walk(db: Session, starts: list[tuple[int, int]], floor: int) -> dict[int, tuple[int, int]]:
    """Commits reachable from the start commits ((pk, a bit of its own) pairs; one pk may start several), down to floor.

    Returns pk -> (OR of the bits of the starts that reach it, generation). Every ancestor at or
    above floor is found, whatever path leads to it.
    """
    values = " UNION ALL ".join(f"SELECT pk, :bit{i}, generation FROM commits WHERE pk = :pk{i}" for i in range(len(starts)))
    params: dict[str, int] = {"floor": floor}
    for i, (pk, bit) in enumerate(starts):
        params[f"pk{i}"], params[f"bit{i}"] = pk, bit
    rows = db.execute(
        text(
            f"WITH RECURSIVE w(pk, side, gen) AS ({values}"
            " UNION SELECT cp.parent_pk, w.side, c.generation FROM w"
            " JOIN commit_parents cp ON cp.commit_pk = w.pk JOIN commits c ON c.pk = cp.parent_pk"
            " WHERE c.generation >= :floor)"
            " SELECT pk, side, gen FROM w"
        ),
        params,
    ).all()
    found: dict[int, tuple[int, int]] = {}
    for pk, side, gen in rows:
        found[pk] = (found.get(pk, (0, gen))[0] | side, gen)
    return found


def is_ancestor(db: Session, ancestor: Commit, descendant: Commit) -> bool:
    """Whether ancestor is descendant or reachable from it (a walk over the generations between them)."""
    if ancestor.pk == descendant.pk:
        return True
    if ancestor.generation >= descendant.generation:
        return False
    return ancestor.pk in walk(db, [(descendant.pk, 1)], ancestor.generation)


def merge_base(db: Session, a: Commit, b: Commit) -> int | None:
    """The newest common ancestor of a and b (highest generation), or None if they share none."""
    bases = merge_bases(db, a, b)
    return bases[0] if bases else None


def merge_bases(db: Session, a: Commit, b: Commit) -> list[int]:
    """Every best common ancestor of a and b (one that is no ancestor of another), newest first.

    Usually one; after a criss-cross merge (each side merged the other) there are several, and a
    three-way merge against only one of them can silently undo a change (see merge.virtual_base).
    """
    window = WINDOW
    while True:
        floor = min(a.generation, b.generation) - window
        found = walk(db, [(a.pk, 1), (b.pk, 2)], floor)
        common = {pk: gen for pk, (side, gen) in found.items() if side == 3}
        if common:
            # A best base has no common child. Any other common ancestor is a parent-chain ancestor of a
            # best one, and every common ancestor above the floor was found, with its parents.
            members, covered = sorted(common), set()
            for start in range(0, len(members), 500):
                parents = db.scalars(select(CommitParent.parent_pk).where(CommitParent.commit_pk.in_(members[start : start + 500])))
                covered.update(pk for pk in parents if pk in common)
            best = [pk for pk in common if pk not in covered]
            return sorted(best, key=lambda pk: (common[pk], pk), reverse=True)
        if floor <= 0:
            return []
        window *= 4


def separating_commits(db: Session, a: Commit, b: Commit, base_pk: int | None = None) -> set[int]:
    """Commits reachable from a or b but not from their merge base: those whose deltas separate them."""
    a_only, b_only = commits_since_base(db, a, b, [base_pk] if base_pk is not None else None)
    return a_only | b_only


def commits_since_base(db: Session, a: Commit, b: Commit, bases: list[int] | None = None) -> tuple[set[int], set[int]]:
    """(commits reachable from a, from b) that none of the merge bases of a and b can reach."""
    if bases is None:
        bases = merge_bases(db, a, b)
    if not bases:
        found = walk(db, [(a.pk, 1), (b.pk, 2)], 0)
        return {pk for pk, (side, _) in found.items() if side & 1}, {pk for pk, (side, _) in found.items() if side & 2}
    floor = min(db.scalars(select(Commit.generation).where(Commit.pk.in_(bases))))
    while True:
        found = walk(db, [(a.pk, 1), (b.pk, 2), *((pk, 4) for pk in bases)], floor)
        tips_only = {pk: side for pk, (side, _) in found.items() if not side & 4}
        # A tip-only commit whose parent lies below the floor (a branch forked long before the
        # base, merged in since) may have more tip-only ancestors down there: widen and look.
        below = _parent_generations_below(db, set(tips_only), floor)
        if not below:
            return {pk for pk, side in tips_only.items() if side & 1}, {pk for pk, side in tips_only.items() if side & 2}
        floor = min(below)


def _parent_generations_below(db: Session, pks: set[int], floor: int) -> list[int]:
    if not pks:
        return []
    gens: list[int] = []
    ordered = sorted(pks)
    for start in range(0, len(ordered), 500):
        gens.extend(
            db.scalars(
                select(Commit.generation)
                .join(CommitParent, CommitParent.parent_pk == Commit.pk)
                .where(CommitParent.commit_pk.in_(ordered[start : start + 500]), Commit.generation < floor)
            )
        )
    return gens


def parent_ids(db: Session, commit_pks: Iterable[int]) -> dict[int, list[str]]:
    """The parents' commit ids of each commit, first parent first."""
    pks = sorted(set(commit_pks))
    result: dict[int, list[str]] = {pk: [] for pk in pks}
    for start in range(0, len(pks), 500):
        rows = db.execute(
            select(CommitParent.commit_pk, Commit.id)
            .join(Commit, Commit.pk == CommitParent.parent_pk)
            .where(CommitParent.commit_pk.in_(pks[start : start + 500]))
            .order_by(CommitParent.commit_pk, CommitParent.position)
        ).all()
        for pk, parent in rows:
            result[pk].append(parent)
    return result


def history_page(db: Session, frontier: list[int], limit: int) -> tuple[list[int], list[int]]:
    """Up to limit commits of history from frontier (newest first), and the frontier after them.

    History is ordered by (generation, pk), newest first, like `git log --date-order`. The
    frontier is what a walk has not visited yet; a page pops its highest commits one by one.
    A popped commit's first parent sits one generation lower, so a page of `limit` commits
    spans at most `limit` generations: one bounded walk fetches everything it can touch.
    """
    if not frontier:
        return [], []
    gens = dict(db.execute(select(Commit.pk, Commit.generation).where(Commit.pk.in_(frontier))).all())
    top = max(gens.values())
    window = walk(db, [(pk, 1) for pk in gens], top - limit)
    edges: dict[int, list[tuple[int, int]]] = {pk: [] for pk in window}
    members = sorted(window)
    for start in range(0, len(members), 500):
        rows = db.execute(
            select(CommitParent.commit_pk, CommitParent.parent_pk, Commit.generation)
            .join(Commit, Commit.pk == CommitParent.parent_pk)
            .where(CommitParent.commit_pk.in_(members[start : start + 500]))
        ).all()
        for pk, parent, gen in rows:
            edges[pk].append((gen, parent))
    heap = [(-gen, -pk) for pk, gen in gens.items()]
    heapq.heapify(heap)
    page: list[int] = []
    while heap and len(page) < limit:
        gen, pk = heapq.heappop(heap)
        if page and page[-1] == -pk:
            continue  # reached along two paths
        page.append(-pk)
        for parent_gen, parent in edges[-pk]:
            heapq.heappush(heap, (-parent_gen, -parent))
    rest = sorted({-pk for _, pk in heap} - set(page))
    return page, rest
