"""Labeling queues: the examples a labeler works through on a branch, each with the model's guess."""

from fastapi import APIRouter, Query
from pydantic import BaseModel

from server.api.deps import CurrentUser, blob_store, read
from server.api.pagination import Cursor, Limit, Page, cursor_str, encode_cursor
from server.api.routing import OffLoopRoute
from server.auth.policy import require_reader
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


class QueueItemRead(BaseModel):
    example: ExampleRead
    guess: GuessRead | None


@router.get(
    "/datasets/{name}/queue",
    summary="A page of a labeling queue on a branch, with the model's guesses",
    description="Queues: `all`, `unlabeled`, `changed` (staged on this branch). A filtered queue reads a bounded "
    "number of rows per request: a page may be short, even empty, with a next_cursor to go on from; null means the end.",
)
def queue(
    name: str,
    who: CurrentUser,
    branch: str | None = Query(None, description="Default: the dataset's default branch"),
    queue: str = Query("all", description="all, unlabeled or changed"),
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[QueueItemRead]:
    from labeling.queues import queue_page

    require_reader(who, name)
    after = cursor_str(cursor)
    store = blob_store()
    items, more = read(lambda db: queue_page(db, store, dataset=name, branch=branch, queue=queue, after=after, limit=limit))
    return Page(
        items=[
            QueueItemRead(
                example=i.example,
                guess=GuessRead(
                    model=i.guess.model,
                    label=i.guess.label,
                    confidence=i.guess.confidence,
                    top=[LabelScore(label=a, p=b) for a, b in i.guess.top],
                )
                if i.guess
                else None,
            )
            for i in items
        ],
        next_cursor=encode_cursor(more) if more is not None else None,
    )
