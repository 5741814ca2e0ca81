"""GET /datasets/NAME/diff/summary: the counts and the from-to matrix of a whole diff, remembered per pair of commits."""

import json
from pathlib import Path

from tests.api.pages.conftest import add_labeler
from tests.api.test_roles import assert_problem
from tests.factories import write_image_csv

LABELS = [str(d) for d in range(10)]
# What work changes of main: 3->8 four times, 1->7 twice, 9->8 once (with a new image), unlabeled->5 once;
# k09 gets a new image only; k05 and k06 are removed; n00, n01 and n02 are added.
RELABELS = {"k03": "8", "k13": "8", "k23": "8", "k33": "8", "k01": "7", "k11": "7", "k36": "5"}
REMOVED = ("k05", "k06")
MATRIX = [
    {"from": "1", "to": "7", "count": 2},
    {"from": "3", "to": "8", "count": 4},
    {"from": "9", "to": "8", "count": 1},
    {"from": None, "to": "5", "count": 1},
]


def build_diff(api, cli, tmp_path: Path, name: str = "pics") -> dict:
    """An image dataset with 40 examples on main and a branch `work` that adds, removes, relabels and modifies some."""
    cli.ok("dataset", "create", name, "--modality", "image", "--labels", ",".join(LABELS))
    main = {f"k{i:02d}": (str(i % 10) if i < 36 else "") for i in range(40)}
    first = cli.last_line("import", name, write_image_csv(tmp_path / "main", main))
    cli.ok("branch", name, "work")
    # New inputs: n00..n02 are added; k09 and k19 get other images (their index in this file), k19 a new label too.
    cli.ok(
        "import", name, write_image_csv(tmp_path / "work", {"n00": "2", "n01": "2", "n02": "", "k09": "9", "k19": "8"}), "--branch", "work"
    )
    with api.admin as c:
        edits = [{"key": k, "label": v} for k, v in RELABELS.items()] + [{"key": k, "remove": True} for k in REMOVED]
        r = c.post(f"/datasets/{name}/edits", params={"branch": "work"}, json={"edits": edits})
        assert r.status_code == 200, r.text
        r = c.post(f"/datasets/{name}/commits", json={"message": "relabel and prune", "branch": "work"})
        assert r.status_code == 201, r.text
        work = r.json()["commit"]["id"]
    return {"first": first, "work": work}


def test_summary_counts_the_whole_diff_and_follows_the_commits(api, cli, tmp_path):
    """Counts and matrix agree with `s2 diff --json`; a moved branch gives its new commit's counts; errors are problems."""
    made = build_diff(api, cli, tmp_path)
    with api.admin as c:
        r = c.get("/datasets/pics/diff/summary", params={"a": "main", "b": "work"})
        assert r.status_code == 200, r.text
        summary = r.json()
        assert summary == {
            "a": made["first"],
            "b": made["work"],
            "added": 3,
            "removed": 2,
            "relabeled": 8,
            "modified": 2,
            "relabels": MATRIX,
        }
        whole = json.loads(cli.ok("diff", "pics", "main", "work", "--json"))
        assert (len(whole["added"]), len(whole["removed"]), len(whole["relabeled"]), len(whole["modified"])) == (3, 2, 8, 2)
        assert c.get("/datasets/pics/diff/summary", params={"a": "main", "b": "work"}).json() == summary  # remembered: the same
        # Reversed: additions become removals, each relabel runs the other way.
        back = c.get("/datasets/pics/diff/summary", params={"a": "work", "b": made["first"][:10]}).json()
        assert (back["added"], back["removed"], back["relabeled"]) == (2, 3, 8)
        assert {(p["from"], p["to"]): p["count"] for p in back["relabels"]} == {("7", "1"): 2, ("8", "3"): 4, ("8", "9"): 1, ("5", None): 1}
        same = c.get("/datasets/pics/diff/summary", params={"a": "work", "b": "work"}).json()
        assert (same["added"], same["removed"], same["relabeled"], same["modified"], same["relabels"]) == (0, 0, 0, 0, [])

        # The branch moves: a name is resolved each time, so the remembered counts of the old commit are not reused.
        assert c.post("/datasets/pics/edits", params={"branch": "work"}, json={"edits": [{"key": "k04", "label": "8"}]}).status_code == 200
        assert c.post("/datasets/pics/commits", json={"message": "one more", "branch": "work"}).status_code == 201
        moved = c.get("/datasets/pics/diff/summary", params={"a": "main", "b": "work"}).json()
        assert moved["relabeled"] == 9 and {"from": "4", "to": "8", "count": 1} in moved["relabels"]
        assert c.get("/datasets/pics/diff/summary", params={"a": "main", "b": made["work"]}).json() == summary

        problem = assert_problem(c.get("/datasets/pics/diff/summary", params={"a": "main", "b": "nope"}), 404)
        assert "nope" in problem["detail"]
        assert_problem(c.get("/datasets/pics/diff/summary", params={"a": "main"}), 422)
    outsider = add_labeler(api, cli, "olga", ())
    with api.client(outsider) as c:
        assert "not assigned" in assert_problem(c.get("/datasets/pics/diff/summary", params={"a": "main", "b": "work"}), 403)["detail"]
