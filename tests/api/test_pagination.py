"""Cursor pagination of every list over HTTP: whole, ordered, without duplicates or gaps; bad cursors and limits are 422s."""

import base64
import csv
import io
import json

from tests.api.factories import imported

PROBLEM = "application/problem+json"


def text_csv(rows: list[list[str]]) -> dict:
    """A text dataset CSV as the multipart `files` field of an import."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["key", "label", "text"])
    writer.writerows(rows)
    return {"files": ("data.csv", buf.getvalue().encode(), "text/csv")}


def walk(c, path: str, limit: int, **params) -> list[list[dict]]:
    """Every page of a list, following next_cursor until it is null."""
    pages, cursor = [], None
    while True:
        r = c.get(path, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "the cursor never ran out"


def assert_paged(c, path: str, limit: int, field: str, **params) -> list:
    """Pages of path hold at most limit items (all full but the last), and together the whole list (limit 1000) in order."""
    pages = walk(c, path, limit, **params)
    whole = c.get(path, params={**params, "limit": 1000}).json()
    assert whole["next_cursor"] is None
    ids = [item[field] for page in pages for item in page]
    assert ids == [item[field] for item in whole["items"]], (path, ids)
    assert len(ids) == len(set(ids)), f"{path}: duplicates across pages"
    assert all(len(p) == limit for p in pages[:-1]) and 0 < len(pages[-1]) <= limit or ids == [], [len(p) for p in pages]
    return ids


def forged(value: object) -> str:
    """A cursor a client made up: well-formed base64 JSON, but not one this list gave out."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_every_list_pages_completely_in_a_stable_order(api):
    """Datasets, branches, tags, commits, examples, edits, runs, models, users, tokens and audit page whole and in order."""
    with api.admin as c:
        for i in range(5):
            assert c.post("/datasets", json={"name": f"d{i}", "modality": "text", "labels": ["a", "b"]}).status_code == 201
        rows = [[f"e{i:02d}", "ab"[i % 3 == 0], f"text {i}"] for i in range(25)]
        assert imported(c, c.post("/datasets/d0/imports", files=text_csv(rows)))["changes"] == 25
        for i in range(5):  # one commit each
            imported(c, c.post("/datasets/d0/imports", files=text_csv([[f"late{i}", "a", f"late {i}"]])))
        for i in range(5):
            assert c.post("/datasets/d0/branches", json={"name": f"b{i}"}).status_code == 201
            assert c.post("/datasets/d0/tags", json={"name": f"v{i}", "rev": "main"}).status_code == 201
        for key in ("e01", "e02", "e04"):
            seen = c.get(f"/datasets/d0/examples/{key}", params={"rev": "b0"}).json()["version"]
            assert c.put(f"/datasets/d0/edits/{key}", params={"branch": "b0"}, json={"label": "a", "version": seen}).status_code == 200
        for i in range(4):
            assert c.post("/users", json={"name": f"u{i}", "role": "labeler", "datasets": ["d0"]}).status_code == 201
            assert c.post(f"/users/u{i}/tokens", json={"label": f"extra {i}"}).status_code == 201

        assert c.get("/runs").json() == {"items": [], "next_cursor": None}
        assert c.get("/datasets/d0/models").json() == {"items": [], "next_cursor": None}
        for _ in range(3):
            assert c.post("/datasets/d0/runs", json={}).status_code == 201

        assert assert_paged(c, "/datasets", 2, "name") == ["d0", "d1", "d2", "d3", "d4"]
        assert assert_paged(c, "/datasets/d0/branches", 4, "name") == ["b0", "b1", "b2", "b3", "b4", "main"]
        assert assert_paged(c, "/datasets/d0/tags", 2, "name") == ["v0", "v1", "v2", "v3", "v4"]
        commits = assert_paged(c, "/datasets/d0/commits", 4, "id")
        assert len(commits) == 7 and c.get("/datasets/d0/commits/main").json()["id"] == commits[0]
        assert [x["parents"] for x in c.get("/datasets/d0/commits", params={"limit": 1000}).json()["items"][:-1]] == [
            [parent] for parent in commits[1:]
        ]  # newest first, each page continuing the chain
        assert assert_paged(c, "/datasets/d0/commits", 3, "id", rev="v0") == commits
        keys = assert_paged(c, "/datasets/d0/examples", 7, "key")
        assert keys == sorted([f"e{i:02d}" for i in range(25)] + [f"late{i}" for i in range(5)])
        labeled_b = assert_paged(c, "/datasets/d0/examples", 3, "key", label="b")
        assert labeled_b == [f"e{i:02d}" for i in range(25) if i % 3 == 0]
        assert assert_paged(c, "/datasets/d0/examples", 4, "key", rev=commits[-2]) == [f"e{i:02d}" for i in range(25)]
        assert assert_paged(c, "/datasets/d0/edits", 2, "key", branch="b0") == ["e01", "e02", "e04"]
        runs = assert_paged(c, "/runs", 2, "id")
        assert len(runs) == 3 and runs == sorted(runs, reverse=True)
        assert assert_paged(c, "/runs", 2, "id", dataset="d0") == runs
        assert c.get("/runs", params={"dataset": "d1"}).json() == {"items": [], "next_cursor": None}
        assert assert_paged(c, "/users", 2, "name") == ["root", "u0", "u1", "u2", "u3"]
        assert len(assert_paged(c, "/users/u0/tokens", 1, "id")) == 2
        audit = assert_paged(c, "/audit", 5, "id")
        assert audit == sorted(audit, reverse=True) and len(audit) >= 30
        by_root = assert_paged(c, "/audit", 3, "id", actor="root")
        assert by_root == [e["id"] for e in c.get("/audit", params={"limit": 1000}).json()["items"] if e["actor"] == "root"]

        for text in ("one", "two", "three"):  # blame: one entry per commit that changed the example
            imported(c, c.post("/datasets/d1/imports", files=text_csv([["k", "a", text]])))
        blamed = assert_paged(c, "/datasets/d1/blame/k", 2, "commit")
        assert blamed == [x["id"] for x in c.get("/datasets/d1/commits", params={"limit": 1000}).json()["items"][:3]][::-1]

    lee = api.add_user("lee", "labeler", ("d1", "d3"))
    with api.client(lee) as c:  # a labeler's pages hold only their datasets
        assert assert_paged(c, "/datasets", 1, "name") == ["d1", "d3"]


def test_pages_of_examples_do_not_skip_or_repeat_when_the_branch_moves(api):
    """A key cursor keeps its place: examples added before or after it while paging are neither repeated nor make others vanish."""
    with api.admin as c:
        assert c.post("/datasets", json={"name": "d", "modality": "text", "labels": ["a", "b"]}).status_code == 201
        imported(c, c.post("/datasets/d/imports", files=text_csv([[f"k{i:02d}", "a", "t"] for i in range(0, 20, 2)])))
        first = c.get("/datasets/d/examples", params={"limit": 4}).json()
        assert [e["key"] for e in first["items"]] == ["k00", "k02", "k04", "k06"]
        imported(c, c.post("/datasets/d/imports", files=text_csv([["k01", "a", "t"], ["k13", "b", "t"]])))
        rest, cursor = [], first["next_cursor"]
        while cursor:
            page = c.get("/datasets/d/examples", params={"limit": 4, "cursor": cursor}).json()
            rest += [e["key"] for e in page["items"]]
            cursor = page["next_cursor"]
        assert rest == ["k08", "k10", "k12", "k13", "k14", "k16", "k18"]


def test_bad_cursors_and_limits_are_422_problems(api):
    """Garbage, foreign or stale cursors and out-of-range limits are 422 problem+json naming the parameter, never a 500."""
    with api.admin as c:
        assert c.post("/datasets", json={"name": "d", "modality": "text", "labels": ["a", "b"]}).status_code == 201
        imported(c, c.post("/datasets/d/imports", files=text_csv([["k1", "a", "t"], ["k2", "b", "t"]])))
        assert c.post("/datasets/d/runs", json={}).status_code == 201
        lists = [
            "/datasets",
            "/datasets/d/branches",
            "/datasets/d/tags",
            "/datasets/d/commits",
            "/datasets/d/examples",
            "/datasets/d/edits?branch=main",
            "/datasets/d/models",
            "/datasets/d/blame/k1",
            "/runs",
            "/users",
            "/users/root/tokens",
            "/audit",
        ]
        for path in lists:
            for cursor in ["!!!not-a-cursor", "zzzz", "eyJh", forged({"key": "k1"}), forged([1, 2]), forged(1.5)]:
                r = c.get(path, params={"cursor": cursor})
                assert r.status_code == 422, (path, cursor, r.status_code, r.text)
                assert r.headers["content-type"].startswith(PROBLEM) and "cursor" in r.json()["detail"], (path, r.text)
                assert repr(cursor) in r.json()["detail"] or cursor in r.json()["detail"], (path, r.text)
            for limit in ["0", "-1", "1001", "5000", "ten"]:
                r = c.get(path, params={"limit": limit})
                assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), (path, limit, r.text)
                assert "limit" in r.json()["detail"], r.text
        for path, cursor in [
            ("/datasets", forged(7)),
            ("/datasets/d/examples", forged(7)),
            ("/users", forged(7)),
            ("/runs", forged("d")),
            ("/audit", forged("root")),
            ("/datasets/d/commits", forged("0" * 64)),
        ]:
            r = c.get(path, params={"cursor": cursor})  # another list's cursor
            assert r.status_code == 422 and "cursor" in r.json()["detail"], (path, r.text)
        for path in ["/runs", "/audit", "/users/root/tokens"]:  # a number past any id is a page, not a 500
            r = c.get(path, params={"cursor": forged(10**30)})
            assert r.status_code == 200 and r.json()["next_cursor"] is None, (path, r.status_code, r.text)
        assert "Traceback" not in api.log()
