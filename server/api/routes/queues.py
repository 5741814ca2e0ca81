"""Labeling queues: the examples a labeler works through on a branch, each with the model's guess."""

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from server.api.deps import CurrentUser, blob_store, read, write
from server.api.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor, page_from
from server.api.routing import OffLoopRoute
from server.auth.policy import require_engineer, require_reader
from server.datasets.schemas import ExampleRead

router = APIRouter(tags=["labeling"], route_class=OffLoopRoute)


class LabelScore(BaseModel):
    label: str
    p: float


class GuessRead(BaseModel):
    """The guessing model's (production, else newest) prediction for an example."""

    model: int
    label: str
    confidence: float
    top: list[LabelScore]


class SuggestionRead(BaseModel):
    """A label suggested for a queued example: accept it (POST .../queues/{queue}/accept) or keep the label (.../keep)."""

    label: str
    confidence: float | None
    given: str | None = Field(description="the example's label when it was suggested")
    by: str = Field(description="who suggested it: a model (DATASET@N) or the engineer who queued it")


class VotesRead(BaseModel):
    """Consensus queues: how many of the labels an example needs are in, and the reader's own (never the others')."""

    cast: int
    required: int
    mine: str | None = Field(description="the reader's own vote, if they voted")


class QueueItemRead(BaseModel):
    example: ExampleRead
    guess: GuessRead | None = Field(description="the model's guess; none in a consensus queue (it would anchor the votes)")
    score: float | None = None  # review queues: its score
    reason: str | None = None  # review queues: why it is queued (none in a consensus queue)
    suggestion: SuggestionRead | None = None  # review queues: a label suggested for it (none in a consensus queue)
    votes: VotesRead | None = None  # consensus queues: the votes in, counts only


class QueuePage(BaseModel):
    """One page of a queue; pass next_cursor back as ?cursor= (null: the end). A filtered page may be short."""

    items: list[QueueItemRead]
    next_cursor: str | None


def _guess(g) -> GuessRead | None:
    return GuessRead(model=g.model, label=g.label, confidence=g.confidence, top=[LabelScore(label=a, p=b) for a, b in g.top]) if g else None


@router.get(
    "/datasets/{name}/queue",
    summary="A page of a labeling queue on a branch, with the model's guesses",
    description="Queues: `all`, `unlabeled`, `changed` (staged on this branch), or a review queue's name. Filters narrow "
    "any of them; a filtered page reads a bounded number of rows per request, so it may be short, even empty, with a "
    "next_cursor to go on from; null means the end. A consensus queue's items carry no guess, suggestion or reason, "
    "only its vote counts and the reader's own vote.",
)
def queue(
    name: str,
    who: CurrentUser,
    branch: str | None = Query(None, description="Default: the dataset's default branch"),
    queue: str = Query("all", description="all, unlabeled, changed, or a review queue"),
    label: str | None = Query(None, description="Only examples labeled this now (empty: unlabeled)"),
    predicted: str | None = Query(None, description="Only examples the model guesses as this"),
    min_confidence: float | None = Query(None, ge=0, le=1, description="Only guesses at least this confident"),
    max_confidence: float | None = Query(None, ge=0, le=1, description="Only guesses at most this confident"),
    cursor: Cursor = None,
    limit: Limit = 50,
) -> QueuePage:
    from labeling.queues import Filters, queue_page

    require_reader(who, name)
    after = decode_cursor(cursor)
    store = blob_store()
    filters = Filters(label=label, predicted=predicted, min_confidence=min_confidence, max_confidence=max_confidence)
    items, more = read(
        lambda db: queue_page(
            db, store, dataset=name, branch=branch, queue=queue, after=after, limit=limit, filters=filters, voter=who.name
        )
    )
    return QueuePage(
        items=[
            QueueItemRead(
                example=i.example,
                guess=_guess(i.guess),
                score=i.score,
                reason=i.reason,
                suggestion=SuggestionRead(**i.suggestion) if i.suggestion else None,
                votes=VotesRead(**i.votes) if i.votes else None,
            )
            for i in items
        ],
        next_cursor=encode_cursor(more) if more is not None else None,
    )


class ReviewItemIn(BaseModel):
    key: str = Field(min_length=1, max_length=512)
    score: float = Field(0.0, description="Higher is reviewed first")
    reason: str | None = Field(None, max_length=2000, description="Why it is queued, shown to the labeler")
    suggested: str | None = Field(
        None, max_length=256, description="A label to suggest: the labeler accepts it with one key, or keeps theirs"
    )


class ReviewItemsIn(BaseModel):
    items: list[ReviewItemIn] = Field(min_length=1, max_length=10_000)


class ReviewAdded(BaseModel):
    added: int
    updated: int


class ReviewItemRead(BaseModel):
    key: str
    score: float
    reason: str | None
    added_by: str
    added_at: datetime
    # the data engine's queues (label-errors, uncertain): the suggestion and the example as it was ranked
    model_id: int | None = None
    suggested: str | None = None
    confidence: float | None = None
    given: str | None = None


class ReviewRemoved(BaseModel):
    removed: int


@router.post("/datasets/{name}/queues/{queue}", summary="Queue examples for review (engineer): new keys added, queued ones re-scored")
def add_review(name: str, queue: str, body: ReviewItemsIn, who: CurrentUser) -> ReviewAdded:
    from labeling.review import add_items

    require_engineer(who, "fill review queues")
    store = blob_store()
    items = [(i.key, i.score, i.reason) for i in body.items]
    suggestions = {i.key: i.suggested for i in body.items if i.suggested is not None}
    added, updated = write(
        who,
        "review.add",
        f"{name}/{queue}",
        lambda db: add_items(db, store, dataset=name, queue=queue, items=items, by=who.name, suggestions=suggestions),
        detail=lambda r: {"added": r[0], "updated": r[1]},
    )
    return ReviewAdded(added=added, updated=updated)


@router.get("/datasets/{name}/queues/{queue}", summary="A review queue's keys, highest score first")
def list_review(name: str, queue: str, who: CurrentUser, cursor: Cursor = None, limit: Limit = 100) -> Page[ReviewItemRead]:
    from labeling.review import list_items

    require_reader(who, name)
    after = decode_cursor(cursor)
    if after is not None and not (isinstance(after, list) and len(after) == 2):
        from server.errors import InvalidInput

        raise InvalidInput(f"cursor {cursor!r} does not belong to this list")
    found = read(lambda db: list_items(db, dataset=name, queue=queue, after=tuple(after) if after else None, limit=limit + 1))
    rows = [
        ReviewItemRead(
            key=r.key,
            score=r.score,
            reason=r.reason,
            added_by=r.added_by,
            added_at=r.added_at,
            model_id=r.model_id,
            suggested=r.suggested,
            confidence=r.confidence,
            given=r.given,
        )
        for r in found
    ]
    return page_from(rows, limit, lambda r: [r.score, r.key])


@router.delete("/datasets/{name}/queues/{queue}", summary="Take keys out of a review queue (all of them without ?key=) (engineer)")
def remove_review(
    name: str, queue: str, who: CurrentUser, key: list[str] | None = Query(None, description="Repeat for several")
) -> ReviewRemoved:
    from labeling.review import remove_items

    require_engineer(who, "empty review queues")
    removed = write(
        who,
        "review.remove",
        f"{name}/{queue}",
        lambda db: remove_items(db, dataset=name, queue=queue, keys=key),
        detail=lambda r: {"removed": r},
    )
    return ReviewRemoved(removed=removed)
