"""Merge conflicts over REST (a 409 listing every conflict, strategy, resolutions, the merge in progress) and from the remote CLI."""

import json

from tests.api.test_cli_remote import remote
from tests.factories import write_csv

CONFLICT_FIELDS = {"key", "base_label", "target_label", "source_label", "base_removed", "target_removed", "source_removed"}


def diverged(cli, tmp_path, keys: int = 4, clashing: int = 2) -> list[str]:
    """Dataset t: main labels k01..k{clashing} b, fix labels them c (and k{keys} b, a clean change); the clashing keys."""
    cli.ok("dataset", "create", "t", "--modality", "text", "--labels", "a,b,c,d")
    cli.ok("import", "t", write_csv(tmp_path / "rows.csv", [[f"k{i:02d}", "a", f"text {i}"] for i in range(1, keys + 1)]))
    cli.ok("branch", "t", "fix")
    clash = [f"k{i:02d}" for i in range(1, clashing + 1)]
    for branch, edits in (("main", dict.fromkeys(clash, "b")), ("fix", {**dict.fromkeys(clash, "c"), f"k{keys:02d}": "b"})):
        cli.ok("label", "t", "--file", write_csv(tmp_path / f"{branch}.csv", list(edits.items()), ("key", "label")), "--branch", branch)
        cli.ok("commit", "t", "-m", f"edits on {branch}", "--branch", branch)
    return clash


def label_of(c, key: str, rev: str = "main") -> str:
    r = c.get(f"/datasets/t/examples/{key}", params={"rev": rev})
    assert r.status_code == 200, r.text
    return r.json()["label"]


def test_rest_lists_every_conflict_and_resolves_by_strategy_label_and_pending(api, cli, tmp_path):
    clash = diverged(cli, tmp_path, keys=32, clashing=30)
    cli.ok("branch", "t", "other", "--from", "main")
    cli.ok("branch", "t", "third", "--from", "main")
    with api.client(api.add_user("eve", "engineer")) as c:
        r = c.post("/datasets/t/merges", json={"source": "fix", "into": "main"})
        assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        assert [x["key"] for x in problem["conflicts"]] == clash  # all 30, not 5
        assert {k: problem["conflicts"][0][k] for k in CONFLICT_FIELDS} == {
            "key": "k01",
            "base_label": "a",
            "target_label": "b",
            "source_label": "c",
            "base_removed": False,
            "target_removed": False,
            "source_removed": False,
        }
        # the merge in progress, readable and resolvable over REST
        pending = c.get("/datasets/t/merges/pending", params={"into": "main"}).json()
        assert pending["source"] == "fix" and pending["unresolved"] == 30 and len(pending["conflicts"]) == 30
        bad = c.put("/datasets/t/merges/pending/resolutions/k01", params={"into": "main"}, json={"label": "zebra"})
        assert bad.status_code == 422 and "zebra" in bad.json()["detail"]
        assert c.put("/datasets/t/merges/pending/resolutions/k01", json={"take": "mine"}).status_code == 422
        assert c.put("/datasets/t/merges/pending/resolutions/k01", json={"take": "ours", "label": "a"}).status_code == 422
        assert c.put("/datasets/t/merges/pending/resolutions/k31", json={"label": "a"}).status_code == 422  # not in conflict
        assert c.put("/datasets/t/merges/pending/resolutions/k01", json={"take": "ours"}).json()["state"] == "pending"
        # main moves under the merge in progress: k01's resolution is dropped (main changed it), k03's kept
        assert c.put("/datasets/t/merges/pending/resolutions/k03", json={"label": "a"}).json()["state"] == "pending"
        cli.ok("label", "t", "k01", "d")
        cli.ok("commit", "t", "-m", "k01 again")
        moved = c.put("/datasets/t/merges/pending/resolutions/k02", json={"label": "d"}).json()
        assert moved["state"] == "pending" and moved["target_moved"] is True and moved["unresolved"] == 28
        by_key = {x["key"]: x for x in moved["conflicts"]}
        assert by_key["k01"]["target_label"] == "d" and by_key["k01"]["resolution"] is None
        assert by_key["k02"]["resolution"] == {"label": "d"} and by_key["k03"]["resolution"] == {"label": "a"}
        for i, key in enumerate(clash):
            r = c.put(
                f"/datasets/t/merges/pending/resolutions/{key}", params={"into": "main"}, json={"label": "d"} if i else {"take": "ours"}
            )
            assert r.status_code == 200, r.text
            assert r.json()["state"] == ("merged" if key == clash[-1] else "pending")
        done = r.json()
        assert done["outcome"] == "merge" and len(done["head"]) == 64
        assert [label_of(c, k) for k in ("k01", "k02", "k03", "k30", "k32")] == ["d", "d", "d", "d", "b"]
        assert c.get("/datasets/t/merges/pending", params={"into": "main"}).status_code == 404
        # strategy and per-key resolutions in the merge body
        r = c.post(
            "/datasets/t/merges", json={"source": "fix", "into": "other", "strategy": "theirs", "resolutions": {"k02": {"label": "a"}}}
        )
        assert r.status_code == 200 and r.json()["outcome"] == "merge", r.text
        assert [label_of(c, k, "other") for k in ("k01", "k02", "k30")] == ["c", "a", "c"]
        assert c.post("/datasets/t/merges", json={"source": "fix", "into": "third", "strategy": "mine"}).status_code == 422
        r = c.post("/datasets/t/merges", json={"source": "fix", "into": "third", "resolutions": {"k01": {"label": "zebra"}}})
        assert r.status_code == 422 and "zebra" in r.json()["detail"]
        # partial resolutions: the 409 lists the 29 left; DELETE aborts
        r = c.post("/datasets/t/merges", json={"source": "fix", "into": "third", "resolutions": {"k01": {"take": "theirs"}}})
        assert r.status_code == 409 and len(r.json()["conflicts"]) == 29
        assert c.get("/datasets/t/merges/pending", params={"into": "third"}).json()["unresolved"] == 29
        assert c.delete("/datasets/t/merges/pending", params={"into": "third"}).status_code == 204
        assert c.delete("/datasets/t/merges/pending", params={"into": "third"}).status_code == 404
        assert label_of(c, "k01", "third") == "b"


def test_the_remote_cli_resolves_conflicts_three_ways(api, s2env, tmp_path, cli):
    eng = remote(s2env, tmp_path, api, api.add_user("eve", "engineer"))
    clash = diverged(cli, tmp_path)  # seeded on the store (main is protected against a server's labelers' edits)
    for branch in ("other", "third", "fifth"):
        eng.ok("branch", "t", branch, "--from", "main")
    proc = eng.run("merge", "t", "fix", "--into", "main")
    header, *said = [line for line in proc.stderr.splitlines() if line.strip()]  # the table's header: on stderr when piped
    assert proc.returncode == 1 and header.split() == ["KEY", "BASE", "TARGET", "SOURCE"]
    assert [line.split()[0] for line in proc.stdout.splitlines()] == clash
    assert len(said) == 1 and "s2 resolve t KEY LABEL" in said[0]
    proc = eng.run("merge", "t", "fix", "--into", "main", "--json")
    assert proc.returncode == 1 and [c["key"] for c in json.loads(proc.stdout)["conflicts"]] == clash
    # per key, with labels
    assert "label 'zebra'" in eng.fails("resolve", "t", "k01", "zebra", "--into", "main")
    assert "1 conflict(s) left" in eng.run("resolve", "t", "k01", "d", "--into", "main").stderr
    head = eng.last_line("resolve", "t", "k02", "a", "--into", "main")
    assert len(head) == 64
    show = {k: json.loads(eng.ok("show", "t", k))["label"] for k in ("k01", "k02", "k04")}
    assert show == {"k01": "d", "k02": "a", "k04": "b"}
    # --ours and --theirs
    eng.ok("merge", "t", "fix", "--into", "other", "--ours")
    assert json.loads(eng.ok("show", "t", "k01", "--rev", "other"))["label"] == "b"
    eng.ok("merge", "t", "fix", "--into", "third", "--theirs")
    assert json.loads(eng.ok("show", "t", "k01", "--rev", "third"))["label"] == "c"
    # --abort drops a merge in progress
    assert eng.run("merge", "t", "fix", "--into", "fifth").returncode == 1
    assert "aborted the merge in progress into fifth" in eng.run("merge", "--abort", "t", "--into", "fifth").stderr
    assert "no merge in progress into 'fifth'" in eng.fails("merge", "--abort", "t", "--into", "fifth")
    assert json.loads(eng.ok("show", "t", "k01", "--rev", "fifth"))["label"] == "b"
