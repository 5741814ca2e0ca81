"""The data engine over HTTP: feedback from production (new inputs, disagreements), refused with the field named."""

import numpy as np

from tests.api.factories import register_model

LABELS = ["a", "b", "c"]


def seed(api, cli, blobs, tmp_path) -> str:
    """A text dataset of six notes (n0..n5 labeled a, b, c, a, b, c) and its model notes@1, analysed as predicting 'a' for every note."""
    src = tmp_path / "notes.csv"
    src.write_text("key,label,text\n" + "".join(f"n{i},{LABELS[i % 3]},note number {i}\n" for i in range(6)))
    cli.ok("dataset", "create", "notes", "--modality", "text", "--labels", ",".join(LABELS))
    cli.ok("import", "notes", src)
    return analysed_model(api, blobs, lambda key, label: "a")


def analysed_model(api, blobs, predict, rev: str | None = None) -> str:
    """A new model of notes whose analysis predicts predict(key, label) for every note; returns its ref."""
    from server.datasets.datasets import get_dataset
    from server.db import run_read, session_scope
    from server.engine.service import record_analysis, start_analysis
    from server.registry.service import to_training_snapshot
    from server.runs.models import ModelVersion
    from trainer.crossfit import Analysis

    with api.admin as c:
        run = c.post("/datasets/notes/runs", json={"force": True, "rev": rev}).json()["id"]
    truth = {f"n{i}": LABELS[i % 3] for i in range(6)}
    ref = register_model(blobs, run, LABELS, truth, truth)
    model = run_read(lambda db: db.query(ModelVersion).order_by(ModelVersion.version.desc()).first())
    snapshot = run_read(lambda db: to_training_snapshot(db, blobs, get_dataset(db, "notes"), model.commit_id))
    probs = np.array(
        [[0.8 if LABELS[j] == predict(k, LABELS[t]) else 0.1 for j in range(3)] for k, t in zip(snapshot.keys, snapshot.targets)],
        np.float32,
    )
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


def test_a_failing_slice_blocks_promotion_and_a_passing_model_is_promoted(api, cli, blobs, tmp_path):
    first = seed(api, cli, blobs, tmp_path)
    with api.admin as c:
        ok = c.post("/datasets/notes/slices", json={"name": "as", "query": "label = a", "minimum": 0.9})
        assert ok.status_code == 200 and ok.json()["latest"]["passed"] is True, ok.text
        bs = c.post("/datasets/notes/slices", json={"name": "bs", "keys": ["n1", "n4"], "minimum": 0.5}).json()
        assert bs["latest"] == {
            "model": first,
            "slice": "bs",
            "score": 0.0,
            "examples": 2,
            "minimum": 0.5,
            "passed": False,
            "failing": ["n1", "n4"],
        }
        refused = c.post(f"/models/{first}/promote", json={"stage": "production"})
        assert (
            refused.status_code == 409
            and "fails the data unit test 'bs' (accuracy 0.0000 < 0.5000; failing examples: n1, n4)" in refused.text
        )
        for body, said in (
            ({"name": "x", "keys": ["n1", "zz"], "minimum": 0.5}, "slice x: no example 'zz'"),
            ({"name": "x", "query": "label ~ a", "minimum": 0.5}, "cannot read 'label ~ a'"),
            ({"name": "x", "query": "label = q", "minimum": 0.5}, "'q' is not a label of 'notes'"),
            ({"name": "x", "keys": ["n1"], "query": "label = a", "minimum": 0.5}, "give exactly one"),
            ({"name": "X!", "keys": ["n1"], "minimum": 0.5}, "invalid slice name"),
        ):
            r = c.post("/datasets/notes/slices", json=body)
            assert r.status_code == 422 and said in r.text, (body, r.text)
    second = analysed_model(api, blobs, lambda key, label: label)  # the next model gets every note right
    with api.admin as c:
        listed = {s["name"]: s["latest"] for s in c.get("/datasets/notes/slices").json()}
        assert listed["bs"]["model"] == second and listed["bs"]["passed"] is True and listed["as"]["passed"] is True
        assert c.post(f"/models/{second}/promote", json={"stage": "production"}).status_code == 200
        assert c.post(f"/models/{first}/promote", json={"stage": "production", "force": True}).status_code == 200
    text = cli.ok("slice", "list", "notes")
    assert text.splitlines()[1].split("\t")[:3] == ["bs", "2 key(s)", "0.5"]
    cli.ok("slice", "rm", "notes", "bs")
    assert "no slice 'bs'" in cli.fails("slice", "rm", "notes", "bs")


def test_a_merge_requests_check_shows_the_source_models_data_unit_tests(api, cli, blobs, tmp_path):
    seed(api, cli, blobs, tmp_path)
    with api.admin as c:
        assert c.post("/datasets/notes/slices", json={"name": "bs", "keys": ["n1", "n4"], "minimum": 0.5}).status_code == 200
        assert c.post("/datasets/notes/branches", json={"name": "fix"}).status_code == 201
        assert c.post("/datasets/notes/edits", params={"branch": "fix"}, json={"edits": [{"key": "n2", "label": "a"}]}).status_code == 200
        assert c.post("/datasets/notes/commits", json={"message": "n2 is an a", "branch": "fix"}).status_code == 201
    analysed_model(api, blobs, lambda key, label: "a", rev="fix")  # the branch's model misses the b's
    with api.admin as c:
        r = c.post("/datasets/notes/merge-requests", json={"source": "fix", "target": "main", "title": "n2"})
        assert r.status_code == 201, r.text
        check = c.get(f"/datasets/notes/merge-requests/{r.json()['number']}").json()["check"]
        assert check["model"] == "notes@2" and [(s["slice"], s["passed"], s["failing"]) for s in check["slices"]] == [
            ("bs", False, ["n1", "n4"])
        ]
