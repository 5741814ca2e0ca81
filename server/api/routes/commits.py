"""Commits: history, committing staged edits, diffs and blame."""

from fastapi import APIRouter, Query, Response, status

from server.api import problems
from server.api.deps import CurrentUser, blob_store, read, write
from server.api.pagination import Cursor, Limit, Page, cursor_str, encode_cursor, history_frontier, page_following
from server.api.routing import OffLoopRoute
from server.api.schemas import CommitCreate, DiffOut
from server.auth.policy import editable_branch, require_reader
from server.datasets import history
from server.datasets.datasets import get_dataset
from server.datasets.diff import diff_page, diff_summary
from server.datasets.schemas import BlameEntry, CommitOutcome, CommitRead, DiffSummary
from server.datasets.staging import commit_staged

router = APIRouter(tags=["commits"], route_class=OffLoopRoute)


@router.get("/datasets/{name}/commits", summary="History: commits reachable from a revision, newest first")
def log(
    name: str,
    who: CurrentUser,
    rev: str | None = Query(None, description="Default: the default branch"),
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Page[CommitRead]:
    require_reader(who, name)
    frontier = history_frontier(cursor)
    page, rest = read(lambda db: history.log(db, dataset=name, rev=rev, frontier=frontier, limit=limit))
    return Page(items=page, next_cursor=encode_cursor({"f": rest}) if rest else None)


@router.post(
    "/datasets/{name}/commits",
    status_code=status.HTTP_201_CREATED,
    summary="Commit the staged edits of a branch: 201 with the commit; 200 with commit null when every edit matched the head",
    responses={**problems.CONFLICT, 200: {"model": CommitOutcome, "description": "Every staged edit matched the head: they were dropped"}},
)
def commit(name: str, body: CommitCreate, who: CurrentUser, response: Response) -> CommitOutcome:
    require_reader(who, name)
    store = blob_store()

    def commit_edits(db):
        branch = editable_branch(db, who, name, body.branch)  # checked in the write: protecting it now wins
        return branch, commit_staged(db, store, dataset=name, branch=branch, message=body.message, author=who.name)

    _, outcome = write(
        who,
        "edits.commit",
        lambda r: f"{name}/{r[0]}",
        commit_edits,
        detail=lambda r: {"commit": r[1].commit.id if r[1].commit else None, "dropped": r[1].dropped},
    )
    if outcome.commit is None:
        response.status_code = status.HTTP_200_OK
        return outcome
    from server.datasets.compaction import compact_after

    compact_after(store, outcome.commit.id)
    return outcome


@router.get("/datasets/{name}/commits/{rev:path}", summary="One commit (REV: id, 7+ digit prefix, branch, tag, REV~N)")
def show_commit(name: str, rev: str, who: CurrentUser) -> CommitRead:
    require_reader(who, name)
    return read(lambda db: history.commit_read(db, history.resolve_rev(db, get_dataset(db, name), rev)))


@router.get("/datasets/{name}/diff", summary="What separates two revisions, by key, a page of keys at a time (the `s2 diff --json` shape)")
def diff_revs(
    name: str,
    who: CurrentUser,
    a: str = Query(description="From revision"),
    b: str = Query(description="To revision"),
    cursor: Cursor = None,
    limit: Limit = 1000,
) -> DiffOut:
    require_reader(who, name)
    store = blob_store()
    after = cursor_str(cursor)
    page, last = read(lambda db: diff_page(db, store, dataset=name, rev_a=a, rev_b=b, after=after, limit=limit))
    return DiffOut.model_validate({**page.as_json(), "next_cursor": encode_cursor(last) if last is not None else None})


@router.get(
    "/datasets/{name}/diff/summary",
    summary="How many examples two revisions add, remove, relabel and modify, and the from-to matrix of relabels",
)
def diff_counts(
    name: str,
    who: CurrentUser,
    a: str = Query(description="From revision"),
    b: str = Query(description="To revision"),
) -> DiffSummary:
    """The whole diff counted (O(changes) the first time, then remembered per pair of commits); relabels lists the
    non-zero cells, `from`/`to` null for unlabeled."""
    require_reader(who, name)
    store = blob_store()
    return read(lambda db: diff_summary(db, store, dataset=name, rev_a=a, rev_b=b))


@router.get("/datasets/{name}/blame/{key:path}", summary="Every commit that changed an example, oldest first")
def blame(name: str, key: str, who: CurrentUser, rev: str | None = None, cursor: Cursor = None, limit: Limit = 100) -> Page[BlameEntry]:
    require_reader(who, name)
    found = read(lambda db: history.blame(db, dataset=name, key=key, rev=rev))
    return page_following(found, cursor, limit, lambda e: e.commit)
