"""Labeling queues: which examples a labeler sees next on a branch, a page at a time.

- `all`: every example, in key order.
- `unlabeled`: examples with no label, committed or staged on this branch.
- `changed`: examples with a staged (uncommitted) edit on this branch.
- `review`: examples the platform (or an engineer, from a file or the API) queued for a second look.

A page is read from the database and the checkpoints by key range, never the whole dataset. A
filtered queue reads at most SCAN rows per request: a page may come back short (even empty)
with a cursor to go on from, so no request costs O(dataset) when matches are rare.
"""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from labeling.guesses import Guess, guesses, guessing_model
from server.blobs import BlobStore
from server.datasets.datasets import get_dataset
from server.datasets.examples import example_read
from server.datasets.lookup import lookup
from server.datasets.models import StagedEdit
from server.datasets.refs import get_branch
from server.datasets.schemas import ExampleRead
from server.errors import InvalidInput

QUEUES = {
    "all": "every example, in key order",
    "unlabeled": "examples with no label yet",
    "changed": "examples with an uncommitted edit on this branch",
}
SCAN = 5000  # rows a filtered queue reads per request at most
CHUNK = 500


@dataclass
class QueueItem:
    """One example of a queue, with the model's guess when there is one."""

    example: ExampleRead
    guess: Guess | None


def check_queue(queue: str) -> str:
    """The queue's name, or InvalidInput listing the queues there are."""
    if queue not in QUEUES:
        raise InvalidInput(f"no queue named '{queue}': choose one of {', '.join(QUEUES)}")
    return queue


def queue_page(
    db: Session, blobs: BlobStore, *, dataset: str, branch: str | None, queue: str, after: str | None, limit: int
) -> tuple[list[QueueItem], str | None]:
    """Up to limit examples of a queue on a branch after the cursor key, and the cursor to go on from (None: the end)."""

    check_queue(queue)
    ds = get_dataset(db, dataset)
    br = get_branch(db, ds, branch)
    staged_q = select(StagedEdit).where(StagedEdit.branch_id == br.id)
    examples: list[ExampleRead] = []
    cursor: str | None = None
    if queue == "changed":
        edits = list(db.scalars(staged_q.where(StagedEdit.key > (after or "")).order_by(StagedEdit.key).limit(limit + 1)))
        more = len(edits) > limit
        edits = edits[:limit]
        rows = lookup(db, blobs, br.head_pk, [e.key for e in edits])
        examples = [example_read(rows[e.key], e) for e in edits if e.key in rows]
        cursor = edits[-1].key if more and edits else None
    else:
        examples, cursor = _scan(db, blobs, br.head_pk, staged_q, queue, after, limit)
    found = guesses(guessing_model(db, ds.id), blobs, ds.labels, [e.key for e in examples])
    return [QueueItem(example=e, guess=found.get(e.key)) for e in examples], cursor


def _scan(
    db: Session, blobs: BlobStore, head_pk: int, staged_q, queue: str, after: str | None, limit: int
) -> tuple[list[ExampleRead], str | None]:
    """Examples in key order after `after` that belong to the queue, reading at most SCAN rows when it filters."""
    from server.datasets.snapshot import page_rows

    found: list[ExampleRead] = []
    lo, scanned = after, 0
    while True:
        want = limit - len(found) if queue == "all" else min(CHUNK, SCAN - scanned)
        rows = page_rows(db, blobs, head_pk, after=lo, limit=want)
        scanned += len(rows)
        staged = {e.key: e for e in db.scalars(staged_q.where(StagedEdit.key.in_([r.key for r in rows])))} if rows else {}
        for row in rows:
            edit = staged.get(row.key)
            if queue == "unlabeled" and (row.label is not None or edit is not None):
                continue
            found.append(example_read(row, edit))
            if len(found) == limit:
                return found, row.key  # perhaps the last one: the next page then says so
        if len(rows) < want:
            return found, None  # the end of the table
        lo = rows[-1].key
        if scanned >= SCAN:
            return found, lo  # a short page: matches are rare here; go on from where the scan stopped
