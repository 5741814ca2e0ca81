"""Staged label edits: a branch's index. Each edit carries the example version its editor saw."""

from fastapi import APIRouter, Query

from server.api import problems
from server.api.deps import CurrentUser, blob_store, read, write
from server.api.pagination import Cursor, Limit, Page, cursor_str, page_from
from server.api.routing import OffLoopRoute
from server.api.schemas import Dropped, EditBatch, EditIn, EditPut
from server.auth.policy import editable_branch, require_reader
from server.datasets.schemas import StagedRead
from server.datasets.staging import list_staged, stage_edits, unstage
from server.errors import InvalidInput, VersionRequired

router = APIRouter(tags=["edits"], route_class=OffLoopRoute)
BRANCH = Query(None, description="Default: the dataset's default branch")
CONFLICT = {
    409: {**problems.CONFLICT[409], "description": "The example changed since you loaded it; the body names its current label and version"},
    **problems.responses(428),
}


def _stage(name: str, branch: str | None, who, items: list[tuple[str, EditIn]]) -> list[StagedRead]:
    require_reader(who, name)
    for key, edit in items:
        if edit.remove == (edit.label is not None):
            raise InvalidInput(f"edit of '{key}': give a label, or remove=true without one")
        if edit.version is None and who.role == "labeler":  # bulk edits without versions are for engineers' files
            raise VersionRequired(
                f"edit of '{key}': a labeler's edit must carry the example's version "
                f"(GET /api/v1/datasets/{name}/examples/{key}), so it cannot overwrite a newer edit unseen"
            )
    store = blob_store()
    versions = {key: e.version for key, e in items if e.version is not None}
    edits = [(key, e.label, e.remove) for key, e in items]

    def stage(db):
        br = editable_branch(db, who, name, branch)
        return br, stage_edits(db, store, dataset=name, branch=br, edits=edits, author=who.name, expected_versions=versions)

    return write(
        who, "edits.stage", lambda r: f"{name}/{r[0]}", stage, detail=lambda r: {"keys": [s.key for s in r[1]][:100], "count": len(r[1])}
    )[1]


@router.get("/datasets/{name}/edits", summary="The staged (uncommitted) edits of a branch, by key")
def list_edits(name: str, who: CurrentUser, branch: str | None = BRANCH, cursor: Cursor = None, limit: Limit = 100) -> Page[StagedRead]:
    require_reader(who, name)
    store = blob_store()
    after = cursor_str(cursor)
    found = read(lambda db: list_staged(db, dataset=name, branch=branch, blobs=store, after=after, limit=limit + 1))
    return page_from(found, limit, lambda s: s.key)


@router.post("/datasets/{name}/edits", summary="Stage many edits at once (all or none)", responses=CONFLICT)
def stage_many(name: str, body: EditBatch, who: CurrentUser, branch: str | None = BRANCH) -> list[StagedRead]:
    return _stage(name, branch, who, [(e.key, e) for e in body.edits])


@router.put("/datasets/{name}/edits/{key:path}", summary="Stage one edit; durable when this answers", responses=CONFLICT)
def stage_one(name: str, key: str, body: EditPut, who: CurrentUser, branch: str | None = BRANCH) -> StagedRead:
    return _stage(name, branch, who, [(key, body)])[0]


@router.delete("/datasets/{name}/edits/{key:path}", summary="Drop one staged edit")
def unstage_one(name: str, key: str, who: CurrentUser, branch: str | None = BRANCH) -> Dropped:
    return _unstage(name, branch, who, [key])


@router.delete("/datasets/{name}/edits", summary="Drop every staged edit of a branch")
def unstage_all(name: str, who: CurrentUser, branch: str | None = BRANCH) -> Dropped:
    return _unstage(name, branch, who, None)


def _unstage(name: str, branch: str | None, who, keys: list[str] | None) -> Dropped:
    require_reader(who, name)

    def drop(db):
        br = editable_branch(db, who, name, branch)
        # A labeler drops only their own edits; someone else's needs an engineer.
        return br, unstage(db, dataset=name, branch=br, keys=keys, by=who.name if who.role == "labeler" else None)

    dropped, kept = write(who, "edits.unstage", lambda r: f"{name}/{r[0]}", drop, detail=lambda r: {"dropped": r[1][0]})[1]
    return Dropped(dropped=dropped, kept=kept)
