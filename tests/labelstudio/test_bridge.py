"""The Label Studio bridge against a real Label Studio server: connect, push with predictions, annotate as two
users through the SDK, pull (commit, provenance, disagreements, conflicts), a second pull, the webhook, and a push
that resumes after Label Studio went down."""

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import free_port
from tests.api.factories import register_model
from tests.factories import write_csv, write_image_csv

LABELS = ["cat", "dog", "fox"]
TOPICS = ["sport", "food", "tech"]


@pytest.fixture
def linked(label_studio, api_factory, cli, monkeypatch):
    """A real `s2 serve` that Label Studio reaches at S2_PUBLIC_URL (the CLI pushes with the same address)."""
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("S2_PUBLIC_URL", public)
    api = api_factory(port=port, S2_PUBLIC_URL=public)
    return api, public


def ls_client(label_studio, token: str | None = None):
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=label_studio.url, api_key=token or label_studio.token)


def project_tasks(client, project: int) -> list[dict]:
    return [t.model_dump() for t in client.tasks.list(project=project, fields="all", page_size=500)]


def seed_model(api, blobs, dataset: str, labels: list[str], keys: list[str]) -> dict[str, str]:
    """A model (dataset@1) guessing every key, the guess's probability 0.7."""
    guess = {k: labels[i % len(labels)] for i, k in enumerate(keys)}
    probs = {k: [0.7 if lab == guess[k] else 0.15 for lab in labels] for k in keys}
    with api.admin as c:
        r = c.post(f"/datasets/{dataset}/runs", json={})
        assert r.status_code in (201, 202), r.text
        run = r.json()["id"]
    register_model(blobs, run, labels, guess, guess, probs)
    return guess


def annotate(client, task: int, choice: str | None, *, cancelled: bool = False, to_name: str = "text") -> int:
    result = [] if choice is None else [{"from_name": "label", "to_name": to_name, "type": "choices", "value": {"choices": [choice]}}]
    return client.annotations.create(id=task, result=result, was_cancelled=cancelled).id


@pytest.mark.slow(minutes=2)
def test_images_push_with_predictions_and_signed_media(label_studio, linked, cli, blobs, tmp_path: Path):
    api, public = linked
    keys = [f"p{i:03d}" for i in range(200)]
    cli.ok("dataset", "create", "pets", "--modality", "image", "--labels", ",".join(LABELS))
    cli.ok("import", "pets", write_image_csv(tmp_path / "src", {**{k: "" for k in keys}, "l0": "cat", "l1": "dog"}))
    guess = seed_model(api, blobs, "pets", LABELS, keys)
    linked_to = json.loads(cli.ok("labelstudio", "connect", "pets", "--url", label_studio.url, "--token", label_studio.token, "--json"))
    project = linked_to["project"]
    assert linked_to["branch"] == "main" and "token" not in json.dumps(linked_to)

    pushed = json.loads(cli.ok("labelstudio", "push", "pets", "--json"))
    assert pushed["pushed"] == 200 and pushed["with_predictions"] == 200  # all unlabeled, none of the labeled two
    client = ls_client(label_studio)
    tasks = project_tasks(client, project)
    assert sorted(t["data"]["s2_key"] for t in tasks) == keys
    task = next(t for t in tasks if t["data"]["s2_key"] == "p007")
    (pred,) = task["predictions"]
    assert pred["model_version"] == "pets@1" and abs(pred["score"] - 0.7) < 1e-6
    assert pred["result"][0]["value"]["choices"] == [guess["p007"]]

    url = task["data"]["image"]  # what Label Studio's browser loads: s2's media, signed and expiring, no token
    assert url.startswith(f"{public}/api/v1/signed/pets/media/") and "token" not in url.lower()
    shown = httpx.get(url, timeout=30)
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
    example = json.loads(cli.ok("show", "pets", "p007", "--json"))
    assert shown.content == blobs.get(example["input"])
    tampered = httpx.get(url[:-4] + ("0000" if not url.endswith("0000") else "1111"), timeout=30)
    assert tampered.status_code == 403 and "signature" in tampered.json()["detail"]

    again = json.loads(cli.ok("labelstudio", "push", "pets", "--json"))  # nothing new: no duplicate task
    assert again["pushed"] == 0 and len(project_tasks(client, project)) == 200


@pytest.mark.slow(minutes=1.5)
def test_text_annotations_pulled_with_provenance_consensus_and_conflicts(label_studio, linked, cli, blobs):
    api, _ = linked
    keys = [f"t{i:03d}" for i in range(200)]
    rows = [[k, "", f"note {i} about {TOPICS[i % 3]}"] for i, k in enumerate(keys)] + [
        ["done", "food", "already labeled"],
        ["done2", "tech", "labeled too"],
    ]
    cli.ok("dataset", "create", "notes", "--modality", "text", "--labels", ",".join(TOPICS))
    cli.ok("import", "notes", write_csv(Path(cli.cwd) / "notes.csv", rows))
    seed_model(api, blobs, "notes", TOPICS, keys)
    project = json.loads(cli.ok("labelstudio", "connect", "notes", "--url", label_studio.url, "--token", label_studio.token, "--json"))[
        "project"
    ]
    assert json.loads(cli.ok("labelstudio", "push", "notes", "--json"))["pushed"] == 200
    admin = ls_client(label_studio)
    task_of = {t["data"]["s2_key"]: t["id"] for t in project_tasks(admin, project)}
    assert task_of and admin.tasks.get(id=str(task_of["t005"])).data["text"] == "note 5 about tech"

    (ana, ana_token), (bo, bo_token) = label_studio.annotators(2)
    a, b = ls_client(label_studio, ana_token), ls_client(label_studio, bo_token)
    ann = {}
    for i in range(20):  # both agree
        ann[keys[i]] = annotate(a, task_of[keys[i]], TOPICS[i % 3])
        annotate(b, task_of[keys[i]], TOPICS[i % 3])
    for i in range(20, 30):  # they disagree
        annotate(a, task_of[keys[i]], "sport")
        annotate(b, task_of[keys[i]], "food")
    for i in range(30, 45):  # ana alone
        ann[keys[i]] = annotate(a, task_of[keys[i]], TOPICS[(i + 1) % 3])
    annotate(a, task_of["t045"], None, cancelled=True)  # skipped: ignored
    annotate(a, task_of["t046"], "zebra")  # not a label of the dataset
    for k in ("t047", "t048", "t049"):
        ann[k] = annotate(a, task_of[k], "tech")
    cli.ok("label", "notes", "t047", "sport")  # relabeled in s2 after the push: a conflict
    cli.ok("label", "notes", "t048", "tech")  # relabeled in s2 to what Label Studio says: no conflict
    cli.ok("commit", "notes", "-m", "labels made in s2")
    cli.ok("label", "notes", "t100", "food")  # a labeler's edit in progress: the pull must not commit it
    # tasks made in Label Studio by hand, one posing as s2's t060: read with the export, counted, left alone
    made = admin.projects.import_tasks(
        id=project, request=[{"data": {"text": "by hand"}}, {"data": {"text": "forged", "s2_key": "t060"}}], return_task_ids=True
    )
    for task in made.model_extra["task_ids"]:
        annotate(a, task, "food")

    head = cli.ok("log", "notes", "--json")
    report = json.loads(cli.ok("labelstudio", "pull", "notes", "--json"))
    assert report["commit"] and report["commit"] not in head
    assert report["not_from_s2"] == 2 and json.loads(cli.ok("show", "notes", "t060", "--json"))["label"] is None
    assert (report["applied"], report["agreed"], report["disputed"], report["conflicts"]) == (16, 20, 10, 1)
    assert (report["invalid"], report["skipped"], report["already_labeled"]) == (1, 1, 1)
    assert report["conflicts_list"][0]["key"] == "t047" and report["conflicts_list"][0]["s2"] == "sport"
    assert report["invalid_list"][0]["task"] == task_of["t046"] and report["invalid_list"][0]["choice"] == "zebra"

    shown = {k: json.loads(cli.ok("show", "notes", k, "--json"))["label"] for k in ("t000", "t020", "t030", "t047", "t049")}
    assert shown == {"t000": "sport", "t020": None, "t030": "food", "t047": "sport", "t049": "tech"}
    assert json.loads(cli.ok("show", "notes", "t100", "--json"))["label"] is None  # still staged, not committed
    (change,) = [e for e in json.loads(cli.ok("blame", "notes", "t030", "--json")) if e["commit"] == report["commit"]]
    assert change["author"] == ana and change["committer"] == "tester@example.com"
    assert change["source"] == f"Label Studio project {project}, task {task_of['t030']}, annotation {ann['t030']} by {ana}"
    (agreed,) = [e for e in json.loads(cli.ok("blame", "notes", "t001", "--json")) if e["commit"] == report["commit"]]
    assert f"task {task_of['t001']}" in agreed["source"] and ana in agreed["source"] and bo in agreed["source"]

    disputed = {i["key"]: i for i in json.loads(cli.ok("review", "list", "notes", "-Q", "disputed", "--json"))}
    assert sorted(disputed) == keys[20:30]
    assert f"{ana} chose sport" in disputed["t025"]["reason"] and f"{bo} chose food" in disputed["t025"]["reason"]
    resolved = json.loads(cli.ok("queue", "resolve", "notes", "t025", "food", "--json"))
    assert "resolved by" in resolved["source"] and ana in resolved["source"]

    second = json.loads(cli.ok("labelstudio", "pull", "notes", "--json"))  # nothing new in Label Studio: no change
    assert second["commit"] is None and second["applied"] == second["agreed"] == second["conflicts"] == 0
    assert second["unchanged"] == 50
    assert admin.projects.exports.list(id=project) == []  # each pull drops the snapshot export it read
    status = json.loads(cli.ok("labelstudio", "status", "notes", "--json"))
    assert status["states"]["conflict"] == 1 and status["states"]["disputed"] == 10 and status["last_pull_at"]
    conflicts = json.loads(cli.ok("labelstudio", "tasks", "notes", "--state", "conflict", "--json"))
    assert [c["key"] for c in conflicts] == ["t047"] and "'sport'" in conflicts[0]["note"]

    admin.tasks.delete(id=str(task_of["t031"]))  # deleting in Label Studio never deletes in s2
    cli.ok("labelstudio", "pull", "notes")
    assert json.loads(cli.ok("show", "notes", "t031", "--json"))["label"] == TOPICS[32 % 3]


def test_webhook_stages_and_commits_within_seconds(label_studio, linked, cli, blobs):
    api, _ = linked
    rows = [[f"w{i}", "", f"text {i}"] for i in range(5)]
    cli.ok("dataset", "create", "hooks", "--modality", "text", "--labels", ",".join(TOPICS))
    cli.ok("import", "hooks", write_csv(Path(cli.cwd) / "hooks.csv", rows))
    out = json.loads(
        cli.ok("labelstudio", "connect", "hooks", "--url", label_studio.url, "--token", label_studio.token, "--webhook", "--json")
    )
    assert out["webhook"] is True
    cli.ok("labelstudio", "push", "hooks")
    admin = ls_client(label_studio)
    task_of = {t["data"]["s2_key"]: t["id"] for t in project_tasks(admin, out["project"])}
    ((ana, token),) = label_studio.annotators(1)
    made = annotate(ls_client(label_studio, token), task_of["w3"], "tech")
    deadline = time.monotonic() + 20
    while json.loads(cli.ok("show", "hooks", "w3", "--json"))["label"] != "tech":
        assert time.monotonic() < deadline, f"the webhook's annotation did not land within 20 s: {api.log()[-3000:]}"
        time.sleep(0.3)
    (change,) = [e for e in json.loads(cli.ok("blame", "hooks", "w3", "--json")) if e["label"] == "tech"]
    assert change["author"] == ana and f"annotation {made} by {ana}" in change["source"]

    with httpx.Client(base_url=f"{api.url}/api/v1", timeout=30) as c:  # without the secret: refused
        r = c.post("/labelstudio/webhook/hooks", json={"action": "ANNOTATION_CREATED", "annotation": {"task": task_of["w1"]}})
        assert r.status_code == 403


def test_push_resumes_after_label_studio_went_down(label_studio, linked, cli, blobs, monkeypatch):
    from labeling.labelstudio.bridge import push
    from server.config import get_settings
    from server.errors import UpstreamFailed

    rows = [[f"r{i:03d}", "", f"row {i}"] for i in range(120)]
    cli.ok("dataset", "create", "resume", "--modality", "text", "--labels", ",".join(TOPICS))
    cli.ok("import", "resume", write_csv(Path(cli.cwd) / "resume.csv", rows))
    project = json.loads(cli.ok("labelstudio", "connect", "resume", "--url", label_studio.url, "--token", label_studio.token, "--json"))[
        "project"
    ]
    settings = get_settings()

    def go_down(done: int, total: int | None) -> None:
        if done == 40:
            label_studio.stop()  # down after two batches of 20: the third fails

    try:
        with pytest.raises(UpstreamFailed, match="cannot be reached"):
            push(blobs, dataset="resume", public_url=settings.public_url, ttl_s=60, batch=20, progress=go_down)
    finally:
        label_studio.start()
    client = ls_client(label_studio)
    assert len(project_tasks(client, project)) == 40
    monkeypatch.setenv("S2_LABELSTUDIO_BATCH", "20")
    done = json.loads(cli.ok("labelstudio", "push", "resume", "--json"))
    assert done["pushed"] == 80
    keys = [t["data"]["s2_key"] for t in project_tasks(client, project)]
    assert len(keys) == 120 and len(set(keys)) == 120

    # a push that died between creating its tasks and recording their ids: found by their s2 keys, not sent twice
    from sqlalchemy import update

    from labeling.labelstudio.models import LabelStudioTask
    from server.db import run_in_transaction

    run_in_transaction(
        lambda db: db.execute(update(LabelStudioTask).where(LabelStudioTask.key >= "r100").values(task=None, state="sending"))
    )
    redo = json.loads(cli.ok("labelstudio", "push", "resume", "--json"))
    assert redo["recovered"] == 20 and redo["pushed"] == 0 and len(project_tasks(client, project)) == 120


def test_tabular_rows_travel_as_task_data_and_come_back(label_studio, cli, tmp_path: Path):
    rows = [[f"x{i}", "" if i < 4 else "low", str(i), str(i * 2.5)] for i in range(6)]
    cli.ok("dataset", "create", "grid", "--modality", "tabular", "--labels", "low,high")
    cli.ok("import", "grid", write_csv(tmp_path / "grid.csv", rows, header=("key", "label", "width", "depth")))
    project = json.loads(cli.ok("labelstudio", "connect", "grid", "--url", label_studio.url, "--token", label_studio.token, "--json"))[
        "project"
    ]
    assert json.loads(cli.ok("labelstudio", "push", "grid", "-q", "--json"))["pushed"] == 4  # -q and --json: JSON wins
    admin = ls_client(label_studio)
    tasks = {t["data"]["s2_key"]: t for t in project_tasks(admin, project)}
    assert sorted(tasks) == ["x0", "x1", "x2", "x3"]
    assert {k: float(v) for k, v in tasks["x2"]["data"]["features"].items()} == {"width": 2.0, "depth": 5.0}
    annotate(admin, tasks["x2"]["id"], "high", to_name="features")
    report = json.loads(cli.ok("labelstudio", "pull", "grid", "--json"))
    assert report["applied"] == 1 and json.loads(cli.ok("show", "grid", "x2", "--json"))["label"] == "high"
