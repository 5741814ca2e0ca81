"""Merge requests: pull requests for data. Readers of a dataset open, discuss and resolve; engineers approve and merge."""

from typing import Literal

from fastapi import APIRouter, Query, status
from pydantic import Field

from server.api import problems
from server.api.deps import CurrentUser, blob_store, read, write
from server.api.pagination import Cursor, Limit, Page, cursor_int, page_from
from server.api.routing import OffLoopRoute
from server.api.schemas import Body
from server.auth.policy import ENGINEERING, require_engineer, require_reader
from server.errors import Forbidden
from server.merge_requests import service
from server.merge_requests.schemas import CommentRead, ConflictRead, MergeRequestDetail, MergeRequestRead

router = APIRouter(tags=["merge requests"], route_class=OffLoopRoute)
BASE = "/datasets/{name}/merge-requests"


class MergeRequestCreate(Body):
    source: str = Field(min_length=1, description="The branch with the changes")
    target: str | None = Field(default=None, description="The branch to merge into (default: the dataset's default branch)")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20_000)


class CommentCreate(Body):
    body: str = Field(min_length=1, max_length=20_000)


class ResolutionSet(Body):
    take: Literal["ours", "theirs"] = Field(description="ours keeps the target's row, theirs takes the source's")


@router.get(BASE, summary="A dataset's merge requests, newest first")
def list_requests(
    name: str,
    who: CurrentUser,
    state: Literal["open", "merged", "closed"] | None = Query(None),
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[MergeRequestRead]:
    require_reader(who, name)
    before = cursor_int(cursor)
    found = read(lambda db: service.list_requests(db, dataset=name, state=state, before=before, limit=limit + 1))
    return page_from(found, limit, lambda r: r.number)


@router.post(
    BASE, status_code=status.HTTP_201_CREATED, summary="Open a merge request from a branch into another", responses=problems.CONFLICT
)
def open_request(name: str, body: MergeRequestCreate, who: CurrentUser) -> MergeRequestRead:
    require_reader(who, name)
    store = blob_store()
    return write(
        who,
        "merge_request.open",
        name,
        lambda db: service.open_request(
            db, store, dataset=name, source=body.source, target=body.target, title=body.title, description=body.description, author=who.name
        ),
        detail=lambda r: {"number": r.number, "source": r.source, "target": r.target},
    )


@router.get(BASE + "/{number}", summary="One merge request: what merging it would do now, its check, its discussion")
def get_request(name: str, number: int, who: CurrentUser) -> MergeRequestDetail:
    require_reader(who, name)
    store = blob_store()
    return read(lambda db: service.request_detail(db, store, dataset=name, number=number))


@router.post(BASE + "/{number}/comments", status_code=status.HTTP_201_CREATED, summary="Comment on a merge request")
def comment(name: str, number: int, body: CommentCreate, who: CurrentUser) -> CommentRead:
    require_reader(who, name)
    return write(
        who,
        "merge_request.comment",
        f"{name}!{number}",
        lambda db: service.add_comment(db, dataset=name, number=number, author=who.name, body=body.body),
    )


@router.post(BASE + "/{number}/approve", summary="Approve a merge request (engineer)", responses=problems.CONFLICT)
def approve(name: str, number: int, who: CurrentUser) -> MergeRequestRead:
    require_engineer(who, "approve merge requests")
    return write(who, "merge_request.approve", f"{name}!{number}", lambda db: service.approve(db, dataset=name, number=number, by=who.name))


@router.put(BASE + "/{number}/resolutions/{key:path}", summary="Resolve one conflicting key: keep the target's row or take the source's")
def resolve(name: str, number: int, key: str, body: ResolutionSet, who: CurrentUser) -> ConflictRead:
    require_reader(who, name)
    store = blob_store()

    def work(db):
        _, mr = service.get_request(db, dataset=name, number=number)
        if who.role not in ENGINEERING and who.name != mr.author:
            raise Forbidden(f"only {name}!{number}'s author ({mr.author}) or an engineer may resolve its conflicts")
        return service.resolve(db, store, dataset=name, number=number, key=key, take=body.take, by=who.name)

    return write(who, "merge_request.resolve", f"{name}!{number}", work, detail=lambda r: {"key": r.key, "take": r.take})


@router.post(
    BASE + "/{number}/merge",
    summary="Merge it (engineer): re-checked against both heads, with its resolutions",
    responses=problems.CONFLICT,
)
def merge(name: str, number: int, who: CurrentUser) -> MergeRequestRead:
    require_engineer(who, "merge")
    store = blob_store()
    done = write(
        who,
        "merge_request.merge",
        f"{name}!{number}",
        lambda db: service.merge_request(db, store, dataset=name, number=number, by=who.name),
        detail=lambda r: {"head": r.merge_commit},
    )
    from server.datasets.compaction import compact_after

    compact_after(store, done.merge_commit)
    return done


@router.post(BASE + "/{number}/close", summary="Close it without merging (its author or an engineer)", responses=problems.CONFLICT)
def close(name: str, number: int, who: CurrentUser) -> MergeRequestRead:
    require_reader(who, name)

    def work(db):
        _, mr = service.get_request(db, dataset=name, number=number)
        if who.role not in ENGINEERING and who.name != mr.author:
            raise Forbidden(f"only {name}!{number}'s author ({mr.author}) or an engineer may close it")
        return service.close_request(db, dataset=name, number=number)

    return write(who, "merge_request.close", f"{name}!{number}", work)
