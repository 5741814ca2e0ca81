"""Labelers editing the same examples over HTTP: stale versions are 409s that name the current label, never silent overwrites."""

import csv
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor

from tests.api.factories import imported

LABELS = ["a", "b", "c", "d"]
KEYS = [f"k{i}" for i in range(6)]


def seed(api, labelers: int) -> list[str]:
    """Dataset `ds` (text, labels a-d, every example 'a') with an open branch `work`; returns labeler tokens."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["key", "label", "text"])
    writer.writerows([[k, "a", f"text of {k}"] for k in KEYS])
    with api.admin as admin:
        assert admin.post("/datasets", json={"name": "ds", "modality": "text", "labels": LABELS}).status_code == 201
        imported(admin, admin.post("/datasets/ds/imports", files={"files": ("d.csv", buf.getvalue().encode(), "text/csv")}))
        assert admin.post("/datasets/ds/branches", json={"name": "work"}).status_code == 201
    return [api.add_user(f"lab{i}", "labeler", ("ds",)) for i in range(labelers)]


def example(c, key: str) -> dict:
    """An example as an editor loads it on branch work."""
    r = c.get(f"/datasets/ds/examples/{key}", params={"rev": "work"})
    assert r.status_code == 200, r.text
    return r.json()


def stage(c, key: str, label: str, version: str):
    """Stage label on key of branch work, saying which version the editor saw."""
    return c.put(f"/datasets/ds/edits/{key}", params={"branch": "work"}, json={"label": label, "version": version})


def staged_edits(c) -> dict[str, dict]:
    """The staged edits of branch work, by key."""
    return {e["key"]: e for e in c.get("/datasets/ds/edits", params={"branch": "work"}).json()["items"]}


def test_second_labeler_with_a_stale_version_gets_409_with_current_label(api, cli):
    """Two labelers load one example; the first edit lands, the second is a 409 naming the label and version, and a retry lands."""
    ta, tb = seed(api, 2)
    with api.client(ta) as a, api.client(tb) as b:
        seen_a, seen_b = example(a, "k1"), example(b, "k1")
        assert seen_a["version"] == seen_b["version"] and seen_a["label"] == "a"
        first = stage(a, "k1", "b", seen_a["version"])
        assert first.status_code == 200, first.text
        assert first.json()["example_version"] == example(b, "k1")["version"] != seen_a["version"]

        lost = stage(b, "k1", "c", seen_b["version"])
        assert lost.status_code == 409 and lost.headers["content-type"].startswith("application/problem+json")
        body = lost.json()
        assert body["label"] == "b" and body["version"] == first.json()["example_version"] and body["by"] == "lab0"
        assert body["key"] == "k1" and "k1" in body["detail"]
        assert staged_edits(a)["k1"]["label"] == "b"  # the refused edit changed nothing

        retry = stage(b, "k1", "c", body["version"])
        assert retry.status_code == 200, retry.text
        now = staged_edits(a)["k1"]
        assert (now["label"], now["remove"], now["author"], now["version"]) == ("c", False, "lab1", 2)
        assert now["example_version"] == retry.json()["example_version"] == example(a, "k1")["version"]  # editable from the list

        # What a 200 acknowledged is in the database: the CLI reads it there, past the server.
        on_disk = {e["key"]: e for e in json.loads(cli.ok("status", "ds", "--branch", "work", "--json"))}
        assert on_disk["k1"]["label"] == "c" and on_disk["k1"]["author"] == "lab1"


def test_a_commit_or_a_restaged_edit_between_load_and_edit_makes_the_edit_stale(api):
    """A commit that changes an example, or an unstage and a new edit, make an older version a 409; other commits do not."""
    ta, tb = seed(api, 2)
    with api.client(ta) as a, api.client(tb) as b:
        loaded = example(a, "k2")
        untouched = example(a, "k3")
        assert stage(b, "k2", "d", example(b, "k2")["version"]).status_code == 200
        assert stage(b, "k4", "c", example(b, "k4")["version"]).status_code == 200
        made = b.post("/datasets/ds/commits", json={"branch": "work", "message": "k2 is d, k4 is c"})
        assert made.status_code == 201 and made.json()["commit"]["changes"] == 2
        assert staged_edits(b) == {}

        now = example(a, "k2")
        assert now["label"] == "d" and now["version"] != loaded["version"]
        stale = stage(a, "k2", "b", loaded["version"])
        assert stale.status_code == 409, stale.text
        assert stale.json()["label"] == "d" and stale.json()["version"] == now["version"] and stale.json()["by"] is None
        assert "commit" in stale.json()["detail"]

        assert example(a, "k3")["version"] == untouched["version"]  # k3 was not in the commit
        assert stage(a, "k3", "b", untouched["version"]).status_code == 200
        assert stage(a, "k2", "b", now["version"]).status_code == 200
        assert {k: e["label"] for k, e in staged_edits(a).items()} == {"k2": "b", "k3": "b"}

        # Unstaged, then staged anew: the edit's counter starts over at 1, yet what b saw is still stale.
        saw = example(b, "k3")
        assert (saw["staged_label"], saw["staged_by"]) == ("b", "lab0")
        assert a.delete("/datasets/ds/edits/k3", params={"branch": "work"}).json() == {"dropped": 1, "kept": 0}
        again = stage(a, "k3", "c", example(a, "k3")["version"])
        assert again.status_code == 200 and again.json()["version"] == 1
        overwrite = stage(b, "k3", "d", saw["version"])
        assert overwrite.status_code == 409 and overwrite.json()["label"] == "c", overwrite.text
        assert staged_edits(a)["k3"]["label"] == "c"


def test_concurrent_labelers_on_one_key_exactly_one_wins_each_round(api):
    """Eight labelers PUT the same key with the version they all read: each round exactly one wins and its label is what is staged."""
    n, rounds = 8, 5
    tokens = seed(api, n)
    clients = [api.client(t) for t in tokens]
    barrier = threading.Barrier(n, timeout=120)

    def labeler(i: int) -> list[dict]:
        c, out = clients[i], []
        for rnd in range(rounds):
            barrier.wait()  # everyone reads after the previous round's writes
            seen = example(c, "k5")
            barrier.wait()  # everyone writes after everyone read
            label = LABELS[(i + rnd) % len(LABELS)]
            r = stage(c, "k5", label, seen["version"])
            out.append({"round": rnd, "who": f"lab{i}", "seen": seen, "label": label, "status": r.status_code, "body": r.json()})
        return out

    try:
        with ThreadPoolExecutor(n) as pool:
            results = [res for out in pool.map(labeler, range(n)) for res in out]
    finally:
        for c in clients:
            c.close()

    previous = None
    for rnd in range(rounds):
        this = [res for res in results if res["round"] == rnd]
        assert len({res["seen"]["version"] for res in this}) == 1, "everyone read the same version"
        if previous is not None:  # what they read is what the previous round's winner staged
            assert {(res["seen"]["staged_label"], res["seen"]["staged_by"]) for res in this} == {(previous["label"], previous["who"])}
        assert sorted(res["status"] for res in this) == [200] + [409] * (n - 1), [(r["who"], r["status"], r["body"]) for r in this]
        for res in this:
            if res["status"] == 409:
                assert (
                    res["body"]["type"].endswith("/conflict")
                    and "k5" in res["body"]["detail"]
                    or "at the same moment" in res["body"]["detail"]
                ), res["body"]
        previous = next(res for res in this if res["status"] == 200)
        assert previous["body"]["label"] == previous["label"] and previous["body"]["author"] == previous["who"]

    with api.admin as admin:
        final = staged_edits(admin)["k5"]
        assert (final["label"], final["author"], final["version"]) == (previous["label"], previous["who"], rounds)
        stages = [e for e in admin.get("/audit", params={"limit": 1000}).json()["items"] if e["action"] == "edits.stage"]
        assert len(stages) == rounds  # only the winners' writes were recorded


def test_an_edit_that_does_not_say_which_version_it_saw_is_refused(api):
    """Overwriting unseen is impossible: a PUT must carry a version; a labeler's batch must too (an engineer's file may not)."""
    [lab] = seed(api, 1)
    with api.client(lab) as c:
        missing = c.put("/datasets/ds/edits/k0", params={"branch": "work"}, json={"label": "b"})
        assert missing.status_code == 422 and "version" in json.dumps(missing.json()["errors"])
        batch = c.post("/datasets/ds/edits", params={"branch": "work"}, json={"edits": [{"key": "k1", "label": "b"}]})
        assert batch.status_code == 428 and batch.headers["content-type"] == "application/problem+json"
        assert "k1" in batch.json()["detail"] and "version" in batch.json()["detail"]
        assert staged_edits(c) == {}
        seen = example(c, "k1")["version"]
        ok = c.post("/datasets/ds/edits", params={"branch": "work"}, json={"edits": [{"key": "k1", "label": "b", "version": seen}]})
        assert ok.status_code == 200, ok.text
    with api.admin as admin:  # bulk relabels from an engineer's file stage without versions
        bulk = admin.post("/datasets/ds/edits", params={"branch": "work"}, json={"edits": [{"key": "k2", "label": "c"}]})
        assert bulk.status_code == 200, bulk.text
        assert set(staged_edits(admin)) == {"k1", "k2"}


def test_the_default_branch_shows_and_stays_protected(api):
    seed(api, 0)
    with api.admin as admin:
        branches = {b["name"]: b["protected"] for b in admin.get("/datasets/ds/branches").json()["items"]}
        assert branches == {"main": True, "work": False}
        refused = admin.patch("/datasets/ds/branches/main", json={"protected": False})
        assert refused.status_code == 422 and "default branch" in refused.json()["detail"]
        assert admin.patch("/datasets/ds/branches/main", json={"protected": True}).json()["protected"] is True
