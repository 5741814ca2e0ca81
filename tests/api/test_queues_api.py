"""Labeling queues over HTTP and the CLI: guesses, filters, review queues filled from a file, who may do what."""

from pathlib import Path

from tests.api.factories import register_model
from tests.factories import write_image_csv

LABELS = ["cat", "dog", "fox"]


def seed(api, cli, blobs, tmp_path: Path) -> dict[str, str]:
    """Six unlabeled images (p0..p5), nine labeled ones (l0..l8), and a model that guesses each (confidence 0.5 up)."""
    cli.ok("dataset", "create", "pets", "--modality", "image", "--labels", ",".join(LABELS))
    keys = [f"p{i}" for i in range(6)]
    labeled = {f"l{i}": LABELS[i % 3] for i in range(9)}
    cli.ok("import", "pets", write_image_csv(tmp_path / "src", {**{k: "" for k in keys}, **labeled}))
    guess = {k: LABELS[i % 3] for i, k in enumerate(keys)}
    probs = {k: [0.5 + i / 10 if label == guess[k] else (0.5 - i / 10) / 2 for label in LABELS] for i, k in enumerate(keys)}
    with api.admin as c:
        r = c.post("/datasets/pets/runs", json={})
        assert r.status_code in (201, 202), r.text
        run = r.json()["id"]
    register_model(blobs, run, LABELS, guess, guess, probs)
    return guess


def test_queues_carry_the_models_guess_and_filter_by_it(api, cli, blobs, tmp_path):
    guess = seed(api, cli, blobs, tmp_path)
    with api.admin as c:
        page = c.get("/datasets/pets/queue", params={"queue": "unlabeled", "limit": 4}).json()
        assert [i["example"]["key"] for i in page["items"]] == ["p0", "p1", "p2", "p3"] and page["next_cursor"]
        first = page["items"][0]["guess"]
        assert first["label"] == "cat" and first["model"] == 1 and abs(first["confidence"] - 0.5) < 1e-6
        assert [t["label"] for t in first["top"]][0] == "cat" and len(first["top"]) == 3
        rest = c.get("/datasets/pets/queue", params={"queue": "unlabeled", "cursor": page["next_cursor"]}).json()
        assert [i["example"]["key"] for i in rest["items"]] == ["p4", "p5"] and rest["next_cursor"] is None
        dogs = c.get("/datasets/pets/queue", params={"predicted": "dog"}).json()["items"]
        assert [i["example"]["key"] for i in dogs] == [k for k, g in sorted(guess.items()) if g == "dog"]
        unsure = c.get("/datasets/pets/queue", params={"queue": "unlabeled", "max_confidence": 0.65}).json()["items"]
        assert [i["example"]["key"] for i in unsure] == ["p0", "p1"]
        labeled_cat = c.get("/datasets/pets/queue", params={"label": "cat"}).json()["items"]
        assert [i["example"]["key"] for i in labeled_cat] == ["l0", "l3", "l6"]
        assert c.get("/datasets/pets/queue", params={"predicted": "wolf"}).status_code == 422
        assert c.get("/datasets/pets/queue", params={"queue": "nope"}).status_code == 404
        assert c.get("/datasets/pets/queue", params={"max_confidence": 2}).status_code == 422
        assert c.get("/datasets/pets/queue", params={"cursor": "!!"}).status_code == 422


def test_review_queues_are_filled_by_engineers_from_a_file_and_opened_by_labelers(api, cli, blobs, tmp_path):
    seed(api, cli, blobs, tmp_path)
    ana = api.add_user("ana", "labeler", ("pets",))
    suspects = tmp_path / "suspects.csv"
    suspects.write_text("key,score,reason\np3,0.9,label says cat; model says fox\np1,0.4,\np5,0.95,two models disagree\n")
    assert "3 added, 0 re-scored" in cli.run("review", "add", "pets", "--file", suspects, "--queue", "suspects").stderr
    assert cli.ok("review", "list", "pets", "-Q", "suspects").splitlines()[0].split("\t")[:2] == ["0.95", "p5"]
    bad = tmp_path / "bad.csv"
    bad.write_text("name,score\np1,1\n")
    assert "needs a header row with a 'key' column" in cli.fails("review", "add", "pets", "--file", bad)
    assert "no example 'zzz'" in cli.fails("review", "add", "pets", "zzz")
    with api.client(ana) as c:
        page = c.get("/datasets/pets/queue", params={"queue": "suspects", "limit": 2}).json()
        assert [(i["example"]["key"], i["score"], i["reason"]) for i in page["items"]] == [
            ("p5", 0.95, "two models disagree"),
            ("p3", 0.9, "label says cat; model says fox"),
        ]
        rest = c.get("/datasets/pets/queue", params={"queue": "suspects", "cursor": page["next_cursor"]}).json()
        assert [i["example"]["key"] for i in rest["items"]] == ["p1"]
        listed = c.get("/datasets/pets/queues/suspects").json()["items"]
        assert [i["key"] for i in listed] == ["p5", "p3", "p1"]
        # Labelers work a review queue; engineers fill and empty it.
        assert c.post("/datasets/pets/queues/suspects", json={"items": [{"key": "p0"}]}).status_code == 403
        assert c.delete("/datasets/pets/queues/suspects").status_code == 403
    with api.admin as c:
        assert c.post("/datasets/pets/queues/all", json={"items": [{"key": "p0"}]}).status_code == 422
        assert c.post("/datasets/pets/queues/suspects", json={"items": []}).status_code == 422
        assert c.delete("/datasets/pets/queues/suspects", params={"key": ["p1", "p3"]}).json() == {"removed": 2}
    assert "1 removed" in cli.run("review", "clear", "pets", "-Q", "suspects").stderr
