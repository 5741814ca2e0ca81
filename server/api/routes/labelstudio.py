"""The Label Studio bridge over REST: link a dataset to a project, push tasks, pull annotations, the webhook, signed media.

Two routes take no API token: Label Studio's webhook (it proves itself with the link's secret in a header) and the
signed media URLs that Label Studio's browser loads images from (each carries an expiry and an HMAC signature).
"""

import logging
import threading
import time
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from server.api import problems
from server.api.deps import CurrentUser, blob_store, read, write
from server.api.routing import OffLoopRoute
from server.auth.policy import require_engineer, require_reader
from server.errors import S2Error

router = APIRouter(tags=["labelstudio"], route_class=OffLoopRoute)
log = logging.getLogger("s2.labelstudio")
WEBHOOK_ACTOR = "labelstudio-webhook"  # who the webhook's pulls are by (the annotators are each edit's author)
UPSTREAM = problems.responses(502)  # Label Studio could not be reached, or failed: the detail names its address


class LinkRead(BaseModel):
    """A dataset's link to a Label Studio project (the token s2 acts with is never shown)."""

    dataset: str
    branch: str = Field(description="the branch pushed from and pulled into")
    url: str = Field(description="Label Studio's address")
    project: int
    title: str
    project_url: str = Field(description="the project's task list in Label Studio")
    webhook: bool = Field(description="Label Studio calls s2 when an annotation is made: no pull needed")
    connected_by: str
    connected_at: datetime
    last_push_at: datetime | None
    last_pull_at: datetime | None
    tasks: int = Field(description="examples pushed as tasks")
    states: dict[str, int] = Field(description="pushed examples by state: pushed, applied, agreed, conflict, invalid, disputed")
    last_pull: dict | None = Field(description="the last pull's counts and commit")


class ConnectIn(BaseModel):
    url: str = Field(max_length=1024, description="Label Studio's address, http(s)://host[:port]")
    token: str = Field(min_length=1, max_length=1024, description="a Label Studio API token (Account & Settings); never shown back")
    branch: str | None = Field(None, max_length=256, description="default: the default branch")
    project: int | None = Field(None, ge=1, le=2**31 - 1, description="an existing project (default: a new one, or the linked one)")
    title: str | None = Field(None, max_length=256, description="a new project's title")
    webhook: bool = Field(False, description="also register a webhook: annotations land in s2 within seconds (needs S2_PUBLIC_URL)")


class PushIn(BaseModel):
    queue: str = Field("unlabeled", max_length=128, description="a labeling queue (unlabeled, all, a review queue)")
    rev: str | None = Field(None, max_length=200, description="push a revision's examples instead (queue unlabeled or all)")
    limit: int | None = Field(None, ge=1, le=10_000_000, description="push at most this many")


class PushRead(LinkRead):
    pushed: int = Field(description="tasks created")
    with_predictions: int = Field(description="of them, pre-annotated with the current model's guess")
    recovered: int = Field(description="tasks of an interrupted push found in the project (not sent twice)")
    queue: str


class PullRead(BaseModel):
    """What a pull took: a commit of the annotations, and what it did not apply (with why)."""

    model_config = ConfigDict(extra="allow")  # the service's whole report, as the local CLI prints it
    project: int
    commit: str | None = Field(description="the commit of the pulled labels (null: nothing changed)")
    tasks: int
    applied: int
    agreed: int = Field(description="labels several annotators agreed on")
    unchanged: int = Field(description="tasks whose annotations were already taken")
    already_labeled: int
    skipped: int = Field(description="annotations skipped (cancelled) in Label Studio")
    not_from_s2: int
    conflicts: int = Field(description="examples relabeled in s2 since they were pushed: not overwritten")
    disputed: int = Field(description="examples the annotators disagreed on: queued in `disputed`")
    invalid: int = Field(description="choices that are not labels of the dataset")
    conflicts_list: list[dict]
    disputed_list: list[dict]
    invalid_list: list[dict]
    status: LinkRead


class TaskRead(BaseModel):
    key: str
    task: int | None = Field(description="the task's id in Label Studio")
    note: str | None = Field(description="why it is in this state")
    synced_at: datetime | None


class Disconnected(BaseModel):
    dataset: str
    project: int
    url: str
    tasks_forgotten: int
    webhook_removed: bool


class Accepted(BaseModel):
    accepted: list[int] = Field(description="the tasks whose annotations s2 pulls next")


def _settings():
    from server.config import get_settings

    return get_settings()


def _link_detail(done: dict) -> dict:
    return {"url": done["url"], "project": done["project"], "branch": done["branch"]}


def _enable_after_connect(dataset: str, linked: dict, public_url: str | None) -> dict:
    """Register the webhook of a link just made; a failure says that the link stands."""
    from labeling.labelstudio import webhook

    try:
        return webhook.enable(dataset=dataset, public_url=public_url)
    except S2Error as exc:
        raise type(exc)(
            f"linked '{dataset}' to Label Studio project {linked['project']}, but its webhook was not registered: {exc}", extra=exc.extra
        ) from None


def _pull_counts(done: dict) -> dict:
    """A pull's audit detail: its commit and counts (not its lists)."""
    return {k: v for k, v in done.items() if not k.endswith("_list") and k != "status"}


@router.get("/datasets/{name}/labelstudio", summary="A dataset's link to Label Studio: project, branch, tasks by state, last pull")
def link_status(name: str, who: CurrentUser) -> LinkRead:
    from labeling.labelstudio.bridge import status

    require_reader(who, name)
    return LinkRead(**read(lambda db: status(db, dataset=name)))


@router.put(
    "/datasets/{name}/labelstudio",
    summary="Link a dataset branch to a Label Studio project (a new one made for the dataset, or an existing one) (engineer)",
    responses=UPSTREAM,
)
def connect(name: str, body: ConnectIn, who: CurrentUser) -> LinkRead:
    from labeling.labelstudio.bridge import connect as link

    require_engineer(who, "link datasets to Label Studio")
    done = link(dataset=name, url=body.url, token=body.token, branch=body.branch, project=body.project, title=body.title, by=who.name)
    write(who, "labelstudio.connect", name, lambda db: done, detail=_link_detail)
    if body.webhook:
        done = _enable_after_connect(name, done, _settings().public_url)
        write(who, "labelstudio.webhook.on", name, lambda db: done, detail=_link_detail)
    return LinkRead(**done)


@router.delete(
    "/datasets/{name}/labelstudio",
    summary="Unlink a dataset (its webhook is deleted in Label Studio first); nothing in Label Studio or the dataset is deleted",
    responses=UPSTREAM,
)
def disconnect(
    name: str,
    who: CurrentUser,
    force: bool = Query(False, description="unlink even when Label Studio cannot be reached to delete the webhook"),
) -> Disconnected:
    from labeling.labelstudio import bridge, webhook

    require_engineer(who, "unlink datasets from Label Studio")
    hooked = read(lambda db: bridge.get_link(db, name)[1].webhook_id is not None)
    removed = hooked and not force
    if removed:
        webhook.disable(dataset=name)
    done = write(who, "labelstudio.disconnect", name, lambda db: bridge.disconnect(db, dataset=name) | {"webhook_removed": removed})
    return Disconnected(**done)


@router.post(
    "/datasets/{name}/labelstudio/push",
    summary="Push examples (a queue's, or a revision's) to the linked project as tasks, with the current model's guesses (engineer)",
    responses=UPSTREAM,
)
def push(name: str, body: PushIn, who: CurrentUser) -> PushRead:
    from labeling.labelstudio.bridge import push as send

    require_engineer(who, "push to Label Studio")
    settings = _settings()
    done = send(
        blob_store(),
        dataset=name,
        queue=body.queue,
        rev=body.rev,
        limit=body.limit,
        public_url=settings.public_url,
        ttl_s=settings.media_url_ttl_s,
        batch=settings.labelstudio_batch,
    )
    detail = {k: done[k] for k in ("pushed", "with_predictions", "recovered", "queue")} | {"rev": body.rev}
    write(who, "labelstudio.push", name, lambda db: done, detail=lambda r: detail)
    return PushRead(**done)


@router.post(
    "/datasets/{name}/labelstudio/pull",
    summary="Pull the linked project's annotations: staged with their provenance and committed on the linked branch (engineer)",
    responses=UPSTREAM | problems.CONFLICT,
)
def pull(name: str, who: CurrentUser) -> PullRead:
    from labeling.labelstudio.pull import pull as take

    require_engineer(who, "pull from Label Studio")
    done = take(blob_store(), dataset=name, by=who.name, batch=_settings().labelstudio_batch)
    write(who, "labelstudio.pull", name, lambda db: done, detail=_pull_counts)
    return PullRead(**done)


@router.post(
    "/datasets/{name}/labelstudio/webhook",
    summary="Register (again, with a new secret) the project's webhook to s2: annotations land within seconds (engineer)",
    responses=UPSTREAM,
)
def webhook_on(name: str, who: CurrentUser) -> LinkRead:
    from labeling.labelstudio import webhook

    require_engineer(who, "set up Label Studio webhooks")
    done = webhook.enable(dataset=name, public_url=_settings().public_url)
    write(who, "labelstudio.webhook.on", name, lambda db: done, detail=_link_detail)
    return LinkRead(**done)


@router.delete(
    "/datasets/{name}/labelstudio/webhook",
    summary="Delete the project's webhook to s2 (pull still works) (engineer)",
    responses=UPSTREAM,
)
def webhook_off(name: str, who: CurrentUser) -> LinkRead:
    from labeling.labelstudio import webhook

    require_engineer(who, "remove Label Studio webhooks")
    done = webhook.disable(dataset=name)
    write(who, "labelstudio.webhook.off", name, lambda db: done, detail=_link_detail)
    return LinkRead(**done)


@router.get("/datasets/{name}/labelstudio/tasks", summary="Pushed examples in one state (conflict, invalid, disputed), with why")
def tasks(
    name: str,
    who: CurrentUser,
    state: Literal["conflict", "invalid", "disputed"] = Query("conflict"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[TaskRead]:
    from labeling.labelstudio.bridge import conflicts

    require_reader(who, name)
    return [TaskRead(**t) for t in read(lambda db: conflicts(db, dataset=name, state=state, limit=limit))]


# -- called by Label Studio, with no API token ----------------------------------------------------------------------


_waiting: dict[str, list[int]] = {}  # dataset -> task ids that webhook calls asked for while its pull was running
_waiting_guard = threading.Lock()


def pull_for_webhook(name: str, ids: list[int]) -> None:
    """The pull webhook calls asked for, run after their answer was sent; a failure is logged (Label Studio is not waiting).

    One thread per dataset pulls: the tasks of calls made meanwhile join the next round, so a slow Label Studio never
    holds more than one of the API's threads per dataset (each would otherwise wait on the dataset's pull lock).
    """
    with _waiting_guard:
        if name in _waiting:  # a pull of this dataset is under way: it takes these next
            _waiting[name].extend(i for i in ids if i not in _waiting[name])
            return
        _waiting[name] = list(ids)
    try:
        while True:
            with _waiting_guard:
                todo = _waiting[name]
                if not todo:
                    del _waiting[name]
                    return
                _waiting[name] = []
            _pull_tasks(name, todo)
    except BaseException:
        with _waiting_guard:
            _waiting.pop(name, None)  # the next call starts a pull again
        raise


def _pull_tasks(name: str, ids: list[int]) -> None:
    from labeling.labelstudio.pull import pull as take
    from server.auth.service import record
    from server.db import run_in_transaction

    try:
        done = take(blob_store(), dataset=name, by=WEBHOOK_ACTOR, task_ids=ids, batch=_settings().labelstudio_batch)
        run_in_transaction(lambda db: record(db, WEBHOOK_ACTOR, "labelstudio.pull", name, _pull_counts(done) | {"task_ids": ids[:100]}))
    except S2Error as exc:
        log.error("Label Studio webhook: pulling tasks %s of dataset '%s' failed: %s", ids, name, exc)
    except Exception:
        log.exception("Label Studio webhook: pulling tasks %s of dataset '%s' failed", ids, name)


@router.post(
    "/labelstudio/webhook/{name}",
    status_code=202,
    summary="Label Studio's webhook (no API token: the link's secret in the X-S2-Webhook-Secret header); the tasks are pulled after the answer",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def webhook_call(name: str, request: Request, background: BackgroundTasks) -> Accepted:
    import json

    from labeling.labelstudio.webhook import HEADER, check_secret, task_ids
    from server.errors import InvalidInput

    sent = request.headers.get(HEADER)
    await run_in_threadpool(read, lambda db: check_secret(db, name, sent))
    raw = await request.body()
    try:
        payload = await run_in_threadpool(json.loads, raw)
    except ValueError as exc:  # not JSON, or not UTF-8
        raise InvalidInput(f"body: a webhook call carries a JSON object ({exc})") from None
    if not isinstance(payload, dict):
        raise InvalidInput(f"body: a webhook call carries a JSON object, not {type(payload).__name__}")
    ids = task_ids(payload)
    if ids:
        background.add_task(pull_for_webhook, name, ids)  # a sync function: run in the thread pool once the answer is sent
    return Accepted(accepted=ids)


@router.get(
    "/signed/{name}/media/{blob_id}",
    summary="An input's bytes at a signed, expiring URL (no API token): how Label Studio's browser loads s2's images",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "text/plain": {}, "application/json": {}}}, 304: {"description": "Not modified"}},
)
def signed_media(
    name: str,
    blob_id: str,
    request: Request,
    expires: int = Query(..., ge=0, le=10**11, description="when the URL stops working (Unix time)"),
    signature: str = Query(..., max_length=128, description="HMAC-SHA256 of the dataset, input and expiry"),
) -> Response:
    from labeling.labelstudio.media import check_signed, signing_secret
    from server.api.routes.examples import serve_input
    from server.blobs.base import BLOB_ID
    from server.datasets.media import input_modality
    from server.db import run_in_transaction
    from server.errors import NotFound

    if not BLOB_ID.match(blob_id):  # no dataset lookup before the signature is checked: a stranger learns no names
        raise NotFound(f"no input '{blob_id}': an input id is 64 lowercase hex digits (an example's `input`)")

    def check(db) -> str:
        check_signed(signing_secret(db), name, blob_id, expires, signature)  # may make the secret: a write unit
        return input_modality(db, name, blob_id)

    modality = run_in_transaction(check)
    return serve_input(blob_id, modality, request, f"private, max-age={max(0, int(expires - time.time()))}")
