"""The label_studio fixture against SDK 2.x: what the bridge relies on, on a real Label Studio server."""

import uuid

import httpx
import pytest
from label_studio_sdk import LabelStudio

CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="label" toName="text" choice="single"><Choice value="cat"/><Choice value="dog"/></Choices></View>'
)
TEXTS = ["a cat", "a dog", "a bird"]


def test_annotation_round_trip_survives_a_restart(label_studio):
    sent: list[str | None] = []
    http = httpx.Client(event_hooks={"request": [lambda request: sent.append(request.headers.get("authorization"))]})
    admin = LabelStudio(base_url=label_studio.url, api_key=label_studio.token, httpx_client=http)
    before = {p.id for p in admin.projects.list()}
    assert sent and set(sent) == {f"Token {label_studio.token}"}  # a legacy (non-JWT) key goes as `Token`, not `Bearer`

    project = admin.projects.create(title=f"fixture {uuid.uuid4().hex[:6]}", label_config=CONFIG)
    assert project.id not in before
    assert admin.projects.import_tasks(id=project.id, request=[{"text": t} for t in TEXTS]).task_count == 3
    tasks = sorted(admin.tasks.list(project=project.id), key=lambda t: t.id)  # pages of 100; a 404 past the end
    assert [t.data["text"] for t in tasks] == TEXTS

    (email, token), (other, _) = label_studio.annotators(2)
    assert other != email and label_studio.annotators(1) == [(email, token)]
    annotator = LabelStudio(base_url=label_studio.url, api_key=token)
    me = annotator.users.whoami()
    assert me.email == email
    result = [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["cat"]}}]
    created = annotator.annotations.create(id=tasks[0].id, result=result)
    assert (created.completed_by, created.was_cancelled, created.task) == (me.id, False, tasks[0].id)

    seen = admin.annotations.list(id=tasks[0].id)
    assert [(a.id, a.completed_by, a.result) for a in seen] == [(created.id, me.id, result)]
    assert admin.users.get(id=seen[0].completed_by).email == email  # completed_by is an id; the email is one call away

    label_studio.stop()
    try:
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{label_studio.url}/health", timeout=2)
    finally:
        label_studio.start()
    after = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    assert [(a.id, a.completed_by) for a in after.annotations.list(id=tasks[0].id)] == [(created.id, me.id)]
    assert [t.data["text"] for t in sorted(after.tasks.list(project=project.id), key=lambda t: t.id)] == TEXTS
