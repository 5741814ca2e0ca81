"""The commit graph of a dataset: revision names, ancestry, merge bases, checkpoint chains."""

import re
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from server.datasets.models import Branch, Commit, Dataset, Tag
from server.errors import InvalidInput, NotFound

HEX_PREFIX = re.compile(r"^[0-9a-f]{7,64}$")
SHORT_HEX = re.compile(r"^[0-9a-f]{1,6}$")  # looks like an abbreviated id, but too short to name one
ANCESTRY = re.compile(r"^(?P<base>.+?)(?P<steps>(~\d*)*)$")


def resolve_rev(db: Session, dataset: Dataset, rev: str) -> Commit:
    """The commit a revision names: branch, tag, commit id or 7+ digit prefix, each with optional ~N.

    A name is looked up as a branch first, then as a tag, then as a commit id or prefix, so a
    branch or tag named like a hex prefix (say `cafe123`) wins over the commit that prefix would
    abbreviate, as a ref does in git; give more digits (or the full id) to name the commit.
    A prefix shared by several commits is refused as ambiguous, never resolved to one of them.
    """
    match = ANCESTRY.match(rev.strip())
    if not rev.strip() or not match:
        raise InvalidInput(f"empty revision for dataset '{dataset.name}'")
    commit = _resolve_base(db, dataset, match["base"])
    steps = sum(int(s) if s else 1 for s in match["steps"].split("~")[1:]) if match["steps"] else 0
    for walked in range(steps):
        if commit.first_parent_pk is None:
            raise NotFound(f"revision '{rev}' of dataset '{dataset.name}' goes past the first commit ({walked} steps back is the root)")
        commit = db.get(Commit, commit.first_parent_pk)
    return commit


def _resolve_base(db: Session, dataset: Dataset, name: str) -> Commit:
    branch = db.scalar(select(Branch).where(Branch.dataset_id == dataset.id, Branch.name == name))
    if branch is not None:
        return db.get(Commit, branch.head_pk)
    tag = db.scalar(select(Tag).where(Tag.dataset_id == dataset.id, Tag.name == name))
    if tag is not None:
        return db.get(Commit, tag.commit_pk)
    if HEX_PREFIX.match(name):
        found = db.scalars(select(Commit).where(Commit.dataset_id == dataset.id, Commit.id.startswith(name)).limit(2)).all()
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise InvalidInput(f"revision '{name}' is ambiguous in dataset '{dataset.name}': give more digits")
    if SHORT_HEX.match(name):
        raise NotFound(
            f"unknown revision '{name}' in dataset '{dataset.name}': not a branch or tag, and a commit id "
            f"prefix needs at least 7 hex digits"
        )
    raise NotFound(f"unknown revision '{name}' in dataset '{dataset.name}': not a branch, tag or commit id")


def checkpoint_chain(db: Session, commit_pk: int) -> tuple[str | None, list[int]]:
    """The checkpoint a snapshot starts from and the commits whose deltas follow it, oldest first."""
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


def first_parent_chain(db: Session, commit_pk: int) -> list[int]:
    """commit_pk and its first parents back to the root, newest first.

    Every delta is taken against the first parent, so this chain alone decides a snapshot:
    a key holds what the nearest commit on it that touched the key wrote.
    """
    return list(
        db.scalars(
            text(
                "WITH RECURSIVE chain(pk, first_parent_pk, depth) AS ("
                " SELECT pk, first_parent_pk, 0 FROM commits WHERE pk = :pk"
                " UNION ALL"
                " SELECT c.pk, c.first_parent_pk, chain.depth + 1"
                " FROM commits c JOIN chain ON c.pk = chain.first_parent_pk)"
                " SELECT pk FROM chain ORDER BY depth"
            ),
            {"pk": commit_pk},
        )
    )


@dataclass
class CommitGraph:
    """Every commit of a dataset as parent links, for ancestry questions."""

    parents: dict[int, list[int]]
    generation: dict[int, int]

    @classmethod
    def load(cls, db: Session, dataset_id: int) -> "CommitGraph":
        """Read the dataset's whole graph (ids and links only) in one query."""
        rows = db.execute(select(Commit.pk, Commit.id, Commit.parent_ids, Commit.generation).where(Commit.dataset_id == dataset_id)).all()
        pk_of = {cid: pk for pk, cid, _, _ in rows}
        return cls(
            parents={pk: [pk_of[p] for p in parent_ids] for pk, _, parent_ids, _ in rows},
            generation={pk: gen for pk, _, _, gen in rows},
        )

    def ancestors(self, pk: int) -> set[int]:
        """pk and every commit reachable from it through parents."""
        seen, todo = {pk}, [pk]
        while todo:
            for parent in self.parents[todo.pop()]:
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    def merge_base(self, a: int, b: int) -> int | None:
        """The newest common ancestor of a and b (by generation), or None if unrelated."""
        common = self.ancestors(a) & self.ancestors(b)
        return max(common, key=lambda pk: (self.generation[pk], pk)) if common else None

    def only_in(self, tip: int, base: int | None) -> set[int]:
        """Commits reachable from tip but not from base: those whose deltas separate them."""
        return self.ancestors(tip) - (self.ancestors(base) if base is not None else set())
