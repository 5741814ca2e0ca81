"""Commits: history, committing staged edits, diffs and blame."""

from fastapi import APIRouter, Query, status

from server.api import problems
from server.api.deps import CurrentUser, blob_store, read, write
from server.api.pagination import Cursor, Limit, Page, page_following
from server.api.schemas import CommitCreate, DiffOut
from server.auth.policy import editable_branch, require_reader
from server.datasets import service
from server.datasets.diff import diff
from server.datasets.history import resolve_rev
from server.datasets.schemas import BlameEntry, CommitRead
from server.datasets.staging import commit_staged
from server.errors import NothingToCommit

router = APIRouter(tags=["commits"])


@router.get("/datasets/{name}/commits", summary="History: commits reachable from a revision, newest first")
def log(
    name: str,
    who: CurrentUser,
    rev: str | None = Query(None, description="Default: the default branch"),
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Page[CommitRead]:
    require_reader(who, name)
    found = read(lambda db: service.log(db, dataset=name, rev=rev))
    return page_following(found, cursor, limit, lambda c: c.id)


@router.post(
    "/datasets/{name}/commits",
    status_code=status.HTTP_201_CREATED,
    summary="Commit the staged edits of a branch (409 when nothing is staged)",
    responses=problems.CONFLICT,
)
def commit(name: str, body: CommitCreate, who: CurrentUser) -> CommitRead:
    require_reader(who, name)
    store = blob_store()

    def commit_edits(db):
        branch = editable_branch(db, who, name, body.branch)  # checked in the write: protecting it now wins
        return branch, commit_staged(db, store, dataset=name, branch=branch, message=body.message, author=who.name)

    branch, made = write(
        who, "edits.commit", lambda r: f"{name}/{r[0]}", commit_edits, detail=lambda r: {"commit": r[1].id if r[1] else None}
    )
    if made is None:
        raise NothingToCommit(
            f"nothing to commit on branch '{branch}' of dataset '{name}': every staged edit matched the head (they were dropped)"
        )
    from server.datasets.commits import compact_after

    compact_after(store, made.id)
    return made


@router.get("/datasets/{name}/commits/{rev:path}", summary="One commit (REV: id, 7+ digit prefix, branch, tag, REV~N)")
def show_commit(name: str, rev: str, who: CurrentUser) -> CommitRead:
    require_reader(who, name)
    return read(lambda db: service.commit_read(resolve_rev(db, service.get_dataset(db, name), rev)))


@router.get("/datasets/{name}/diff", summary="What separates two revisions, by key (the `s2 diff --json` shape)")
def diff_revs(
    name: str, who: CurrentUser, a: str = Query(description="From revision"), b: str = Query(description="To revision")
) -> DiffOut:
    require_reader(who, name)
    store = blob_store()
    return DiffOut.model_validate(read(lambda db: diff(db, store, dataset=name, rev_a=a, rev_b=b)).as_json())


@router.get("/datasets/{name}/blame/{key:path}", summary="Every commit that changed an example, oldest first")
def blame(name: str, key: str, who: CurrentUser, rev: str | None = None, cursor: Cursor = None, limit: Limit = 100) -> Page[BlameEntry]:
    require_reader(who, name)
    found = read(lambda db: service.blame(db, dataset=name, key=key, rev=rev))
    return page_following(found, cursor, limit, lambda e: e.commit)
