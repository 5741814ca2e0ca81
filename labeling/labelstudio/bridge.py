"""The Label Studio bridge: link a dataset branch to a project, push examples as tasks, and the link's status.

Network work (label-studio-sdk's `LabelStudio` client) runs outside database transactions; each batch of a
push records its tasks in two short transactions around the request that creates them: first the keys as
`sending`, then their task ids. A push that dies between the two finds its `sending` keys in the project by
their `s2_key` on the next run, so running it again never creates a task twice. Pulling is in pull.py.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from urllib.parse import urlsplit

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from labeling.labelstudio.ahead import ahead
from labeling.labelstudio.models import LabelStudioLink, LabelStudioTask
from labeling.labelstudio.tasks import KEY_FIELD, labeling_config, pre_annotation, task_data
from server.blobs import BlobStore
from server.datasets.datasets import get_dataset
from server.datasets.models import Dataset, StagedEdit, utcnow
from server.datasets.refs import get_branch
from server.datasets.staging import example_version
from server.db import run_in_transaction, run_read
from server.errors import InvalidInput, NotFound, UpstreamFailed

Progress = Callable[[int, int | None], None]  # (done, total or None when not known yet)
REPORT_MAX = 100  # the most conflicts, disagreements and invalid choices a report lists (counts are whole)


def client_for(url: str, token: str):  # noqa: ANN201
    """label-studio-sdk's client for a Label Studio server (imported here: the SDK is slow to import)."""
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=url.rstrip("/"), api_key=token, timeout=300)


@contextmanager
def talking(url: str, what: str) -> Iterator[None]:
    """Turn the SDK's and httpx's failures into errors that name Label Studio's address and what was asked."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    try:
        yield
    except ApiError as exc:
        body = str(exc.body)[:300] if exc.body is not None else ""
        if exc.status_code in (401, 403):
            raise InvalidInput(f"Label Studio at {url} refused the token ({what}): {body or exc.status_code}") from None
        if exc.status_code == 404:
            raise NotFound(f"Label Studio at {url} has no such thing ({what}): {body or 404}") from None
        raise UpstreamFailed(f"Label Studio at {url} answered {exc.status_code} to {what}: {body}") from None
    except httpx.HTTPError as exc:
        raise UpstreamFailed(f"Label Studio at {url} cannot be reached ({what}): {exc or type(exc).__name__}") from None


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"url {url!r}: give Label Studio's address as http(s)://host[:port]")
    return url.rstrip("/")


def get_link(db: Session, dataset: str) -> tuple[Dataset, LabelStudioLink]:
    """The dataset and its link, or NotFound saying how to make one."""
    ds = get_dataset(db, dataset)
    link = db.get(LabelStudioLink, ds.id)
    if link is None:
        raise NotFound(
            f"dataset '{dataset}' is not linked to Label Studio (link it with: s2 labelstudio connect {dataset} --url URL --token T)"
        )
    return ds, link


def connect(*, dataset: str, url: str, token: str, branch: str | None, project: int | None, title: str | None, by: str) -> dict:
    """Link a dataset branch to a Label Studio project: an existing one, or a new one with a config made for the dataset."""
    url = _check_url(url)
    if not token:
        raise InvalidInput("token: give a Label Studio API token (Account & Settings, Access Token)")

    def plan(db: Session) -> tuple[str, str, list[str], LabelStudioLink | None]:
        ds = get_dataset(db, dataset)
        br = get_branch(db, ds, branch)
        return br.name, ds.modality, list(ds.labels), db.get(LabelStudioLink, ds.id)

    branch_name, modality, labels, old = run_read(plan)
    try:
        config = labeling_config(modality, labels)
    except ValueError as exc:
        raise InvalidInput(f"dataset '{dataset}': {exc}") from None
    client = client_for(url, token)
    if project is None and old is not None and old.url == url:
        project = old.project  # connecting again (a new token, a webhook): the same project
    if project is None:
        with talking(url, "create a project"):
            made = client.projects.create(title=title or f"s2 {dataset} ({branch_name})", label_config=config)
        project, title = made.id, made.title
    else:
        with talking(url, f"read project {project}"):
            found = client.projects.get(id=project)
        title = found.title or f"project {project}"

    def record(db: Session) -> dict:
        ds = get_dataset(db, dataset)
        link = db.get(LabelStudioLink, ds.id)
        if link is not None and (link.url, link.project) != (url, project):
            # another project: the tasks pushed to the old one are its business now (nothing in s2 is deleted)
            db.execute(delete(LabelStudioTask).where(LabelStudioTask.dataset_id == ds.id).execution_options(synchronize_session=False))
        if link is None:
            link = LabelStudioLink(dataset_id=ds.id, created_by=by, created_at=utcnow())
            db.add(link)
        link.url, link.token, link.project, link.title, link.branch = url, token, project, title, branch_name
        db.flush()
        return status_of(db, ds, link)

    return run_in_transaction(record)


def status(db: Session, *, dataset: str) -> dict:
    """The link of a dataset: its project and branch, the last push and pull, tasks by state (the token is never shown)."""
    ds, link = get_link(db, dataset)
    return status_of(db, ds, link)


def status_of(db: Session, ds: Dataset, link: LabelStudioLink) -> dict:
    counts = dict(
        db.execute(
            select(LabelStudioTask.state, func.count()).where(LabelStudioTask.dataset_id == ds.id).group_by(LabelStudioTask.state)
        ).all()
    )
    return {
        "dataset": ds.name,
        "branch": link.branch,
        "url": link.url,
        "project": link.project,
        "title": link.title,
        "project_url": f"{link.url}/projects/{link.project}/data",
        "webhook": link.webhook_id is not None,
        "connected_by": link.created_by,
        "connected_at": link.created_at,
        "last_push_at": link.last_push_at,
        "last_pull_at": link.last_pull_at,
        "tasks": sum(n for state, n in counts.items() if state != "sending"),
        "states": counts,
        "last_pull": link.last_pull,
    }


def conflicts(db: Session, *, dataset: str, state: str = "conflict", limit: int = 100) -> list[dict]:
    """The pushed examples in one state (conflict, invalid, disputed) with why, in key order."""
    ds, _ = get_link(db, dataset)
    rows = db.scalars(
        select(LabelStudioTask)
        .where(LabelStudioTask.dataset_id == ds.id, LabelStudioTask.state == state)
        .order_by(LabelStudioTask.key)
        .limit(limit)
    )
    return [{"key": r.key, "task": r.task, "note": r.note, "synced_at": r.synced_at} for r in rows]


def disconnect(db: Session, *, dataset: str) -> dict:
    """Forget the link (and which tasks were pushed); nothing in Label Studio or in the dataset is deleted."""
    ds, link = get_link(db, dataset)
    gone = db.execute(delete(LabelStudioTask).where(LabelStudioTask.dataset_id == ds.id).execution_options(synchronize_session=False))
    out = {"dataset": dataset, "project": link.project, "url": link.url, "tasks_forgotten": gone.rowcount}
    db.delete(link)
    return out


# -- push ---------------------------------------------------------------------------------------------------------


def _keys_to_push(blobs: BlobStore, dataset: str, branch: str, queue: str, rev: str | None, batch: int) -> Iterator[list[str]]:
    """Pages of keys of a queue (built-in or review) on the linked branch, or of a revision's examples."""
    from labeling.queues import queue_page

    if rev is not None:
        if queue not in ("unlabeled", "all"):
            raise InvalidInput(f"--rev picks examples of a revision (all or unlabeled); queue '{queue}' is already a list: drop --rev")
        from server.datasets.history import resolve_rev
        from server.datasets.snapshot import page_rows

        after = None
        while True:

            def page(db: Session, after=after) -> list:  # noqa: ANN001
                ds = get_dataset(db, dataset)
                return page_rows(db, blobs, resolve_rev(db, ds, rev).pk, after=after, limit=batch)

            rows = run_read(page)
            keys = [r.key for r in rows if queue == "all" or r.label is None]
            if keys:
                yield keys
            if len(rows) < batch:
                return
            after = rows[-1].key
    after = None
    while True:
        items, after = run_read(
            lambda db, after=after: queue_page(db, blobs, dataset=dataset, branch=branch, queue=queue, after=after, limit=batch)
        )
        if items:
            yield [i.example.key for i in items]
        if after is None:
            return


def _media(public_url: str | None, ttl_s: float, dataset: str) -> Callable[[str], str]:
    """How an image's URL is made: signed with the server's secret, at S2_PUBLIC_URL (made in a write: it may be new)."""
    from labeling.labelstudio.media import signed_media_url, signing_secret

    if not public_url:
        raise InvalidInput(
            "S2_PUBLIC_URL is not set: Label Studio's browser loads images from s2 at that address "
            "(e.g. S2_PUBLIC_URL=http://s2-host:8000 on the s2 server)"
        )
    secret = run_in_transaction(signing_secret)
    return lambda blob_id: signed_media_url(public_url, secret, dataset, blob_id, ttl_s)


def _build(db: Session, blobs: BlobStore, dataset: str, keys: list[str], media: Callable[[str], str] | None) -> tuple[list, dict]:
    """The tasks for keys (those on the linked branch and not pushed yet) and each one's edit version."""
    from labeling.guesses import guesses, guessing_model
    from server.datasets.lookup import lookup

    ds, link = get_link(db, dataset)
    br = get_branch(db, ds, link.branch)
    done = set(db.scalars(select(LabelStudioTask.key).where(LabelStudioTask.dataset_id == ds.id, LabelStudioTask.key.in_(keys))))
    keys = [k for k in keys if k not in done]
    rows = lookup(db, blobs, br.head_pk, keys)
    staged = {e.key: e for e in db.scalars(select(StagedEdit).where(StagedEdit.branch_id == br.id, StagedEdit.key.in_(list(rows))))}
    model = guessing_model(db, ds.id)
    guessed = guesses(model, blobs, ds.labels, list(rows))
    tasks, versions = [], {}
    for key in keys:
        row = rows.get(key)
        if row is None:
            continue  # not on the linked branch
        inline = row.inline
        if ds.modality != "image" and inline is None:
            inline = blobs.get(row.input).decode("utf-8", errors="replace")
        task = {"data": task_data(ds.modality, key, dataset, media_url=media(row.input) if ds.modality == "image" else None, inline=inline)}
        guess = guessed.get(key)
        if guess is not None and guess.label in ds.labels:
            task["predictions"] = [pre_annotation(ds.modality, guess.label, guess.confidence, f"{dataset}@{guess.model}")]
        tasks.append(task)
        versions[key] = example_version(row, staged.get(key))
    return tasks, versions


def _reconcile(dataset: str, client, link: LabelStudioLink) -> int:  # noqa: ANN001
    """Keys left `sending` by a push that died: found in the project, they get their task id; else they are sent again."""

    def sending(db: Session) -> set[str]:
        ds = get_dataset(db, dataset)
        return set(db.scalars(select(LabelStudioTask.key).where(LabelStudioTask.dataset_id == ds.id, LabelStudioTask.state == "sending")))

    pending = run_read(sending)
    if not pending:
        return 0
    found: dict[str, int] = {}
    with talking(link.url, f"list the tasks of project {link.project}"):
        for task in client.tasks.list(project=link.project, page_size=1000, fields="task_only"):
            key = (task.data or {}).get(KEY_FIELD)
            if key in pending:
                found[key] = task.id

    def settle(db: Session) -> None:
        ds = get_dataset(db, dataset)
        for row in db.scalars(select(LabelStudioTask).where(LabelStudioTask.dataset_id == ds.id, LabelStudioTask.state == "sending")):
            if row.key in found:
                row.task, row.state = found[row.key], "pushed"
            else:
                db.delete(row)

    run_in_transaction(settle)
    return len(found)


_SENT_SQL = {  # a batch's task ids in one UPDATE from one JSON parameter (a CASE of 500 keys cost ~25 ms to build)
    "postgresql": """
        UPDATE ls_tasks SET task = v.task, state = 'pushed'
        FROM json_to_recordset(CAST(:rows AS json)) AS v(key text, task integer)
        WHERE ls_tasks.dataset_id = :dataset AND ls_tasks.key = v.key COLLATE "C"
    """,
    "sqlite": """
        UPDATE ls_tasks SET task = json_extract(v.value, '$.task'), state = 'pushed'
        FROM json_each(:rows) AS v
        WHERE ls_tasks.dataset_id = :dataset AND ls_tasks.key = json_extract(v.value, '$.key')
    """,
}


def record_task_ids(db: Session, dataset_id: int, task_ids: dict[str, int]) -> None:
    """Keys sent in a batch get the task ids Label Studio made for them, and the state `pushed`."""
    given = json.dumps([{"key": key, "task": task} for key, task in task_ids.items()])
    db.execute(text(_SENT_SQL[db.get_bind().dialect.name]), {"rows": given, "dataset": dataset_id})


def push(
    blobs: BlobStore,
    *,
    dataset: str,
    queue: str = "unlabeled",
    rev: str | None = None,
    limit: int | None = None,
    public_url: str | None,
    ttl_s: float,
    batch: int,
    progress: Progress | None = None,
) -> dict:
    """Send examples (a queue's, or a revision's) to the linked project as tasks, with the current model's guesses."""
    if limit is not None and limit < 1:
        raise InvalidInput(f"limit {limit}: push at least one example")
    link = run_read(lambda db: get_link(db, dataset)[1])
    client = client_for(link.url, link.token)
    recovered = _reconcile(dataset, client, link)
    modality = run_read(lambda db: get_dataset(db, dataset).modality)
    media = _media(public_url, ttl_s, dataset) if modality == "image" else None

    def batches() -> Iterator[list[dict]]:
        """Each batch's tasks, recorded as `sending` before they are handed over (run a batch ahead of the imports)."""
        built = 0
        for keys in _keys_to_push(blobs, dataset, link.branch, queue, rev, batch):
            if limit is not None:
                keys = keys[: limit - built]
            tasks, versions = run_read(lambda db, keys=keys: _build(db, blobs, dataset, keys, media))
            if tasks:

                def sending(db: Session, versions=versions) -> None:
                    ds, now = get_dataset(db, dataset), utcnow()
                    db.execute(  # one multi-row INSERT (no ORM objects)
                        insert(LabelStudioTask),
                        [{"dataset_id": ds.id, "key": k, "version": v, "state": "sending", "pushed_at": now} for k, v in versions.items()],
                    )

                run_in_transaction(sending)
                built += len(tasks)
                yield tasks
            if limit is not None and built >= limit:
                return

    pushed = predicted = 0
    with closing(ahead(batches(), name="s2-ls-push")) as ready:  # batch k+1 is built while Label Studio imports batch k
        for tasks in ready:
            with talking(link.url, f"import {len(tasks)} tasks into project {link.project}"):
                made = client.projects.import_tasks(
                    id=link.project,
                    request=tasks,  # plain dicts: the SDK sends them as they are (a model per task cost ~0.3 ms each)
                    return_task_ids=True,
                    commit_to_project=True,
                )
            ids = (made.model_extra or {}).get("task_ids") or []
            if len(ids) != len(tasks):
                raise UpstreamFailed(
                    f"Label Studio at {link.url} created {len(ids)} task ids for {len(tasks)} tasks: push again to reconcile"
                )

            def sent(db: Session, ids=ids, tasks=tasks) -> None:
                ds = get_dataset(db, dataset)
                record_task_ids(db, ds.id, {t["data"][KEY_FIELD]: i for t, i in zip(tasks, ids)})

            run_in_transaction(sent)
            pushed += len(tasks)
            predicted += sum(1 for t in tasks if "predictions" in t)
            if progress:
                progress(pushed, limit)

    def finish(db: Session) -> dict:
        ds, link = get_link(db, dataset)
        link.last_push_at = utcnow()
        return status_of(db, ds, link)

    out = run_in_transaction(finish)
    out.update({"pushed": pushed, "with_predictions": predicted, "recovered": recovered, "queue": queue})
    return out
