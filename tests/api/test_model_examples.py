"""GET /models/{ref}/examples: the examples behind a confusion matrix cell, paged, with their inputs; and the
promotion gate's figures in its 409."""

import httpx

from tests.api.factories import imported, register_model
from tests.api.test_roles import assert_problem, csv_files

LABELS = ["cat", "dog", "fish"]
LONG = "a fish that purrs " * 30  # longer than a snippet
ROWS = {f"k{i}": (LABELS[i % 3], LONG if i == 4 else f"text number {i}") for i in range(9)}
# What the model said: k1 and k7 (dogs) were called cats, k3 (a cat) a dog, k5 (a fish) a dog.
PREDICTED = {k: label for k, (label, _) in ROWS.items()} | {"k1": "cat", "k7": "cat", "k3": "dog", "k5": "dog"}


def test_a_models_examples_by_label_and_prediction_are_its_confusion_cells(api, blobs):
    with api.admin as c:
        assert c.post("/datasets", json={"name": "notes", "modality": "text", "labels": LABELS}).status_code == 201
        commit = imported(c, c.post("/datasets/notes/imports", files=csv_files([[k, lab, t] for k, (lab, t) in ROWS.items()])))["commit"]
        truth = {k: label for k, (label, _) in ROWS.items()}
        runs = [c.post("/datasets/notes/runs", json={}).json()["id"] for _ in range(2)]
        assert register_model(blobs, runs[0], LABELS, truth, PREDICTED) == "notes@1"
        assert register_model(blobs, runs[1], LABELS, truth, truth) == "notes@2"  # right on every one
        inputs = {e["key"]: e["input"] for e in c.get("/datasets/notes/examples").json()["items"]}

        # Every cell of the matrix: exactly the keys with that label and that prediction, each with its input.
        matrix = c.get("/models/notes@1").json()["metrics"]["confusion_matrix"]
        for i, label in enumerate(LABELS):
            for j, guess in enumerate(LABELS):
                r = c.get("/models/notes@1/examples", params={"label": label, "predicted": guess})
                assert r.status_code == 200, r.text
                items = r.json()["items"]
                expected = sorted(k for k in ROWS if truth[k] == label and PREDICTED[k] == guess)
                assert [e["key"] for e in items] == expected and len(items) == matrix[i][j], (label, guess)
                for e in items:
                    assert (e["label"], e["predicted"], e["dataset"], e["rev"]) == (label, guess, "notes", commit)
                    assert e["input"] == inputs[e["key"]]
        assert [e["key"] for e in c.get("/models/notes@1/examples", params={"label": "dog", "predicted": "cat"}).json()["items"]] == [
            "k1",
            "k7",
        ]
        snippet = c.get("/models/notes@1/examples", params={"label": "dog", "predicted": "dog"}).json()["items"][0]["snippet"]
        assert snippet.startswith("a fish that purrs") and snippet.endswith("…") and len(snippet) <= 241

        # Paged one at a time in key order, with only a prediction, or with neither (the whole eval set).
        seen, cursor = [], None
        while True:
            page = c.get("/models/notes@1/examples", params={"predicted": "dog", "limit": 1, "cursor": cursor or ""}).json()
            seen += [e["key"] for e in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ["k3", "k4", "k5"]
        everything = c.get("/models/notes@latest/examples").json()
        assert [e["key"] for e in everything["items"]] == sorted(ROWS) and everything["next_cursor"] is None

        # What cannot be answered says why.
        assert "not a label" in assert_problem(c.get("/models/notes@1/examples", params={"label": "cow"}), 422)["detail"]
        assert "eval set 'gold'" in assert_problem(c.get("/models/notes@1/examples", params={"eval_set": "gold"}), 404)["detail"]
        assert "no model notes@9" in assert_problem(c.get("/models/notes@9/examples"), 404)["detail"]
        assert_problem(c.get("/models/notes/examples"), 422)
        assert_problem(c.get("/models/notes@1/examples", params={"cursor": "not-ours"}), 422)

        # The promotion gate's 409 carries its figures for a page to show.
        assert c.post("/models/notes@2/promote", json={}).status_code == 200
        refused = assert_problem(c.post("/models/notes@1/promote", json={}), 409)
        assert (refused["candidate"], refused["production"], refused["max_regression"]) == ("notes@1", "notes@2", 0.01)
        assert refused["checked"] == [{"eval_set": "eval", "production": 1.0, "candidate": 5 / 9}]

    stranger = api.client(api.add_user("lee", "labeler", ()))
    assert_problem(stranger.get("/models/notes@1/examples"), 403)
    schema = httpx.get(f"{api.url}/openapi.json").json()["paths"]["/api/v1/models/{ref}/examples"]["get"]
    answer = schema["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert answer.endswith("Page_ModelExample_") and {p["name"] for p in schema["parameters"]} >= {
        "eval_set",
        "label",
        "predicted",
        "cursor",
    }
