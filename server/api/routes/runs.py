"""Training runs: submit, list, follow live (Server-Sent Events), cancel, retry; watch rules."""

import asyncio
import json
from typing import Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from server.api.deps import CurrentUser, blob_store, read, write
from server.api.pagination import Cursor, Limit, Page, cursor_int, page_from
from server.api.routing import OffLoopRoute
from server.api.schemas import RunCreate, WatchRead, WatchSet
from server.auth.policy import require_engineer
from server.runs import access, service
from server.runs.schemas import RunRead

router = APIRouter(tags=["runs"], route_class=OffLoopRoute)
State = Literal["queued", "running", "succeeded", "failed", "cancelled"]


def _readable_run(who, run_id: int) -> RunRead:
    """The run, if who may read it (server.runs.access holds the rule the pages share)."""
    return read(lambda db: access.readable_run(db, who, run_id))


@router.post(
    "/datasets/{name}/runs",
    status_code=status.HTTP_201_CREATED,
    summary="Train a revision (retrain) now; an identical earlier build answers at once (reused: true) unless force",
)
def submit(name: str, body: RunCreate, who: CurrentUser) -> RunRead:
    require_engineer(who, "start training")
    store = blob_store()
    return write(
        who,
        "run.submit",
        name,
        lambda db: service.submit_run(
            db,
            store,
            dataset=name,
            rev=body.rev,
            spec=body.spec,
            requested_by=who.name,
            from_model=body.from_model,
            force=body.force,
            folds=body.folds,
        ),
        detail=lambda r: {"run": r.id, **({"reused": r.model} if r.reused else {})},
    )


@router.get("/workers", summary="The live workers listening on a queue (a run sent there waits until one does)")
def workers_listening(who: CurrentUser, queue: str = Query("cpu", description="cpu or gpu")) -> dict:
    require_engineer(who, "list workers")
    return read(lambda db: service.workers_listening(db, queue))


@router.get("/runs", summary="Training runs, newest first")
def list_runs(
    who: CurrentUser, dataset: str | None = None, state: State | None = None, cursor: Cursor = None, limit: Limit = 50
) -> Page[RunRead]:
    access.check_run_listing(who, dataset)
    before = cursor_int(cursor)
    found = read(lambda db: service.list_runs(db, dataset=dataset, limit=limit + 1, before=before, state=state))
    return page_from(found, limit, lambda r: r.id)


@router.get("/runs/{run_id}", summary="One run: state, progress, error, model")
def get_run(run_id: int, who: CurrentUser) -> RunRead:
    return _readable_run(who, run_id)


@router.post("/runs/{run_id}/cancel", summary="Cancel a run (a queued one at once, a running one at its next step)")
def cancel(run_id: int, who: CurrentUser) -> RunRead:
    require_engineer(who, "cancel training")
    return write(who, "run.cancel", str(run_id), lambda db: service.cancel_run(db, run_id))


@router.post(
    "/runs/{run_id}/retry",
    status_code=status.HTTP_201_CREATED,
    summary="Retry a failed or cancelled run: a new run of the same commit and spec",
)
def retry(run_id: int, who: CurrentUser) -> RunRead:
    require_engineer(who, "retry training")
    return write(
        who,
        "run.retry",
        str(run_id),
        lambda db: service.retry_run(db, run_id, requested_by=who.name),
        detail=lambda r: {"run": r.id},
    )


@router.get(
    "/runs/{run_id}/events",
    summary="Follow a run live: Server-Sent Events until it ends",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(
    run_id: int, who: CurrentUser, request: Request, interval: float = Query(0.5, ge=0.05, le=10, description="Seconds between checks")
) -> StreamingResponse:
    first = await run_in_threadpool(_readable_run, who, run_id)

    async def stream():
        run, last, idle = first, None, 0.0
        while True:
            body = run.model_dump_json()
            if body != last:
                yield f"event: run\nid: {run_id}\ndata: {body}\n\n"
                last, idle = body, 0.0
            if run.state in service.TERMINAL:
                yield f"event: end\ndata: {json.dumps({'state': run.state, 'model': run.model})}\n\n"
                return
            if idle >= 15:
                yield ": still running\n\n"  # keeps proxies from closing a quiet stream
                idle = 0.0
            await asyncio.sleep(interval)
            idle += interval
            if await request.is_disconnected():
                return
            run = await run_in_threadpool(_readable_run, who, run_id)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.put("/datasets/{name}/watches/{branch:path}", summary="Train every new head of a branch with this spec")
def watch(name: str, branch: str, body: WatchSet, who: CurrentUser) -> WatchRead:
    require_engineer(who, "watch branches")
    return write(
        who, "watch.set", f"{name}/{branch}", lambda db: service.watch(db, dataset=name, branch=branch, spec=body.spec, folds=body.folds)
    )


@router.delete("/datasets/{name}/watches/{branch:path}", status_code=status.HTTP_204_NO_CONTENT, summary="Stop training a branch")
def unwatch(name: str, branch: str, who: CurrentUser) -> None:
    require_engineer(who, "unwatch branches")
    write(who, "watch.unset", f"{name}/{branch}", lambda db: service.unwatch(db, dataset=name, branch=branch))
