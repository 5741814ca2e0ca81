"""Names that become paths or identifiers: hostile labels, keys and names are refused; every key an import accepts exports."""

import io
import json

import pyarrow.parquet as pq
import pytest
from sqlalchemy import update

from server.datasets.datasets import create_dataset, get_dataset
from server.datasets.models import Change, Dataset
from server.datasets.refs import create_branch, create_tag
from server.db import run_in_transaction
from server.errors import InvalidInput
from tests.factories import AUTHOR, png_bytes, write_csv

HOSTILE_LABELS = ["../../x", "/abs/x", "a/b", "..", ".", ".hidden", "_unlabeled", "tab\there", "back\\slash", "x" * 300]


def test_labels_that_are_not_plain_folder_names_are_refused(cli):
    for bad in HOSTILE_LABELS:
        line = cli.fails("dataset", "create", "pets", "--modality", "image", "--labels", f"cat,{bad}")
        assert "label" in line and "is not allowed" in line, (bad, line)
    assert json.loads(cli.ok("dataset", "list", "--json")) == []
    many = [f"class-{i:05d}" for i in range(5000)]  # a large label set is checked in linear time
    run_in_transaction(lambda db: create_dataset(db, name="many", modality="text", labels=many, author=AUTHOR))
    assert run_in_transaction(lambda db: list(get_dataset(db, "many").labels)) == many


def test_names_ending_in_a_newline_are_refused(cli, blobs):
    assert "invalid dataset name" in cli.fails("dataset", "create", "pets\n", "--modality", "text", "--labels", "a,b")
    cli.ok("dataset", "create", "pets", "--modality", "text", "--labels", "a,b")
    for make in (
        lambda db: create_branch(db, dataset="pets", name="work\n", from_rev=None),
        lambda db: create_tag(db, dataset="pets", name="v1\n", rev="main"),
    ):
        with pytest.raises(InvalidInput, match="name"):
            run_in_transaction(make)
    assert "invalid user name" in cli.fails("user", "add", "ana\n", "--role", "labeler")
    assert [b["name"] for b in json.loads(cli.ok("branch", "pets", "--json"))] == ["main"]


def image_keys_table(tmp_path, keys: list[str]):
    (tmp_path / "img").mkdir(exist_ok=True)
    rows = []
    for n, key in enumerate(keys):
        (tmp_path / "img" / f"{n}.png").write_bytes(png_bytes(n))
        rows.append([key, "cat", f"img/{n}.png"])
    return write_csv(tmp_path / "keys.csv", rows, ("key", "label", "image"))


def test_every_key_an_import_accepts_exports_to_a_file_of_its_own(cli, tmp_path):
    cli.ok("dataset", "create", "pets", "--modality", "image", "--labels", "cat,dog")
    long_part = "p" * 251  # with ".png" added on export: 255 bytes, the most a file name may hold
    keys = ["a.png", "a.png/b.png", "c", "c.png", f"deep/{long_part}", "cat/x.png", "x.png", "_unlabeled/y.png"]
    cli.last_line("import", "pets", image_keys_table(tmp_path, keys))
    too_long = "q" * 256
    line = cli.fails("import", "pets", write_csv(tmp_path / "long.csv", [[too_long, "cat", "img/0.png"]], ("key", "label", "image")))
    assert too_long[:20] in line and "255 bytes" in line
    expected = {png_bytes(n) for n in range(len(keys))}

    folder = tmp_path / "folder"
    cli.ok("export", "pets", "main", folder, "--format", "imagefolder")
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert len(files) == len(keys) and {p.read_bytes() for p in files} == expected
    assert all(p.resolve().is_relative_to(folder.resolve()) for p in files)
    assert all(len(part.encode()) <= 255 for p in files for part in p.relative_to(folder).parts)

    cli.ok("export", "pets", "main", tmp_path / "rows.jsonl", "--format", "jsonl")
    records = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in records) == sorted(keys)
    images = {r["key"]: (tmp_path / r["image"]).read_bytes() for r in records}
    assert len({r["image"] for r in records}) == len(keys) and set(images.values()) == expected

    cli.ok("export", "pets", "main", tmp_path / "rows.parquet", "--format", "parquet")
    table = pq.read_table(tmp_path / "rows.parquet").to_pylist()
    assert sorted(r["key"] for r in table) == sorted(keys) and {r["image"] for r in table} == expected


def test_an_export_never_writes_outside_its_folder_even_for_a_label_stored_before_labels_were_checked(cli, s2env, tmp_path):
    cli.ok("dataset", "create", "pets", "--modality", "image", "--labels", "cat,dog")
    cli.last_line("import", "pets", image_keys_table(tmp_path, ["k1", "k2"]))

    def smuggle(db):  # a store written by an older s2, which accepted any label
        ds = get_dataset(db, "pets")
        db.execute(update(Dataset).where(Dataset.id == ds.id).values(labels=["cat", "dog", "../../escaped"]))
        db.execute(update(Change).where(Change.dataset_id == ds.id, Change.key == "k2").values(label="../../escaped"))

    run_in_transaction(smuggle)
    out = tmp_path / "deep" / "er" / "out"
    line = cli.fails("export", "pets", "main", out, "--format", "imagefolder")
    assert "../../escaped" in line and "cannot be a path" in line
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "deep" / "escaped").exists()
    assert not out.exists()
    cli.ok("export", "pets", "main", tmp_path / "ok.parquet", "--format", "parquet")  # formats without label folders still work
    labels = {r["key"]: r["label"] for r in pq.read_table(io.BytesIO((tmp_path / "ok.parquet").read_bytes())).to_pylist()}
    assert labels == {"k1": "cat", "k2": "../../escaped"}
