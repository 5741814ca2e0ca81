"""Labeling queues: which examples a labeler sees next on a branch, a page at a time.

- `all`: every example, in key order.
- `unlabeled`: examples with no label, committed or staged on this branch.
- `changed`: examples changed on this branch: staged, or by its commits since it forked from the default branch.
- any review queue of the dataset (labeling.review), highest score first.

A consensus queue (server.engine.consensus) asks each labeler for their own judgement: its items
carry no model guess, suggestion or reason (any of them would anchor the vote), only how many of
the votes it needs are in and the reader's own vote; the others' votes stay hidden.

Each can be narrowed by filters: the given label ("labeled 3"), the model's guess ("predicted
8") and its confidence. A page is read by key (or score) range, never the whole dataset. A
filtered read looks at SCAN rows per request at most: a page may come back short (even empty)
with a cursor to go on from, so no request costs O(dataset) when matches are rare.
"""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labeling.guesses import Guess, guesses, guessing_model
from labeling.review import BUILTIN, page_items, queue_counts
from server.blobs import BlobStore
from server.datasets.datasets import get_dataset
from server.datasets.examples import example_read
from server.datasets.lookup import lookup
from server.datasets.models import StagedEdit
from server.datasets.refs import get_branch
from server.datasets.schemas import ExampleRead
from server.errors import InvalidInput, NotFound

QUEUES = {
    "all": "every example, in key order",
    "unlabeled": "examples with no label yet",
    "changed": "examples changed on this branch: staged, or committed since it forked",
}
SCAN = 5000  # rows a filtered queue reads per request at most
CHUNK = 500
UNLABELED = ""  # Filters.label value for "no label"


@dataclass(frozen=True)
class Filters:
    """Narrow a queue: the example's label now (staged, else committed; "" for none), the guess, its confidence."""

    label: str | None = None
    predicted: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None

    @property
    def on_guess(self) -> bool:
        return self.predicted is not None or self.min_confidence is not None or self.max_confidence is not None

    @property
    def any(self) -> bool:
        return self.label is not None or self.on_guess

    def keep(self, example: ExampleRead, guess: Guess | None) -> bool:
        if self.label is not None:
            now = (None if example.staged_remove else example.staged_label) if example.staged_by else example.label
            if (now or "") != self.label:
                return False
        if self.on_guess:
            if guess is None:
                return False
            if self.predicted is not None and guess.label != self.predicted:
                return False
            if self.min_confidence is not None and guess.confidence < self.min_confidence:
                return False
            if self.max_confidence is not None and guess.confidence > self.max_confidence:
                return False
        return True


@dataclass
class QueueItem:
    """One example of a queue, with the model's guess when there is one (and why it is queued, for review)."""

    example: ExampleRead
    guess: Guess | None
    score: float | None = None
    reason: str | None = None
    suggestion: dict | None = None  # {label, confidence, given, by}: a label suggested for it (review queues)
    votes: dict | None = None  # consensus queues: {cast, required, mine}: counts and the reader's own vote only


def queue_names(db: Session, dataset: str) -> dict[str, str]:
    """Every queue the workbench can open on a dataset: the built-in ones and its review queues."""
    ds = get_dataset(db, dataset)
    names = dict(QUEUES)
    for name, count in queue_counts(db, ds.id).items():
        names[name] = f"review queue: {count} example(s), highest score first"
    return names


def check_filters(labels: list[str], f: Filters) -> Filters:
    for name, value in (("label", f.label), ("predicted", f.predicted)):
        if value not in (None, UNLABELED) and value not in labels:
            raise InvalidInput(f"{name} filter {value!r} is not a label of this dataset: choose one of {', '.join(labels)}")
    for name, value in (("min_confidence", f.min_confidence), ("max_confidence", f.max_confidence)):
        if value is not None and not 0 <= value <= 1:
            raise InvalidInput(f"{name} {value} is not between 0 and 1")
    return f


def queue_page(
    db: Session,
    blobs: BlobStore,
    *,
    dataset: str,
    branch: str | None,
    queue: str,
    after: object,
    limit: int,
    filters: Filters = Filters(),
    voter: str | None = None,
) -> tuple[list[QueueItem], object]:
    """Up to limit examples of a queue on a branch after the cursor, and the cursor to go on from (None: the end).

    voter: who reads it; in a consensus queue each item then carries their own vote.
    """
    from server.engine.models import ConsensusQueue

    ds = get_dataset(db, dataset)
    br = get_branch(db, ds, branch)
    check_filters(ds.labels, filters)
    consensus = None if queue in BUILTIN else db.get(ConsensusQueue, (ds.id, queue))
    if consensus is not None and filters.on_guess:
        raise InvalidInput(f"queue '{queue}' asks for independent votes: it shows no model guess to filter on (predicted, confidence)")
    model = guessing_model(db, ds.id) if consensus is None else None
    staged_q = select(StagedEdit).where(StagedEdit.branch_id == br.id)

    def attach(examples: list[ExampleRead]) -> list[QueueItem]:
        found = guesses(model, blobs, ds.labels, [e.key for e in examples])
        return [QueueItem(example=e, guess=found.get(e.key)) for e in examples]

    if queue in BUILTIN:
        if after is not None and not isinstance(after, str):
            raise InvalidInput("this cursor belongs to another queue: start again without a cursor")
        if queue == "changed":
            return _changed(db, blobs, ds, br, staged_q, after, limit, filters, attach)
        return _scan(db, blobs, br.head_pk, staged_q, queue, after, limit, filters, attach)
    items, more = _review(db, blobs, ds, br, staged_q, queue, after, limit, filters, attach)
    if consensus is not None:
        _blind(db, ds.id, consensus, items, voter)
    return items, more


def _blind(db: Session, dataset_id: int, consensus, items: list[QueueItem], voter: str | None) -> None:  # noqa: ANN001
    """A consensus queue's items as a voter sees them: nothing from a model or the queue's filler, vote counts only."""
    from server.engine.models import Vote

    keys = [i.example.key for i in items]
    where = (Vote.dataset_id == dataset_id, Vote.queue == consensus.queue, Vote.key.in_(keys))
    cast = dict(db.execute(select(Vote.key, func.count()).where(*where).group_by(Vote.key)).all()) if keys else {}
    mine = dict(db.execute(select(Vote.key, Vote.label).where(*where, Vote.labeler == voter)).all()) if keys and voter else {}
    for item in items:
        item.guess = item.suggestion = item.reason = None
        item.votes = {"cast": cast.get(item.example.key, 0), "required": consensus.required, "mine": mine.get(item.example.key)}


def _changed(db, blobs, ds, br, staged_q, after, limit, filters, attach):
    """Examples staged on the branch, or changed by its commits since it forked from the default branch, by key."""
    from server.datasets.diff import commits_page
    from server.datasets.graph import merge_bases
    from server.datasets.models import Branch, Commit

    edits = {e.key: e for e in db.scalars(staged_q.where(StagedEdit.key > (after or "")).order_by(StagedEdit.key).limit(limit + 1))}
    committed: list[str] = []
    default = db.scalar(select(Branch).where(Branch.dataset_id == ds.id, Branch.name == ds.default_branch))
    if default is not None and default.id != br.id:
        head, main = db.get(Commit, br.head_pk), db.get(Commit, default.head_pk)
        bases = merge_bases(db, head, main)
        if bases:
            page, _ = commits_page(db, blobs, db.get(Commit, bases[0]), head, after=after, limit=limit + 1)
            committed = sorted(set(page.added) | {r.key for r in page.relabeled} | set(page.modified))
    keys = sorted(set(edits) | set(committed))
    more = len(keys) > limit
    keys = keys[:limit]
    rows = lookup(db, blobs, br.head_pk, keys)
    items = attach([example_read(rows[k], edits.get(k)) for k in keys if k in rows])
    return [i for i in items if filters.keep(i.example, i.guess)], (keys[-1] if more and keys else None)


def _review(db, blobs, ds, br, staged_q, queue, after, limit, filters, attach):
    if queue not in queue_counts(db, ds.id):
        raise NotFound(f"no queue '{queue}' in dataset '{ds.name}': the queues are {', '.join(queue_names(db, ds.name))}")
    if after is not None and not (
        isinstance(after, list) and len(after) == 2 and isinstance(after[0], int | float) and isinstance(after[1], str)
    ):
        raise InvalidInput("this cursor belongs to another queue: start again without a cursor")
    want = limit if not filters.any else min(SCAN, max(limit, CHUNK))
    queued = page_items(db, dataset_id=ds.id, queue=queue, after=tuple(after) if after else None, limit=want + 1)
    more = len(queued) > want
    queued = queued[:want]
    rows = lookup(db, blobs, br.head_pk, [q.key for q in queued])
    staged = {e.key: e for e in db.scalars(staged_q.where(StagedEdit.key.in_([q.key for q in queued])))} if queued else {}
    by_key = {i.example.key: i for i in attach([example_read(rows[q.key], staged.get(q.key)) for q in queued if q.key in rows])}
    items: list[QueueItem] = []
    last = None
    for q in queued:
        last = [q.score, q.key]
        item = by_key.get(q.key)  # None: the key is gone from this branch
        if item is not None and filters.keep(item.example, item.guess):
            item.score, item.reason = q.score, q.reason
            if q.suggested is not None:
                item.suggestion = {
                    "label": q.suggested,
                    "confidence": q.confidence,
                    "given": q.given,
                    "by": q.added_by.removeprefix("model "),
                }
            items.append(item)
            if len(items) == limit:
                return items, last
    return items, last if more else None


def _scan(db, blobs, head_pk, staged_q, queue, after, limit, filters, attach) -> tuple[list[QueueItem], str | None]:
    """Examples in key order after `after` that belong to the queue, reading at most SCAN rows when it filters."""
    from server.datasets.snapshot import page_rows

    filtering = queue != "all" or filters.any
    found: list[QueueItem] = []
    lo, scanned = after, 0
    while True:
        want = limit - len(found) if not filtering else min(CHUNK, SCAN - scanned)
        rows = page_rows(db, blobs, head_pk, after=lo, limit=want)
        scanned += len(rows)
        staged = {e.key: e for e in db.scalars(staged_q.where(StagedEdit.key.in_([r.key for r in rows])))} if rows else {}
        candidates = []
        for row in rows:
            edit = staged.get(row.key)
            if queue == "unlabeled" and (row.label is not None or edit is not None):
                continue
            candidates.append(example_read(row, edit))
        by_label = Filters(label=filters.label)  # what needs no guess first: guesses are read only for those kept
        for item in attach([e for e in candidates if by_label.keep(e, None)]):
            if filters.keep(item.example, item.guess):
                found.append(item)
                if len(found) == limit:
                    return found, item.example.key  # perhaps the last one: the next page then says so
        if len(rows) < want:
            return found, None  # the end of the table
        lo = rows[-1].key
        if scanned >= SCAN:
            return found, lo  # a short page: matches are rare here; go on from where the scan stopped
