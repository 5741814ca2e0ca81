"""Branches, tags and merges: the refs of a dataset."""

from fastapi import APIRouter, status

from server.api import problems
from server.api.deps import CurrentUser, blob_store, read, write
from server.api.pagination import Cursor, Limit, Page, cursor_str, page_from
from server.api.routing import OffLoopRoute
from server.api.schemas import BranchCreate, BranchUpdate, MergeRead, MergeRequest, TagCreate, TagRead
from server.auth.policy import require_engineer, require_reader
from server.datasets import refs
from server.datasets.merge import merge
from server.datasets.schemas import BranchRead

router = APIRouter(tags=["branches"], route_class=OffLoopRoute)


@router.get("/datasets/{name}/branches", summary="List branches and their heads")
def list_branches(name: str, who: CurrentUser, cursor: Cursor = None, limit: Limit = 100) -> Page[BranchRead]:
    require_reader(who, name)
    after = cursor_str(cursor)
    found = read(lambda db: refs.list_branches(db, dataset=name, after=after, limit=limit + 1))
    return page_from(found, limit, lambda b: b.name)


@router.post("/datasets/{name}/branches", status_code=status.HTTP_201_CREATED, summary="Create a branch", responses=problems.CONFLICT)
def create_branch(name: str, body: BranchCreate, who: CurrentUser) -> BranchRead:
    require_engineer(who, "create branches")
    return write(
        who,
        "branch.create",
        f"{name}/{body.name}",
        lambda db: refs.create_branch(db, dataset=name, name=body.name, from_rev=body.from_rev),
    )


@router.patch("/datasets/{name}/branches/{branch:path}", summary="Protect or unprotect a branch")
def update_branch(name: str, branch: str, body: BranchUpdate, who: CurrentUser) -> BranchRead:
    require_engineer(who, "protect branches")
    return write(
        who,
        "branch.protect" if body.protected else "branch.unprotect",
        f"{name}/{branch}",
        lambda db: refs.set_protected(db, dataset=name, branch=branch, protected=body.protected),
    )


@router.get("/datasets/{name}/tags", summary="List tags")
def list_tags(name: str, who: CurrentUser, cursor: Cursor = None, limit: Limit = 100) -> Page[TagRead]:
    require_reader(who, name)
    after = cursor_str(cursor)
    found = read(lambda db: refs.list_tags(db, dataset=name, after=after, limit=limit + 1))
    return page_from([TagRead(name=n, commit=c) for n, c in found], limit, lambda t: t.name)


@router.post(
    "/datasets/{name}/tags", status_code=status.HTTP_201_CREATED, summary="Tag a revision (tags never move)", responses=problems.CONFLICT
)
def create_tag(name: str, body: TagCreate, who: CurrentUser) -> TagRead:
    require_engineer(who, "create tags")
    commit = write(who, "tag.create", f"{name}/{body.name}", lambda db: refs.create_tag(db, dataset=name, name=body.name, rev=body.rev))
    return TagRead(name=body.name, commit=commit)


@router.post(
    "/datasets/{name}/merges", summary="Merge a revision into a branch (three-way by key; conflicts are a 409)", responses=problems.CONFLICT
)
def merge_into(name: str, body: MergeRequest, who: CurrentUser) -> MergeRead:
    require_engineer(who, "merge")
    store = blob_store()
    how, head = write(
        who,
        "branch.merge",
        f"{name}/{body.into}",
        lambda db: merge(db, store, dataset=name, source=body.source, into=body.into, author=who.name, message=body.message),
        detail=lambda r: {"source": body.source, "outcome": r[0], "head": r[1].id},
    )
    if how == "merge":
        from server.datasets.compaction import compact_after

        compact_after(store, head.id)
    return MergeRead(outcome=how, head=head.id, changes=head.changes if how == "merge" else 0)
