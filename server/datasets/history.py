"""History: revision names, the log of a revision a page at a time, and blame of one example."""

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.datasets.datasets import SUGGEST_AMONG, did_you_mean, get_dataset
from server.datasets.graph import commits_since_base, history_page, parent_ids, walk
from server.datasets.models import Branch, Change, Commit, CommitParent, Dataset, Tag
from server.datasets.schemas import BlameEntry, CommitRead
from server.errors import InvalidInput, NotFound

HEX_PREFIX = re.compile(r"[0-9a-f]{7,64}")
SHORT_HEX = re.compile(r"[0-9a-f]{1,6}")  # looks like an abbreviated id, but too short to name one
ANCESTRY = re.compile(r"(?P<base>.+?)(?P<steps>([~^]\d*)*)")
STEP = re.compile(r"([~^])(\d*)")
HEAD = "HEAD"  # git's name for where you are: the branch a command works on, else the default branch


def resolve_rev(db: Session, dataset: Dataset, rev: str, *, head: str | None = None) -> Commit:
    """The commit a revision names: branch, tag, commit id or 7+ digit prefix, or HEAD, each followed by
    any of ~N (N first-parent steps back), ^ (the first parent) and ^N (the Nth parent: a merge has 2), as in git.

    HEAD is the head of `head` (the branch the command works on) when given, else of the default branch.
    A name is looked up as a branch first, then as a tag, then as a commit id or prefix, so a
    branch or tag named like a hex prefix (say `cafe123`) wins over the commit that prefix would
    abbreviate, as a ref does in git; give more digits (or the full id) to name the commit.
    A prefix shared by several commits is refused as ambiguous, never resolved to one of them.
    """
    match = ANCESTRY.fullmatch(rev.strip())
    if not rev.strip() or not match:
        raise InvalidInput(f"empty revision for dataset '{dataset.name}'")
    base = match["base"]
    if base == HEAD:
        base = head or dataset.default_branch
    commit = _resolve_base(db, dataset, base)
    done = match["base"]  # the part of rev resolved so far, for error messages
    for kind, digits in STEP.findall(match["steps"] or ""):
        n = int(digits) if digits else 1
        if kind == "~":
            for walked in range(n):
                if commit.first_parent_pk is None:
                    raise NotFound(
                        f"revision '{rev}' of dataset '{dataset.name}' goes past the first commit "
                        f"({done}{f'~{walked}' if walked else ''} is the root)"
                    )
                commit = db.get(Commit, commit.first_parent_pk)
        elif n:
            parents = db.scalars(
                select(Commit)
                .join(CommitParent, CommitParent.parent_pk == Commit.pk)
                .where(CommitParent.commit_pk == commit.pk)
                .order_by(CommitParent.position)
            ).all()
            if len(parents) < n:
                has = "no parent (it is the root)" if not parents else f"only {len(parents)} parent{'s' if len(parents) > 1 else ''}"
                raise NotFound(f"revision '{rev}' of dataset '{dataset.name}' names parent {n} of {done}, which has {has}")
            commit = parents[n - 1]
        done += kind + digits
    return commit


def _resolve_base(db: Session, dataset: Dataset, name: str) -> Commit:
    branch = db.scalar(select(Branch).where(Branch.dataset_id == dataset.id, Branch.name == name))
    if branch is not None:
        return db.get(Commit, branch.head_pk)
    tag = db.scalar(select(Tag).where(Tag.dataset_id == dataset.id, Tag.name == name))
    if tag is not None:
        return db.get(Commit, tag.commit_pk)
    if HEX_PREFIX.fullmatch(name):
        found = db.scalars(select(Commit).where(Commit.dataset_id == dataset.id, Commit.id.startswith(name)).limit(2)).all()
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise InvalidInput(f"revision '{name}' is ambiguous in dataset '{dataset.name}': give more digits")
    if SHORT_HEX.fullmatch(name):
        raise NotFound(
            f"unknown revision '{name}' in dataset '{dataset.name}': not a branch or tag, and a commit id prefix needs at least 7 hex digits"
        )
    refs = [*db.scalars(select(Branch.name).where(Branch.dataset_id == dataset.id).limit(SUGGEST_AMONG))]
    refs += db.scalars(select(Tag.name).where(Tag.dataset_id == dataset.id).limit(SUGGEST_AMONG))
    close = did_you_mean(name, sorted(set(refs)))
    raise NotFound(
        f"unknown revision '{name}' in dataset '{dataset.name}': not a branch, tag or commit id" + (f"; {close}" if close else "")
    )


def commit_reads(db: Session, commits: list[Commit]) -> list[CommitRead]:
    """The public view of commits (their parents' ids read in one query)."""
    parents = parent_ids(db, [c.pk for c in commits])
    return [
        CommitRead(
            id=c.id,
            parents=parents[c.pk],
            author=c.author,
            message=c.message,
            created_at=c.created_at,
            changes=c.change_count,
            rows=c.row_count,
        )
        for c in commits
    ]


def commit_read(db: Session, commit: Commit) -> CommitRead:
    """The public view of one commit."""
    return commit_reads(db, [commit])[0]


def log(
    db: Session, *, dataset: str, rev: str | None, frontier: list[int] | None = None, limit: int = 100
) -> tuple[list[CommitRead], list[int]]:
    """A page of the commits reachable from rev (default: the default branch), newest first.

    Returns the page and the frontier to pass back for the next one (empty: no more). The
    frontier is where the walk stopped, so a page costs the same at the 10th page as at the 1st.
    """
    ds = get_dataset(db, dataset)
    if frontier is None:
        frontier = [resolve_rev(db, ds, rev or ds.default_branch).pk]
    else:
        frontier = sorted(set(frontier))
        found = db.scalar(select(func.count()).select_from(Commit).where(Commit.pk.in_(frontier), Commit.dataset_id == ds.id))
        if found != len(frontier):
            raise InvalidInput("this history cursor does not belong to this dataset's history: start again without a cursor")
    pks, rest = history_page(db, frontier, limit)
    by_pk = {c.pk: c for c in db.scalars(select(Commit).where(Commit.pk.in_(pks)))}
    return commit_reads(db, [by_pk[pk] for pk in pks]), rest


def log_all(db: Session, *, dataset: str, rev: str | None, limit: int | None = None) -> list[CommitRead]:
    """Every commit reachable from rev (or the newest `limit`), newest first, read a page at a time."""
    found: list[CommitRead] = []
    frontier: list[int] | None = None
    while limit is None or len(found) < limit:
        size = 1000 if limit is None else min(1000, limit - len(found))
        page, frontier = log(db, dataset=dataset, rev=rev, frontier=frontier, limit=size)
        found.extend(page)
        if not frontier:
            break
    return found[:limit] if limit else found


def blame(db: Session, *, dataset: str, key: str, rev: str | None) -> list[BlameEntry]:
    """Every commit reachable from rev that changed the example `key`, oldest first.

    The candidates come from the (dataset, key) index of the deltas; only the generations
    between the oldest of them and rev are walked to keep those rev can reach.
    """
    ds = get_dataset(db, dataset)
    tip = resolve_rev(db, ds, rev or ds.default_branch)
    rows = db.execute(
        select(Commit, Change)
        .join(Change, Change.commit_pk == Commit.pk)
        .where(Change.dataset_id == ds.id, Change.key == key)
        .order_by(Commit.generation, Commit.pk)
    ).all()
    reachable = walk(db, [(tip.pk, 1)], min(c.generation for c, _ in rows)) if rows else {}
    entries = [
        BlameEntry(
            commit=c.id,
            author=ch.author or c.author,
            committer=c.author,
            created_at=c.created_at,
            message=c.message,
            removed=ch.removed,
            label=ch.label,
            input=ch.input,
            source=ch.source,
        )
        for c, ch in rows
        if c.pk in reachable
    ]
    if not entries:
        raise NotFound(f"example '{key}' was never changed in the history of '{rev or ds.default_branch}' of dataset '{dataset}'")
    return entries


def ahead_behind(db: Session, *, dataset: str, rev: str, base: str) -> tuple[int, int]:
    """How many commits rev has that base lacks (ahead), and base has that rev lacks (behind), as git counts them."""
    ds = get_dataset(db, dataset)
    mine, theirs = commits_since_base(db, resolve_rev(db, ds, rev), resolve_rev(db, ds, base))
    return len(mine), len(theirs)
