"""Label Studio's webhook into s2: annotations staged and committed within seconds of being made, with no pull.

`enable` registers a webhook on the linked project that calls s2's endpoint (at S2_PUBLIC_URL) with a shared
secret in a header. Label Studio calls webhooks synchronously, inside the annotator's request: the endpoint only
checks the secret and notes the tasks, then answers; the pull of those tasks runs after the answer is sent.
"""

import hmac
import secrets

from sqlalchemy.orm import Session

from labeling.labelstudio.bridge import client_for, get_link, status_of, talking
from server.db import run_in_transaction, run_read
from server.errors import Forbidden, InvalidInput, NotFound

HEADER = "X-S2-Webhook-Secret"
ACTIONS = ["ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED"]


def endpoint(public_url: str, dataset: str) -> str:
    from urllib.parse import quote

    return f"{public_url.rstrip('/')}/api/v1/labelstudio/webhook/{quote(dataset, safe='')}"


def enable(*, dataset: str, public_url: str | None) -> dict:
    """Register (or register again) the project's webhook to s2, with a new secret."""
    if not public_url:
        raise InvalidInput("S2_PUBLIC_URL is not set: Label Studio calls s2's webhook at that address (e.g. http://s2-host:8000)")
    link = run_read(lambda db: get_link(db, dataset)[1])
    client = client_for(link.url, link.token)
    secret = secrets.token_hex(24)
    if link.webhook_id is not None:
        disable_remote(client, link.url, link.webhook_id)
    with talking(link.url, f"register a webhook on project {link.project}"):
        hook = client.webhooks.create(
            url=endpoint(public_url, dataset),
            project=link.project,
            headers={HEADER: secret},
            send_payload=True,
            send_for_all_actions=False,
            actions=ACTIONS,
            is_active=True,
        )

    def record(db: Session) -> dict:
        ds, link = get_link(db, dataset)
        link.webhook_id, link.webhook_secret = hook.id, secret
        return status_of(db, ds, link)

    return run_in_transaction(record)


def disable_remote(client, url: str, webhook_id: int) -> None:  # noqa: ANN001
    """Delete a webhook in Label Studio; one already gone there is fine."""
    try:
        with talking(url, f"delete webhook {webhook_id}"):
            client.webhooks.delete(id=webhook_id)
    except NotFound:
        pass


def disable(*, dataset: str) -> dict:
    """Stop Label Studio calling s2 for this dataset (pull still works)."""
    link = run_read(lambda db: get_link(db, dataset)[1])
    if link.webhook_id is not None:
        disable_remote(client_for(link.url, link.token), link.url, link.webhook_id)

    def record(db: Session) -> dict:
        ds, link = get_link(db, dataset)
        link.webhook_id = link.webhook_secret = None
        return status_of(db, ds, link)

    return run_in_transaction(record)


def check_secret(db: Session, dataset: str, sent: str | None) -> None:
    """Refuse a webhook call without the link's secret (one that names no linked dataset is refused alike)."""
    from sqlalchemy import select

    from labeling.labelstudio.models import LabelStudioLink
    from server.datasets.models import Dataset

    ds_id = db.scalar(select(Dataset.id).where(Dataset.name == dataset))
    link = db.get(LabelStudioLink, ds_id) if ds_id is not None else None
    expected = link.webhook_secret if link is not None else None
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):  # bytes: str must be ASCII
        raise Forbidden(f"webhook call for dataset '{dataset}' without its secret (header {HEADER})")


def task_ids(payload: dict) -> list[int]:
    """The tasks an event is about: an annotation's task, or each of several annotations' tasks."""
    found: list[int] = []
    notes = [payload.get("annotation")] + list(payload.get("annotations") or [])
    for ann in notes:
        if isinstance(ann, dict):
            task = ann.get("task")
            task = task.get("id") if isinstance(task, dict) else task
            if isinstance(task, int) and task not in found:
                found.append(task)
    task = payload.get("task")
    if isinstance(task, dict) and isinstance(task.get("id"), int) and task["id"] not in found:
        found.append(task["id"])
    return found
