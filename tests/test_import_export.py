"""`s2 import` from every source and `s2 export` of any revision, inputs byte for byte, through the real CLI."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.factories import png_bytes, write_csv

EMPTY_DIFF = {"added": [], "removed": [], "relabeled": [], "modified": []}


def diff_json(cli, name: str, a: str, b: str) -> dict:
    return json.loads(cli.ok("diff", name, a, b, "--json"))


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_rows(path: Path, header: list[str], rows: list[list]) -> Path:
    return write_csv(path, rows, header)


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_imagefolder_import_and_export_of_old_and_new_revisions(cli, tmp_path):
    src = tmp_path / "src"
    images = {
        "cat/c0.png": png_bytes(1),
        "cat/nested/c1.png": png_bytes(2),
        "dog/d0.png": png_bytes(3),
        "dog/d1.png": png_bytes(4, size=16),
    }
    for rel, data in images.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    cli.ok("dataset", "create", "pets", "--modality", "image", "--labels", "cat,dog")
    first = cli.last_line("import", "pets", src)
    labels = {key: key.split("/")[0] for key in images}

    cli.ok("export", "pets", "main", tmp_path / "folder", "--format", "imagefolder")
    assert files_under(tmp_path / "folder") == images
    cli.ok("export", "pets", "main", tmp_path / "out.parquet", "--format", "parquet")
    records = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert {r["key"]: (r["label"], r["image"]) for r in records} == {k: (labels[k], images[k]) for k in images}
    cli.ok("export", "pets", "main", tmp_path / "out" / "pets.jsonl", "--format", "jsonl")
    records = read_jsonl(tmp_path / "out" / "pets.jsonl")
    assert [r["key"] for r in records] == sorted(images)  # the key is the path below SOURCE
    assert {r["key"]: (r["label"], (tmp_path / "out" / r["image"]).read_bytes()) for r in records} == {
        k: (labels[k], images[k]) for k in images
    }

    cli.ok("label", "pets", "cat/c0.png", "dog")
    cli.last_line("commit", "pets", "-m", "c0 is a dog")
    cli.ok("export", "pets", first[:7], tmp_path / "old", "--format", "imagefolder")
    assert files_under(tmp_path / "old") == images
    cli.ok("export", "pets", "main", tmp_path / "new", "--format", "imagefolder")
    assert files_under(tmp_path / "new") == {("dog/c0.png" if k == "cat/c0.png" else k): v for k, v in images.items()}


def test_csv_with_image_paths_split_and_metadata_round_trips_through_jsonl_and_parquet(cli, tmp_path):
    data_dir = tmp_path / "data"
    (data_dir / "pics").mkdir(parents=True)
    images = {f"img{i}": png_bytes(10 + i) for i in range(4)}
    for key, data in images.items():
        (data_dir / "pics" / f"{key}.png").write_bytes(data)
    rows = [
        ["img0", "cat", "pics/img0.png", "train", "cam1", "0.5"],
        ["img1", "dog", "pics/img1.png", "val", "cam2", "1"],
        ["img2", "", "pics/img2.png", "", "cam1", "x"],  # unlabeled, no split
        ["img3", "dog", "pics/img3.png", "test", "", "2"],
    ]
    source = write_rows(data_dir / "labels.csv", ["key", "label", "image", "split", "source", "score"], rows)
    cli.ok("dataset", "create", "cams", "--modality", "image", "--labels", "cat,dog")
    head = cli.last_line("import", "cams", source.relative_to(tmp_path))  # image paths are relative to the file, not the cwd
    # The same examples as Parquet with image paths: identical content, so exit 0, no commit, the head id last.
    pq.write_table(
        pa.Table.from_pylist([dict(zip(["key", "label", "image", "split", "source", "score"], r)) for r in rows]),
        data_dir / "labels.parquet",
    )
    assert cli.last_line("import", "cams", data_dir / "labels.parquet") == head

    cli.ok("export", "cams", "main", tmp_path / "x" / "cams.jsonl", "--format", "jsonl")
    exported = read_jsonl(tmp_path / "x" / "cams.jsonl")
    expected = []
    for key, label, _, split, src, score in rows:
        record = {"key": key, "label": label or None, "image": f"cams-images/{key}", "source": src, "score": score}
        expected.append({**record, "split": split or None})  # null: no split given (as in Parquet)
    assert exported == expected
    assert {r["key"]: (tmp_path / "x" / r["image"]).read_bytes() for r in exported} == images

    cli.ok("export", "cams", "main", tmp_path / "cams.parquet", "--format", "parquet")
    table = pq.read_table(tmp_path / "cams.parquet")
    assert table.column("key").to_pylist() == list(images)
    assert table.column("image").to_pylist() == list(images.values())
    assert table.column("split").to_pylist() == ["train", "val", None, "test"]
    assert table.column("source").to_pylist() == ["cam1", "cam2", "cam1", ""]

    # What export writes, import reads back unchanged: JSONL with image files, Parquet with image bytes.
    for fmt, path in (("jsonl", tmp_path / "x" / "cams.jsonl"), ("parquet", tmp_path / "cams.parquet")):
        cli.ok("dataset", "create", f"copy-{fmt}", "--modality", "image", "--labels", "cat,dog")
        cli.last_line("import", f"copy-{fmt}", path)
        cli.ok("export", f"copy-{fmt}", "main", tmp_path / f"copy-{fmt}.parquet", "--format", "parquet")
        assert pq.read_table(tmp_path / f"copy-{fmt}.parquet").to_pylist() == table.to_pylist()


def test_text_from_jsonl_and_parquet_keeps_text_split_and_metadata(cli, tmp_path):
    records = [
        {"key": "doc/1", "label": "pos", "text": "héllo wörld ✓", "split": "train", "lang": "de", "score": 3},
        {"key": "doc/2", "label": "neg", "text": "line one\nline two\r\n\ttabbed", "tags": ["a", "b"]},
        {"key": "doc/3", "label": None, "text": "unlabeled", "split": "test"},
    ]
    cli.ok("dataset", "create", "docs", "--modality", "text", "--labels", "pos,neg")
    cli.last_line("import", "docs", write_jsonl(tmp_path / "docs.jsonl", records))
    cli.ok("export", "docs", "main", tmp_path / "out.jsonl", "--format", "jsonl")
    assert read_jsonl(tmp_path / "out.jsonl") == [{"split": None, **r} for r in records]  # every row says its split (null: none)
    cli.ok("export", "docs", "main", tmp_path / "folder", "--format", "imagefolder")
    assert files_under(tmp_path / "folder") == {
        "pos/doc/1": records[0]["text"].encode(),
        "neg/doc/2": records[1]["text"].encode(),
        "_unlabeled/doc/3": b"unlabeled",
    }

    table = pa.table(
        {"key": ["p1", "p2"], "label": ["neg", "pos"], "text": ["from parquet", "ünïcode"], "split": ["val", None], "lang": ["en", "fr"]}
    )
    pq.write_table(table, tmp_path / "docs.parquet")
    cli.ok("dataset", "create", "pdocs", "--modality", "text", "--labels", "pos,neg")
    cli.last_line("import", "pdocs", tmp_path / "docs.parquet")
    cli.ok("export", "pdocs", "main", tmp_path / "out.parquet", "--format", "parquet")
    out = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [{k: r[k] for k in ("key", "label", "text", "split", "lang")} for r in out] == table.to_pylist()


def test_tabular_features_keep_their_values(cli, tmp_path):
    source = write_rows(
        tmp_path / "iris.csv",
        ["key", "label", "split", "petal", "sepal", "count"],
        [["r1", "setosa", "train", "1.4", "5.1", "3"], ["r2", "virginica", "", "6.0", "6.3", "-2"]],
    )
    cli.ok("dataset", "create", "iris", "--modality", "tabular", "--labels", "setosa,virginica")
    cli.last_line("import", "iris", source)
    cli.ok("export", "iris", "main", tmp_path / "iris.jsonl", "--format", "jsonl")
    assert read_jsonl(tmp_path / "iris.jsonl") == [
        {"key": "r1", "label": "setosa", "split": "train", "petal": 1.4, "sepal": 5.1, "count": 3},
        {"key": "r2", "label": "virginica", "split": None, "petal": 6.0, "sepal": 6.3, "count": -2},
    ]

    pq.write_table(pa.table({"key": ["r3"], "label": ["setosa"], "petal": [0.25], "sepal": [4.5], "count": [7]}), tmp_path / "more.parquet")
    cli.last_line("import", "iris", tmp_path / "more.parquet")
    cli.ok("export", "iris", "main", tmp_path / "iris.parquet", "--format", "parquet")
    rows = {r["key"]: r for r in pq.read_table(tmp_path / "iris.parquet").to_pylist()}
    assert (rows["r1"]["petal"], rows["r2"]["count"], rows["r3"]["sepal"], rows["r3"]["label"]) == (1.4, -2, 4.5, "setosa")

    line = cli.fails("export", "iris", "main", tmp_path / "iris-folder", "--format", "imagefolder")
    assert "imagefolder" in line and "image or text" in line
    assert not (tmp_path / "iris-folder").exists()


def test_reimport_upserts_by_key_and_identical_reimport_is_a_no_op(cli, tmp_path):
    header = ["key", "label", "text"]
    rows = [[f"k{i}", "ab"[i % 2], f"text {i}"] for i in range(5)]
    cli.ok("dataset", "create", "up", "--modality", "text", "--labels", "a,b")
    first = cli.last_line("import", "up", write_rows(tmp_path / "v1.csv", header, rows))

    changed = [r[:] for r in rows] + [["k5", "b", "brand new"]]
    changed[2][1] = "b"  # k2: a -> b
    second = cli.last_line("import", "up", write_rows(tmp_path / "v2.csv", header, changed[2:]))  # a subset: upsert, not replace
    assert diff_json(cli, "up", first, second) == {
        "added": ["k5"],
        "removed": [],
        "relabeled": [{"key": "k2", "from": "a", "to": "b"}],
        "modified": [],
    }
    log = json.loads(cli.ok("log", "up", "--json"))
    assert (log[0]["id"], log[0]["changes"], log[0]["rows"]) == (second, 2, 6)

    proc = cli.run("import", "up", tmp_path / "v2.csv")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == second
    assert json.loads(cli.ok("log", "up", "--json")) == log  # no new commit

    changed[3][2] = "new words"
    third = cli.last_line("import", "up", write_rows(tmp_path / "v3.csv", header, changed))
    assert diff_json(cli, "up", second, third) == {**EMPTY_DIFF, "modified": ["k3"]}  # new input, same label


def test_export_any_revision_in_every_format(cli, tmp_path):
    rows = [[f"k{i}", "a", f"text {i}"] for i in range(4)]
    cli.ok("dataset", "create", "revs", "--modality", "text", "--labels", "a,b,c")
    first = cli.last_line("import", "revs", write_rows(tmp_path / "in.csv", ["key", "label", "text"], rows))
    cli.ok("tag", "revs", "v1", "main")
    cli.ok("label", "revs", "k0", "b")
    second = cli.last_line("commit", "revs", "-m", "k0 is b")
    write_rows(tmp_path / "edits.csv", ["key", "label"], [["k0", "c"], ["k1", "c"]])
    cli.ok("label", "revs", "--file", tmp_path / "edits.csv")
    cli.last_line("commit", "revs", "-m", "more")
    original = {f"k{i}": ("a", f"text {i}") for i in range(4)}
    at_second = {**original, "k0": ("b", "text 0")}

    def as_jsonl(rev, name):
        cli.ok("export", "revs", rev, tmp_path / name, "--format", "jsonl")
        return {r["key"]: (r["label"], r["text"]) for r in read_jsonl(tmp_path / name)}

    assert as_jsonl("v1", "tag.jsonl") == original
    assert as_jsonl("main~1", "back.jsonl") == at_second
    assert as_jsonl(second[:7], "prefix.jsonl") == at_second
    cli.ok("export", "revs", first, tmp_path / "full.parquet", "--format", "parquet")
    assert {r["key"]: (r["label"], r["text"]) for r in pq.read_table(tmp_path / "full.parquet").to_pylist()} == original
    cli.ok("export", "revs", "main", tmp_path / "head.parquet", "--format", "parquet")
    assert {r["key"]: r["label"] for r in pq.read_table(tmp_path / "head.parquet").to_pylist()} == {
        "k0": "c",
        "k1": "c",
        "k2": "a",
        "k3": "a",
    }
    cli.ok("export", "revs", "main~2", tmp_path / "folder", "--format", "imagefolder")
    assert files_under(tmp_path / "folder") == {f"a/k{i}": f"text {i}".encode() for i in range(4)}


def test_export_refuses_an_existing_target_and_writes_nothing(cli, tmp_path):
    cli.ok("dataset", "create", "t", "--modality", "text", "--labels", "a,b")
    cli.last_line("import", "t", write_rows(tmp_path / "in.csv", ["key", "label", "text"], [["k1", "a", "one"], ["k2", "b", "two"]]))
    work = tmp_path / "work"
    busy = work / "busy"
    busy.mkdir(parents=True)
    (busy / "keep.txt").write_text("mine")
    (work / "taken.jsonl").write_text("old contents")
    before = files_under(work)
    for target, fmt in ((busy, "imagefolder"), (work / "taken.jsonl", "jsonl"), (busy, "parquet")):
        line = cli.fails("export", "t", "main", target, "--format", fmt)
        assert str(target) in line and "exists" in line
    assert files_under(work) == before
    assert sorted(p.name for p in work.iterdir()) == ["busy", "taken.jsonl"]  # no half-written leftovers

    (tmp_path / "empty").mkdir()  # an empty folder is filled
    cli.ok("export", "t", "main", tmp_path / "empty", "--format", "imagefolder")
    assert files_under(tmp_path / "empty") == {"a/k1": b"one", "b/k2": b"two"}


def test_jsonl_export_of_images_refuses_an_existing_images_folder(cli, tmp_path):
    cli.ok("dataset", "create", "pics", "--modality", "image", "--labels", "cat,dog")
    (tmp_path / "src" / "cat").mkdir(parents=True)
    (tmp_path / "src" / "cat" / "a.png").write_bytes(png_bytes(1))
    cli.last_line("import", "pics", tmp_path / "src")
    (tmp_path / "out-images").mkdir()
    (tmp_path / "out-images" / "keep.txt").write_text("mine")
    line = cli.fails("export", "pics", "main", tmp_path / "out.jsonl", "--format", "jsonl")
    assert "out-images" in line
    assert not (tmp_path / "out.jsonl").exists()
    assert files_under(tmp_path / "out-images") == {"keep.txt": b"mine"}


def test_imagefolder_export_gives_keys_without_an_extension_the_image_type(cli, tmp_path):
    from tests.factories import write_image_csv

    cli.ok("dataset", "create", "pics", "--modality", "image", "--labels", "cat,dog")
    cli.ok("import", "pics", write_image_csv(tmp_path / "src", {"img1": "cat", "img2": "dog", "x/img3.png": "dog"}))
    cli.ok("export", "pics", "main", tmp_path / "out", "--format", "imagefolder")
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert files == ["cat/img1.png", "dog/img2.png", "dog/x/img3.png"]
    assert (tmp_path / "out" / "cat" / "img1.png").read_bytes() == (tmp_path / "src" / "img" / "0.png").read_bytes()
