"""Merge requests over REST: opened by a labeler, refused when pointless, conflicts resolved key by key, merged by an engineer."""

from tests.factories import write_csv


def commit(c, branch: str, edits: dict[str, str], message: str) -> str:
    for key, label in edits.items():  # with the version seen, as a labeler's edit must carry
        seen = c.get(f"/datasets/t/examples/{key}", params={"rev": branch}).json()
        r = c.put(f"/datasets/t/edits/{key}", params={"branch": branch}, json={"label": label, "version": seen["version"]})
        assert r.status_code == 200, r.text
    r = c.post("/datasets/t/commits", json={"branch": branch, "message": message})
    assert r.status_code == 201, r.text
    return r.json()["commit"]["id"]


def label_at(c, rev: str, key: str) -> str | None:
    return c.get(f"/datasets/t/examples/{key}", params={"rev": rev}).json()["label"]


def test_a_request_is_opened_checked_resolved_and_merged_and_the_rules_hold(api, cli, tmp_path):
    cli.ok("dataset", "create", "t", "--modality", "text", "--labels", "a,b,c")
    cli.ok("import", "t", write_csv(tmp_path / "rows.csv", [[f"k{i:02d}", "a", f"text {i}"] for i in range(10)]))
    eng = api.client(api.add_user("eve", "engineer"))
    lena = api.client(api.add_user("lena", "labeler", ("t",)))
    lou = api.client(api.add_user("lou", "labeler", ("t",)))
    for branch in ("release", "fix", "idle"):
        assert eng.post("/datasets/t/branches", json={"name": branch}).status_code == 201
    commit(lena, "fix", {"k01": "b", "k02": "b", "k03": "c"}, "fix three")
    commit(eng, "release", {"k01": "c", "k09": "b"}, "release changes")  # k01 now conflicts

    base = "/datasets/t/merge-requests"
    refused = {
        "into itself": ({"source": "fix", "target": "fix", "title": "x"}, 422, "into itself"),
        "nothing to merge": ({"source": "idle", "target": "release", "title": "x"}, 422, "nothing to merge"),
        "unknown branch": ({"source": "nope", "target": "release", "title": "x"}, 404, "nope"),
        "no title": ({"source": "fix", "target": "release", "title": ""}, 422, "title"),
    }
    for why, (body, code, text) in refused.items():
        r = lena.post(base, json=body)
        assert r.status_code == code and text in r.text, (why, r.text)
    r = lena.post(base, json={"source": "fix", "target": "release", "title": "Fix three labels", "description": "k01 was wrong"})
    assert r.status_code == 201, r.text
    opened = r.json()
    assert (opened["id"], opened["number"], opened["author"], opened["state"]) == ("t!1", 1, "lena", "open")
    assert lena.post(base, json={"source": "fix", "target": "release", "title": "again"}).status_code == 409
    assert [m["number"] for m in eng.get(base, params={"state": "open"}).json()["items"]] == [1]

    detail = eng.get(f"{base}/1").json()
    assert (detail["ahead"], detail["behind"], detail["mergeable"], detail["conflicts_left"]) == (1, 1, "conflicts", 1)
    (conflict,) = detail["conflicts"]
    assert (conflict["key"], conflict["base_label"], conflict["target_label"], conflict["source_label"], conflict["take"]) == (
        "k01",
        "a",
        "c",
        "b",
        None,
    )
    assert detail["check"]["source_head"] and detail["check"]["model"] is None and detail["check"]["production"] is None
    assert eng.get(f"{base}/7").status_code == 404 and "!7" in eng.get(f"{base}/7").json()["detail"]

    # Comments; the author or an engineer resolves; only a conflicting key can be resolved.
    assert lou.post(f"{base}/1/comments", json={"body": "<b>looks right</b>"}).status_code == 201
    assert lou.put(f"{base}/1/resolutions/k01", json={"take": "theirs"}).status_code == 403
    r = lena.put(f"{base}/1/resolutions/k02", json={"take": "theirs"})
    assert r.status_code == 422 and "not in conflict" in r.json()["detail"]
    assert lena.put(f"{base}/1/resolutions/k01", json={"take": "sideways"}).status_code == 422
    r = lena.put(f"{base}/1/resolutions/k01", json={"take": "theirs"})
    assert r.status_code == 200 and r.json()["taken_by"] == "lena", r.text
    detail = eng.get(f"{base}/1").json()
    assert (detail["mergeable"], detail["conflicts_left"], detail["conflicts"][0]["take"]) == ("resolved", 0, "theirs")
    assert [(c["author"], c["body"]) for c in detail["comments"]] == [("lou", "<b>looks right</b>")]

    # Labelers may not approve or merge; the target moved since: re-checked, the new conflict named, nothing written.
    assert lena.post(f"{base}/1/approve").status_code == 403
    assert lena.post(f"{base}/1/merge").status_code == 403
    commit(eng, "release", {"k03": "b"}, "a second change on release")
    head_before = eng.get("/datasets/t/branches").json()
    r = eng.post(f"{base}/1/merge")
    assert r.status_code == 409 and "k03" in r.json()["detail"] and "k01" not in r.json()["detail"], r.text
    assert eng.get("/datasets/t/branches").json() == head_before
    assert lena.put(f"{base}/1/resolutions/k03", json={"take": "ours"}).status_code == 200
    assert eng.post(f"{base}/1/approve").json()["approved_by"] == ["eve"]
    r = eng.post(f"{base}/1/merge")
    assert r.status_code == 200, r.text
    merged = r.json()
    assert (merged["state"], merged["merged_by"]) == ("merged", "eve") and merged["merge_commit"]
    assert {k: label_at(eng, "release", k) for k in ("k01", "k02", "k03", "k09")} == {"k01": "b", "k02": "b", "k03": "b", "k09": "b"}
    head = eng.get("/datasets/t/commits", params={"rev": "release", "limit": 1}).json()["items"][0]
    assert head["id"] == merged["merge_commit"] and head["message"] == "merge t!1: Fix three labels" and len(head["parents"]) == 2
    assert eng.post(f"{base}/1/merge").status_code == 409
    assert eng.get(f"{base}/1").json()["mergeable"] == "merged"

    # A fast-forward request; its author closes another one; a closed one stays closed.
    assert eng.post("/datasets/t/branches", json={"name": "more", "from": "fix"}).status_code == 201
    commit(lena, "more", {"k05": "c"}, "one more")
    assert lena.post(base, json={"source": "more", "target": "fix", "title": "ff"}).json()["number"] == 2
    assert eng.get(f"{base}/2").json()["mergeable"] == "fast-forward"
    assert lou.post(f"{base}/2/close").status_code == 403
    assert lena.post(f"{base}/2/close").json()["state"] == "closed"
    assert lena.post(f"{base}/2/close").status_code == 409
    assert [m["number"] for m in eng.get(base).json()["items"]] == [2, 1]
    outsider = api.client(api.add_user("olga", "labeler", ()))
    assert outsider.get(base).status_code == 403
