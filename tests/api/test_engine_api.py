"""The data engine over HTTP: feedback from production (new inputs, disagreements), refused with the field named."""

import numpy as np

from tests.api.factories import register_model

LABELS = ["a", "b", "c"]


def seed(api, cli, blobs, tmp_path) -> str:
    """A text dataset of six notes and its model digits-style: notes@1, analysed as predicting 'a' for every note."""
    from server.datasets.datasets import get_dataset
    from server.db import run_read, session_scope
    from server.engine.service import record_analysis, start_analysis
    from server.registry.service import to_training_snapshot
    from server.runs.models import ModelVersion
    from trainer.crossfit import Analysis

    src = tmp_path / "notes.csv"
    src.write_text("key,label,text\n" + "".join(f"n{i},{LABELS[i % 3]},note number {i}\n" for i in range(6)))
    cli.ok("dataset", "create", "notes", "--modality", "text", "--labels", ",".join(LABELS))
    cli.ok("import", "notes", src)
    with api.admin as c:
        run = c.post("/datasets/notes/runs", json={}).json()["id"]
    truth = {f"n{i}": LABELS[i % 3] for i in range(6)}
    ref = register_model(blobs, run, LABELS, truth, truth)
    model = run_read(lambda db: db.query(ModelVersion).one())
    snapshot = run_read(lambda db: to_training_snapshot(db, blobs, get_dataset(db, "notes"), model.commit_id))
    probs = np.tile(np.array([[0.8, 0.1, 0.1]], dtype=np.float32), (len(snapshot.keys), 1))
    seen = Analysis(list(snapshot.keys), probs, np.eye(len(snapshot.keys), 4, dtype=np.float32), 0.0)
    with session_scope() as db:
        start_analysis(db, model.id, 0)
    with session_scope() as db:
        record_analysis(db, blobs, model.id, snapshot, None, seen)
    return ref


def test_production_predictions_land_new_inputs_and_queue_disagreements(api, cli, blobs, tmp_path):
    ref = seed(api, cli, blobs, tmp_path)
    body = {
        "model": ref,
        "items": [
            {"key": "n1", "predicted": "b", "probabilities": [0.1, 0.8, 0.1]},  # the current model says a: a disagreement
            {"key": "n0", "predicted": "a"},  # agrees
            {"text": "a note production saw first", "predicted": "c", "probabilities": [0.2, 0.2, 0.6]},
        ],
    }
    with api.admin as c:
        r = c.post("/datasets/notes/predictions", json=body)
        assert r.status_code == 200, r.text
        done = r.json()
        assert (done["received"], done["new_examples"], done["disagreements"]) == (3, 1, 1) and done["commit"]
        again = c.post("/datasets/notes/predictions", json=body).json()
        assert (again["new_examples"], again["commit"]) == (0, None)  # the same input posted twice is one example
        queued = c.get("/datasets/notes/queues/production").json()["items"]
        assert [(i["key"], i["suggested"], i["given"]) for i in queued] == [("n1", "b", "b")]  # n1 is labeled b; the model says a
        assert "production (notes@1) predicted 'b'" in queued[0]["reason"]
        new = c.get("/datasets/notes/queue", params={"queue": "unlabeled"}).json()["items"]
        assert [i["example"]["key"][:11] for i in new] == ["production/"]


def test_bad_predictions_are_422_naming_the_field_and_change_nothing(api, cli, blobs, tmp_path):
    ref = seed(api, cli, blobs, tmp_path)
    ana = api.add_user("ana", "labeler", ("notes",))
    cases = [
        ({"model": "notes@9", "items": [{"key": "n1", "predicted": "a"}]}, "model: no model 'notes@9'"),
        (
            {"model": ref, "items": [{"key": "n1", "predicted": "a", "probabilities": [0.5, 0.5]}]},
            "items[0].probabilities: 2 values for 3 classes",
        ),
        (
            {"model": ref, "items": [{"key": "n1", "predicted": "a", "probabilities": [0.5, 0.5, 0.5]}]},
            "items[0].probabilities: they sum to 1.5000",
        ),
        ({"model": ref, "items": [{"key": "n1", "predicted": "z"}]}, "items[0].predicted: 'z' is not a label"),
        ({"model": ref, "items": [{"key": "n1", "text": "x", "predicted": "a"}]}, "items[0]: give exactly one of key, text"),
        ({"model": ref, "items": [{"features": {"x": 1}, "predicted": "a"}]}, "items[0].features: a text dataset takes new inputs as text"),
    ]
    with api.admin as c:
        for body, said in cases:
            r = c.post("/datasets/notes/predictions", json=body)
            assert r.status_code == 422 and said in r.text, (body, r.status_code, r.text)
        r = c.post("/datasets/notes/predictions", json={"model": ref, "items": [{"key": "nope", "predicted": "a"}]})
        assert r.status_code == 404 and "no example 'nope'" in r.text
        assert c.get("/datasets/notes/queues/production").json()["items"] == []
        log = c.get("/datasets/notes/commits").json()["items"]
        assert len(log) == 2  # nothing landed: the dataset's creation and its import only
    with api.client(ana) as c:
        assert c.post("/datasets/notes/predictions", json={"model": ref, "items": [{"key": "n1", "predicted": "a"}]}).status_code == 403
