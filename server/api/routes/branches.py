"""Branches, tags and merges: the refs of a dataset."""

from fastapi import APIRouter, Response, status

from server.api import problems
from server.api.deps import CurrentUser, blob_store, read, write
from server.api.pagination import Cursor, Limit, Page, cursor_str, page_from
from server.api.routing import OffLoopRoute
from server.api.schemas import (
    BranchCreate,
    BranchUpdate,
    MergeRead,
    MergeRequest,
    MergeResolution,
    PendingMergeRead,
    ResolveRead,
    TagCreate,
    TagRead,
)
from server.auth.policy import require_engineer, require_reader
from server.datasets import pending, refs
from server.datasets.schemas import BranchRead
from server.errors import Conflict

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


@router.delete(
    "/datasets/{name}/branches/{branch:path}",
    summary="Delete a branch (its commits stay; the default and protected branches are refused)",
)
def delete_branch(name: str, branch: str, who: CurrentUser) -> dict:
    require_engineer(who, "delete branches")
    return write(
        who,
        "branch.delete",
        f"{name}/{branch}",
        lambda db: refs.delete_branch(db, dataset=name, branch=branch),
        detail=lambda r: {"head": r["head"], "dropped_staged": r["dropped_staged"]},
    )


@router.delete("/datasets/{name}/tags/{tag:path}", summary="Delete a tag (the commit it names stays)")
def delete_tag(name: str, tag: str, who: CurrentUser) -> TagRead:
    require_engineer(who, "delete tags")
    done = write(
        who, "tag.delete", f"{name}/{tag}", lambda db: refs.delete_tag(db, dataset=name, tag=tag), detail=lambda r: {"commit": r["commit"]}
    )
    return TagRead(name=done["name"], commit=done["commit"])


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
    "/datasets/{name}/merges",
    summary="Merge a revision into a branch (three-way by key; conflicts are a 409 listing every one in `conflicts`)",
    responses=problems.CONFLICT,
)
def merge_into(name: str, body: MergeRequest, who: CurrentUser) -> MergeRead:
    """A conflicting merge writes nothing to the branch but records a merge in progress (see /merges/pending)."""
    require_engineer(who, "merge")
    store = blob_store()
    resolutions = {k: r.as_dict() for k, r in (body.resolutions or {}).items()}
    try:
        how, head = write(
            who,
            "branch.merge",
            f"{name}/{body.into}",
            lambda db: pending.merge_tracked(
                db,
                store,
                dataset=name,
                source=body.source,
                into=body.into,
                author=who.name,
                message=body.message,
                strategy=body.strategy,
                resolutions=resolutions,
            ),
            detail=lambda r: {"source": body.source, "outcome": r[0], "head": r[1].id},
        )
    except Conflict as exc:
        if "conflicts" in (conflict := exc).extra:
            write(
                who,
                "merge.pending",
                f"{name}/{body.into}",
                lambda db: pending.record_conflicted(
                    db, dataset=name, exc=conflict, author=who.name, message=body.message, resolutions=resolutions
                ),
                detail=lambda r: {"source": body.source, "conflicts": len(conflict.extra["conflicts"])},
            )
        raise
    if how == "merge":
        from server.datasets.compaction import compact_after

        compact_after(store, head.id)
    return MergeRead(outcome=how, head=head.id, changes=head.changes if how == "merge" else 0)


@router.get("/datasets/{name}/merges/pending", summary="The conflicted merge in progress into a branch, with every current conflict")
def get_pending_merge(name: str, who: CurrentUser, into: str | None = None) -> PendingMergeRead:
    require_reader(who, name)
    store = blob_store()
    return PendingMergeRead.model_validate(read(lambda db: pending.pending_json(db, store, dataset=name, into=into)))


@router.delete(
    "/datasets/{name}/merges/pending", status_code=status.HTTP_204_NO_CONTENT, summary="Abort the merge in progress into a branch"
)
def abort_pending_merge(name: str, who: CurrentUser, into: str | None = None) -> Response:
    require_engineer(who, "abort merges")
    write(who, "merge.abort", lambda target: f"{name}/{target}", lambda db: pending.abort(db, dataset=name, into=into))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/datasets/{name}/merges/pending/resolutions/{key:path}",
    summary="Resolve one conflicting key of the merge in progress; the merge completes when none is left",
    responses=problems.CONFLICT,
)
def resolve_pending_merge(
    name: str, key: str, body: MergeResolution, who: CurrentUser, into: str | None = None, source: str | None = None
) -> ResolveRead:
    require_engineer(who, "merge")
    store = blob_store()
    done = write(
        who,
        "merge.resolve",
        lambda r: f"{name}/{r['into']}",
        lambda db: pending.resolve(db, store, dataset=name, into=into, key=key, resolution=body.as_dict(), author=who.name, source=source),
        detail=lambda r: {"key": key, **body.as_dict(), "state": r["state"], "head": r.get("head")},
    )
    if done["state"] == "merged" and done["outcome"] == "merge":
        from server.datasets.compaction import compact_after

        compact_after(store, done["head"])
    return ResolveRead(**done)
