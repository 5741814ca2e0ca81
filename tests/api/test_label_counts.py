"""GET /datasets/NAME/label-counts: every label of the dataset with its count at a revision, for the dataset home."""

from tests.factories import write_csv


def test_label_counts_follow_commits_and_refuse_what_they_should(api, cli, tmp_path):
    cli.ok("dataset", "create", "topics", "--modality", "text", "--labels", "a,b,c")
    rows = [[f"k{i:02d}", ["a", "b", ""][i % 3], f"text {i}"] for i in range(30)]
    cli.ok("import", "topics", write_csv(tmp_path / "rows.csv", rows))
    with api.admin as c:
        r = c.get("/datasets/topics/label-counts")
        assert r.status_code == 200, r.text
        first = r.json()
        assert first["labels"] == {"a": 10, "b": 10, "c": 0} and first["unlabeled"] == 10 and first["total"] == 30
        assert c.post("/datasets/topics/branches", json={"name": "fix"}).status_code == 201
        edits = [{"key": "k02", "label": "c"}, {"key": "k00", "remove": True}]
        assert c.post("/datasets/topics/edits", params={"branch": "fix"}, json={"edits": edits}).status_code == 200
        r = c.post("/datasets/topics/commits", json={"branch": "fix", "message": "fix"})
        assert r.status_code == 201, r.text
        now = c.get("/datasets/topics/label-counts", params={"rev": "fix"}).json()
        assert now["labels"] == {"a": 9, "b": 10, "c": 1} and now["unlabeled"] == 9 and now["total"] == 29
        assert c.get("/datasets/topics/label-counts", params={"rev": first["commit"]}).json() == first
        missing = c.get("/datasets/topics/label-counts", params={"rev": "nope"})
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    token = api.add_user("lee", "labeler", ())
    with api.client(token) as c:
        assert c.get("/datasets/topics/label-counts").status_code in (403, 404)
