"""Review queues: examples put before a labeler for a second look, highest score first.

The data engine fills them (suspected label errors, uncertain examples); an engineer can too,
from a file (`s2 review add`) or the API. A queue is named per dataset; adding a key that is
already queued updates its score and reason. Keys must exist on the dataset's default branch.
"""

import re

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from labeling.models import ReviewItem
from server.blobs import BlobStore
from server.datasets.datasets import get_dataset
from server.datasets.lookup import lookup
from server.datasets.models import utcnow
from server.datasets.refs import get_branch
from server.errors import InvalidInput, NotFound

QUEUE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
BUILTIN = ("all", "unlabeled", "changed")
MAX_ITEMS = 10_000  # one request's worth; a bigger file goes in several


def check_queue_name(name: str) -> str:
    if not QUEUE_NAME.match(name) or name in BUILTIN:
        raise InvalidInput(
            f"invalid review queue name {name!r}: lowercase letters, digits, - and _, starting with a letter, "
            f"at most 64, and not one of {', '.join(BUILTIN)}"
        )
    return name


def add_items(
    db: Session,
    blobs: BlobStore,
    *,
    dataset: str,
    queue: str,
    items: list[tuple[str, float, str | None]],
    by: str,
    suggestions: dict[str, str] | None = None,
) -> tuple[int, int]:
    """Queue (key, score, reason) items; returns (added, updated). Every key must exist on the default branch.

    suggestions: a label to suggest for some keys (a labeler accepts it with one key, or keeps the label the
    example has now); the example's label and input as they are now are kept with it, as the engine does.
    """
    suggestions = suggestions or {}
    check_queue_name(queue)
    if not items:
        raise InvalidInput("no items to queue: give at least one key")
    if len(items) > MAX_ITEMS:
        raise InvalidInput(f"{len(items)} items in one request: at most {MAX_ITEMS}; split the file")
    seen: dict[str, int] = {}
    for i, (key, score, _) in enumerate(items, 1):
        if key in seen:
            raise InvalidInput(f"item {i}: key '{key}' is queued twice (first at item {seen[key]})")
        if score != score or score in (float("inf"), float("-inf")):
            raise InvalidInput(f"item {i} (key '{key}'): score must be a finite number")
        seen[key] = i
    ds = get_dataset(db, dataset)
    for key, label in suggestions.items():
        if label not in ds.labels:
            raise InvalidInput(
                f"item {seen.get(key, '?')} (key '{key}'): suggested label {label!r} is not in the label set ({', '.join(ds.labels)})"
            )
    head = get_branch(db, ds, None)
    found = lookup(db, blobs, head.head_pk, list(seen))
    missing = [k for k in seen if k not in found]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise NotFound(f"no example '{missing[0]}'{more} on branch '{ds.default_branch}' of dataset '{dataset}'")
    existing = {
        r.key: r
        for r in db.scalars(
            select(ReviewItem).where(ReviewItem.dataset_id == ds.id, ReviewItem.queue == queue, ReviewItem.key.in_(list(seen)))
        )
    }
    now = utcnow()
    added = 0
    for key, score, reason in items:
        row = existing.get(key)
        if row is None:
            row = ReviewItem(dataset_id=ds.id, queue=queue, key=key)
            db.add(row)
            added += 1
        row.score, row.reason, row.added_by, row.added_at = float(score), reason, by, now
        suggested = suggestions.get(key)
        row.model_id, row.confidence = None, None
        row.suggested, row.given, row.input = suggested, found[key].label if suggested else None, found[key].input if suggested else None
    db.flush()
    return added, len(items) - added


def page_items(db: Session, *, dataset_id: int, queue: str, after: tuple[float, str] | None, limit: int) -> list[ReviewItem]:
    """A page of a queue, highest score first, then by key, after the cursor (score, key)."""
    query = select(ReviewItem).where(ReviewItem.dataset_id == dataset_id, ReviewItem.queue == queue)
    if after is not None:
        score, key = after
        # (score DESC, key ASC) after (s, k): a lower score, or the same score and a later key.
        query = query.where((ReviewItem.score < score) | ((ReviewItem.score == score) & (ReviewItem.key > key)))
    return list(db.scalars(query.order_by(ReviewItem.score.desc(), ReviewItem.key).limit(limit)))


def list_items(db: Session, *, dataset: str, queue: str, after: tuple[float, str] | None, limit: int) -> list[ReviewItem]:
    check_queue_name(queue)
    return page_items(db, dataset_id=get_dataset(db, dataset).id, queue=queue, after=after, limit=limit)


def remove_items(db: Session, *, dataset: str, queue: str, keys: list[str] | None) -> int:
    """Take keys (None: every key) out of a queue; returns how many were removed."""
    check_queue_name(queue)
    ds = get_dataset(db, dataset)
    query = delete(ReviewItem).where(ReviewItem.dataset_id == ds.id, ReviewItem.queue == queue)
    if keys is not None:
        query = query.where(ReviewItem.key.in_(keys))
    return db.execute(query.execution_options(synchronize_session=False)).rowcount


def queue_counts(db: Session, dataset_id: int) -> dict[str, int]:
    """The review queues of a dataset and how many keys each holds."""
    rows = db.execute(
        select(ReviewItem.queue, func.count())
        .where(ReviewItem.dataset_id == dataset_id)
        .group_by(ReviewItem.queue)
        .order_by(ReviewItem.queue)
    )
    return dict(rows.all())
