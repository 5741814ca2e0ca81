"""Uploads (multipart imports), exports and media over HTTP: every accepted shape, every refused one, and the bytes round trip."""

import csv
import io
import json
import tarfile
import zipfile

import httpx

from tests.api.factories import finished, imported
from tests.factories import png_bytes

PROBLEM = "application/problem+json"
IMAGES = {"cat/c0.png": png_bytes(0), "cat/c1.png": png_bytes(1), "dog/d0.png": png_bytes(2)}


def zip_bytes(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A zip of members {name: bytes}, plus symbolic links {name: target}."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, target)
    return buf.getvalue()


def tar_bytes(members: dict[str, bytes], links: dict[str, str] | None = None, mode: str = "w:gz") -> bytes:
    """A tar (gzipped by default) of members {name: bytes}, plus symbolic links {name: target}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buf.getvalue()


def csv_bytes(rows: list[list[str]], header: tuple[str, ...] = ("key", "label", "image")) -> bytes:
    """A CSV table with header and rows."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


def upload(c, dataset: str, *files: tuple[str, bytes]) -> httpx.Response:
    """POST files (name, bytes) as the `files` field of an import."""
    return c.post(f"/datasets/{dataset}/imports", files=[("files", (n, data, "application/octet-stream")) for n, data in files])


def create(c, name: str, modality: str = "image", labels: tuple[str, ...] = ("cat", "dog")) -> None:
    """An empty dataset."""
    r = c.post("/datasets", json={"name": name, "modality": modality, "labels": list(labels)})
    assert r.status_code == 201, r.text


def commit_ids(c, dataset: str) -> list[str]:
    """The history of main, newest first."""
    return [x["id"] for x in c.get(f"/datasets/{dataset}/commits", params={"limit": 1000}).json()["items"]]


def examples(c, dataset: str) -> dict[str, dict]:
    """Examples on main by key."""
    return {e["key"]: e for e in c.get(f"/datasets/{dataset}/examples", params={"limit": 1000}).json()["items"]}


def assert_refused(r: httpx.Response, status: int, *names: str) -> None:
    """A problem+json refusal with status whose detail names each of names, and never our temporary folders."""
    assert r.status_code == status, f"{r.status_code} {r.text}"
    assert r.headers["content-type"].startswith(PROBLEM)
    detail = r.json()["detail"]
    for name in names:
        assert name in detail, (name, detail)
    assert "s2-upload-" not in detail and "/tmp/" not in detail, detail


def refusal(c, r: httpx.Response) -> tuple[int | str, str]:
    """Why an upload was refused: (status, detail) when at once, ("job", error) when its import job failed."""
    if r.status_code == 202:
        job = finished(c, r)
        assert job["state"] == "failed" and job["commit"] is None, job
        return "job", job["error"]
    assert r.headers["content-type"].startswith(PROBLEM), r.text
    return r.status_code, r.json()["detail"]


def test_uploads_in_every_supported_shape_import_as_one_commit(api):
    """A zip of LABEL/FILE images, a CSV with its images, a tar.gz, a text CSV: each one commit; sending it again changes nothing."""
    with api.admin as c:
        create(c, "zipped")
        first = imported(c, upload(c, "zipped", ("pets.zip", zip_bytes(IMAGES))))
        assert {k: first[k] for k in ("examples", "changes", "rows")} == {"examples": 3, "changes": 3, "rows": 3}
        got = examples(c, "zipped")
        assert {k: e["label"] for k, e in got.items()} == {"cat/c0.png": "cat", "cat/c1.png": "cat", "dog/d0.png": "dog"}
        assert commit_ids(c, "zipped")[0] == first["commit"]
        made = c.get(f"/datasets/zipped/commits/{first['commit']}").json()
        assert made["author"] == "root" and "pets.zip" in made["message"]
        assert [j["id"] for j in c.get("/datasets/zipped/imports").json()["items"]] == [first["id"]]

        again = imported(c, upload(c, "zipped", ("pets.zip", zip_bytes(IMAGES))))
        assert {k: again[k] for k in ("commit", "examples", "changes", "rows")} == {
            "commit": first["commit"],
            "examples": 3,
            "changes": 0,
            "rows": 3,
        }
        assert len(commit_ids(c, "zipped")) == 2  # the empty root and the one import

        create(c, "tabled")
        table = csv_bytes([["a", "cat", "0.png"], ["b", "dog", "1.png"]])
        r = imported(c, upload(c, "tabled", ("labels.csv", table), ("0.png", png_bytes(10)), ("1.png", png_bytes(11))))
        assert r["changes"] == 2, r
        assert {k: e["label"] for k, e in examples(c, "tabled").items()} == {"a": "cat", "b": "dog"}

        create(c, "tarred")
        inside = {
            "export/data.csv": csv_bytes([["x", "dog", "img/x.png"], ["y", "cat", "img/y.png"]]),
            "export/img/x.png": png_bytes(20),
            "export/img/y.png": png_bytes(21),
        }
        r = c.post(
            "/datasets/tarred/imports",
            params={"message": "from the lab"},
            files={"files": ("batch.tar.gz", tar_bytes(inside), "application/gzip")},
        )
        assert imported(c, r)["changes"] == 2
        assert {k: e["label"] for k, e in examples(c, "tarred").items()} == {"x": "dog", "y": "cat"}
        assert c.get("/datasets/tarred/commits/main").json()["message"] == "from the lab"

        # The same shape zipped: the table lands on disk, its images are read from the zip in place.
        create(c, "zipped-table")
        r = c.post("/datasets/zipped-table/imports", files={"files": ("batch.zip", zip_bytes(inside), "application/zip")})
        assert imported(c, r)["changes"] == 2
        got = examples(c, "zipped-table")
        assert {k: e["label"] for k, e in got.items()} == {"x": "dog", "y": "cat"}
        assert c.get(f"/datasets/zipped-table/media/{got['x']['input']}").content == png_bytes(20)
        create(c, "zipped-text", "text", ("pos", "neg"))
        imported(c, upload(c, "zipped-text", ("t.zip", zip_bytes({"reviews/pos/a.txt": b"lovely", "reviews/neg/b.txt": b"awful"}))))
        assert {k: e["label"] for k, e in examples(c, "zipped-text").items()} == {"pos/a.txt": "pos", "neg/b.txt": "neg"}

        create(c, "texts", "text", ("pos", "neg"))
        texts = csv_bytes([["t1", "pos", "lovely"], ["t2", "neg", "awful"], ["t3", "", "unsure"]], ("key", "label", "text"))
        assert imported(c, upload(c, "texts", ("reviews.csv", texts)))["changes"] == 3
        got = examples(c, "texts")
        assert {k: e["label"] for k, e in got.items()} == {"t1": "pos", "t2": "neg", "t3": None}
        assert got["t1"]["inline"] == "lovely"  # a short text is stored with its example, not as a blob
        assert c.get(f"/datasets/texts/media/{got['t1']['input']}").status_code == 404
        assert imported(c, upload(c, "texts", ("reviews.csv", texts)))["changes"] == 0

        # An upload to another branch leaves main alone.
        assert c.post("/datasets/texts/branches", json={"name": "more"}).status_code == 201
        r = c.post(
            "/datasets/texts/imports",
            params={"branch": "more"},
            files={"files": ("more.csv", csv_bytes([["t4", "pos", "great"]], ("key", "label", "text")))},
        )
        assert imported(c, r)["rows"] == 4
        assert sorted(examples(c, "texts")) == ["t1", "t2", "t3"]


def test_bad_uploads_are_422_naming_the_problem_and_commit_nothing(api):
    """Corrupt images, escaping paths, links and unsafe file names are refused with the culprit named, and nothing lands."""
    with api.admin as c:
        create(c, "pets")
        imported(c, upload(c, "pets", ("pets.zip", zip_bytes(IMAGES))))
        before_commits, before = commit_ids(c, "pets"), examples(c, "pets")
        corrupt = b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20
        cases = [
            ([("pets.zip", zip_bytes({"cat/good.png": png_bytes(5), "cat/bad.png": corrupt}))], "job", ["cat/bad.png"]),
            ([("pets.zip", zip_bytes({"dog/cut.png": png_bytes(6)[:30]}))], "job", ["dog/cut.png"]),
            (
                [
                    (
                        "t.zip",
                        zip_bytes(
                            {
                                "d/l.csv": csv_bytes([["k", "cat", "i/0.png"], ["j", "cat", "i/1.png"]]),
                                "d/i/0.png": png_bytes(3),
                                "d/i/1.png": corrupt,
                            }
                        ),
                    )
                ],
                "job",
                ["i/1.png"],
            ),
            ([("t.zip", zip_bytes({"d/l.csv": csv_bytes([["k", "cat", "../../outside.png"]])}))], "job", ["../../outside.png"]),
            ([("l.csv", csv_bytes([["k", "cat", "../../etc/passwd"]]))], "job", ["../../etc/passwd"]),
            ([("l.csv", csv_bytes([["k", "cat", "/etc/passwd"]]))], "job", ["/etc/passwd"]),
            ([("l.csv", csv_bytes([["k", "cat", "missing.png"]]))], "job", ["missing.png"]),
            ([("l.csv", csv_bytes([["k", "horse", "0.png"]])), ("0.png", png_bytes(1))], "job", ["horse"]),
            ([("l.csv", csv_bytes([["../k", "cat", "0.png"]])), ("0.png", png_bytes(1))], "job", ["../k"]),
            ([("evil.zip", zip_bytes({"cat/ok.png": png_bytes(7), "../evil.png": png_bytes(8)}))], 422, ["../evil.png"]),
            ([("evil.zip", zip_bytes({"/abs/evil.png": png_bytes(8)}))], 422, ["/abs/evil.png"]),
            ([("link.zip", zip_bytes({"cat/ok.png": png_bytes(7)}, links={"cat/pw.png": "/etc/passwd"}))], 422, ["cat/pw.png"]),
            ([("link.tar.gz", tar_bytes({"cat/ok.png": png_bytes(7)}, links={"cat/pw.png": "/etc/passwd"}))], 422, ["cat/pw.png"]),
            ([("up.tar", tar_bytes({"../../up.png": png_bytes(7)}, mode="w"))], 422, ["../../up.png"]),
            ([("junk.zip", b"PK\x03\x04 this is not a zip")], 422, ["junk.zip"]),
            ([("a/b.csv", csv_bytes([["k", "cat", "0.png"]]))], 422, ["a/b.csv"]),
            ([("..", csv_bytes([["k", "cat", "0.png"]]))], 422, ["'..'"]),
            ([("..\\x.csv", csv_bytes([["k", "cat", "0.png"]]))], 422, ["x.csv"]),
            ([("1.csv", csv_bytes([])), ("2.csv", csv_bytes([]))], 422, ["1.csv", "2.csv"]),
            ([("notes.txt", b"hello")], 422, ["no table"]),
            ([("cat", png_bytes(1)), ("more.zip", zip_bytes({"cat": png_bytes(2)}))], 422, ["more.zip", "'cat'", "overwrite"]),
            (
                [("a.zip", zip_bytes({"cat/x.png": png_bytes(1)})), ("b.zip", zip_bytes({"cat/x.png": png_bytes(2)}))],
                422,
                ["b.zip", "cat/x.png", "overwrite"],
            ),
        ]
        for files, where, names in cases:  # refused at once (422), or by the import job ("job"), each naming the culprit
            kind, detail = refusal(c, upload(c, "pets", *files))
            assert kind == where, (files, kind, detail)
            assert all(name in detail for name in names), (names, detail)
            assert "upload-" not in detail and "/tmp/" not in detail and "/uploads/" not in detail, detail
        assert_refused(c.post("/datasets/pets/imports"), 422, "files")  # no file at all
        assert_refused(upload(c, "nothing", ("pets.zip", zip_bytes(IMAGES))), 404, "nothing")
        assert commit_ids(c, "pets") == before_commits
        assert examples(c, "pets") == before
        assert "Traceback" not in api.log()


def test_uploads_over_the_size_limit_are_413(api_factory):
    """Bodies over S2_UPLOAD_MAX_BYTES (declared, streamed, or unpacked from a small archive) are 413 and commit nothing."""
    api = api_factory(S2_UPLOAD_MAX_BYTES="20000")
    big = csv_bytes([[f"t{i}", "pos", "x" * 40] for i in range(600)], ("key", "label", "text"))
    assert len(big) > 20000
    with api.admin as c:
        create(c, "texts", "text", ("pos", "neg"))
        assert_refused(upload(c, "texts", ("big.csv", big)), 413, "20000")

        request = httpx.Request("POST", "http://unused", files={"files": ("big.csv", big, "text/csv")})
        body = request.read()
        streamed = c.post(
            "/datasets/texts/imports",
            headers={"content-type": request.headers["content-type"]},
            content=(body[i : i + 4096] for i in range(0, len(body), 4096)),
        )  # chunked: no Content-Length
        assert_refused(streamed, 413, "20000")

        bomb = zip_bytes({"pos/big.txt": b"a" * 200_000})
        assert len(bomb) < 20000
        assert_refused(upload(c, "texts", ("bomb.zip", bomb)), 413, "bomb.zip")
        halves = [zip_bytes({f"pos/{i}.txt": b"a" * 12_000}) for i in range(2)]  # each under the limit, together over
        assert_refused(upload(c, "texts", ("h0.zip", halves[0]), ("h1.zip", halves[1])), 413, "h1.zip")
        assert len(commit_ids(c, "texts")) == 1

        imported(c, upload(c, "texts", ("small.csv", csv_bytes([["t1", "pos", "fine"]], ("key", "label", "text")))))
        assert len(commit_ids(c, "texts")) == 2


def test_exports_and_media_return_the_uploaded_data(api):
    """Parquet and ImageFolder exports hold what was uploaded; media serves the exact bytes, cacheable forever, and bad ids are 404."""
    import pyarrow.parquet as pq

    with api.admin as c:
        create(c, "pets")
        imported(c, upload(c, "pets", ("pets.zip", zip_bytes(IMAGES))))

        r = c.get("/datasets/pets/export", params={"rev": "main", "format": "parquet"})
        assert r.status_code == 200, r.text
        table = pq.read_table(io.BytesIO(r.content)).to_pylist()
        assert [(t["key"], t["label"]) for t in table] == [("cat/c0.png", "cat"), ("cat/c1.png", "cat"), ("dog/d0.png", "dog")]
        assert {t["key"]: t["image"] for t in table} == IMAGES

        r = c.get("/datasets/pets/export", params={"rev": "main", "format": "imagefolder"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip", r.headers
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            files = {n.split("/", 1)[1]: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
        assert files == IMAGES

        create(c, "texts", "text", ("pos", "neg"))
        imported(c, upload(c, "texts", ("r.csv", csv_bytes([["t1", "pos", "héllo"]], ("key", "label", "text")))))
        lines = c.get("/datasets/texts/export", params={"rev": "main", "format": "jsonl"}).text.splitlines()
        assert [json.loads(line) for line in lines] == [{"key": "t1", "label": "pos", "split": None, "text": "héllo"}]
        assert_refused(c.get("/datasets/pets/export", params={"rev": "nope", "format": "parquet"}), 404, "nope")
        assert_refused(c.get("/datasets/pets/export", params={"rev": "main", "format": "csv"}), 422, "format")

        blob = examples(c, "pets")["cat/c1.png"]["input"]
        media = c.get(f"/datasets/pets/media/{blob}")
        assert media.status_code == 200 and media.content == IMAGES["cat/c1.png"]
        assert media.headers["content-type"] == "image/png"
        assert "immutable" in media.headers["cache-control"] and media.headers["etag"] == f'"{blob}"'
        cached = c.get(f"/datasets/pets/media/{blob}", headers={"If-None-Match": media.headers["etag"]})
        assert cached.status_code == 304 and cached.content == b"" and cached.headers["etag"] == media.headers["etag"]

        for bad in ["abc", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "..%2F..%2Fetc%2Fpasswd", blob.upper(), "0" * 64, blob + "0"]:
            r = c.get(f"/datasets/pets/media/{bad}")
            assert r.status_code in (404, 422) and r.headers["content-type"].startswith(PROBLEM), (bad, r.status_code, r.text)
        assert_refused(c.get(f"/datasets/nothing/media/{blob}"), 404, "nothing")

    outsider = api.add_user("lee", "labeler", ("texts",))
    with api.client(outsider) as c:
        assert_refused(c.get(f"/datasets/pets/media/{blob}"), 403, "pets")
        assert_refused(c.get("/datasets/pets/export", params={"rev": "main"}), 403, "pets")
        # the blob store is shared: a dataset the labeler may read does not serve another's inputs by hash
        assert_refused(c.get(f"/datasets/texts/media/{blob}"), 404, "texts")
        assert examples(c, "texts")["t1"]["inline"] == "héllo"  # short texts travel inline, not as media
    with api.admin as c:
        assert_refused(c.get(f"/datasets/texts/media/{blob}"), 404, blob)  # not even for an admin
