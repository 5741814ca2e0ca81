"""s2 checkout: a revision as files in a working folder; moving it to another revision touches only what differs."""

import hashlib
import json
from pathlib import Path

import pytest

import server.datasets.checkout as checkout_module
from server.datasets.checkout import Manifest, Revision, checkout
from server.datasets.rows import Row
from tests.factories import png_bytes, write_csv


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below folder (the working folder's .s2 excluded) by relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file() and ".s2" not in p.parts}


def stamps(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and ".s2" not in p.parts}


def images(folder: Path, seeds: dict[str, tuple[int, str]]) -> Path:
    """A CSV of {key: (png seed, label)} with the PNGs beside it."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for key, (seed, label) in seeds.items():
        (folder / "img" / f"{seed}.png").write_bytes(png_bytes(seed))
        rows.append([key, label, f"img/{seed}.png"])
    return write_csv(folder / "t.csv", rows, ("key", "label", "image"))


def history(cli, tmp_path: Path) -> tuple[str, str]:
    """v1: 40 images; v2: 3 relabels, 2 removals, 2 additions and 1 new input."""
    cli.ok("dataset", "create", "pets", "--modality", "image", "--labels", "cat,dog")
    v1 = cli.last_line("import", "pets", images(tmp_path / "a", {f"p{i:03d}.png": (i, "cat" if i % 2 else "dog") for i in range(40)}))
    cli.ok("branch", "pets", "work")
    for key, label in (("p001.png", "dog"), ("p002.png", "cat"), ("p003.png", "dog")):
        cli.ok("label", "pets", key, label, "--branch", "work")
    cli.ok("rm", "pets", "p010.png", "p011.png", "--branch", "work")
    cli.last_line("commit", "pets", "-m", "fixes", "--branch", "work")
    new = {"n1.png": (100, "cat"), "n2.png": (101, "dog"), "p020.png": (102, "dog")}  # p020 gets a new input
    cli.last_line("import", "pets", images(tmp_path / "b", new), "--branch", "work")
    return v1, cli.last_line("merge", "pets", "work", "--into", "main")


def test_checkout_writes_a_revision_and_moves_between_revisions_by_what_differs(cli, tmp_path):
    v1, v2 = history(cli, tmp_path)
    work = tmp_path / "work"
    assert cli.last_line("checkout", "pets", v1, work) == v1
    cli.ok("export", "pets", v1, tmp_path / "e1", "--format", "imagefolder")
    cli.ok("export", "pets", v2, tmp_path / "e2", "--format", "imagefolder")
    assert tree(work) == tree(tmp_path / "e1")

    before = stamps(work)
    out = cli.run("checkout", "pets", "main", work)
    assert out.stdout == f"{v2}\n"  # data on stdout, the summary on stderr
    assert "3 written, 3 moved, 2 removed; 40 examples" in out.stderr  # 2 added and 1 new input; 3 relabels; 2 removals
    assert tree(work) == tree(tmp_path / "e2")
    after = stamps(work)
    untouched = [path for path in before if path in after and before[path] == after[path]]
    assert len(untouched) == 40 - 3 - 2 - 1  # every other file was left as it was, not rewritten

    assert "already holds" in cli.run("checkout", "pets", v2, work).stderr
    back = cli.ok("checkout", "pets", v1, work)
    assert tree(work) == tree(tmp_path / "e1") and back.strip().splitlines()[-1] == v1
    assert not [p for p in work.rglob("*") if p.is_dir() and not any(p.iterdir())]  # no empty folders left


def test_files_edited_by_hand_are_reported_never_silently_overwritten(cli, tmp_path):
    v1, v2 = history(cli, tmp_path)
    work = tmp_path / "work"
    cli.last_line("checkout", "pets", v1, work)
    (work / "cat" / "p001.png").write_bytes(b"my own edit")  # relabeled in v2: the checkout would move it
    (work / "dog" / "p004.png").write_bytes(b"another edit")  # untouched by v2
    (work / "cat" / "p011.png").unlink()  # removed in v2 anyway: nothing of it is lost
    (work / "dog" / "p002.png").unlink()  # relabeled in v2: written again from the store
    line = cli.fails("checkout", "pets", v2, work)
    assert "cat/p001.png" in line and "--force" in line and "p004" not in line and "p011" not in line and "p002" not in line
    assert (work / "cat" / "p001.png").read_bytes() == b"my own edit"  # nothing changed
    assert cli.last_line("checkout", "pets", v1, work) == v1  # still at v1
    proc = cli.run("checkout", "pets", v2, work, "--force")
    assert proc.returncode == 0 and "overwrote 1 file(s) edited by hand" in proc.stderr
    assert (work / "dog" / "p001.png").read_bytes() == png_bytes(1)  # rewritten from the store under its new label
    assert (work / "cat" / "p002.png").read_bytes() == png_bytes(2)
    assert not (work / "cat" / "p011.png").exists()
    assert (work / "dog" / "p004.png").read_bytes() == b"another edit"  # a file the checkout did not need is left alone


def test_an_interrupted_checkout_is_finished_by_the_next_run(tmp_path, monkeypatch):
    """Stopped part-way (Ctrl-C), a checkout has moved, removed and written some files: the manifest kept up with
    them, so running it again finishes the job with nothing refused, duplicated or left behind."""
    monkeypatch.setattr(checkout_module, "BATCH", 7)  # many manifest writes on a small revision
    labels = ["cat", "dog"]
    data = {f"i{n:03d}": png_bytes(n) for n in range(300)}
    ids = {hashlib.sha256(b).hexdigest(): b for b in data.values()}

    def revision(commit: str, rows: dict[str, Row], base: dict[str, Row], stop_after: int | None = None) -> Revision:
        reads = [0]

        def read(row: Row) -> bytes:
            reads[0] += 1
            if stop_after is not None and reads[0] > stop_after:
                raise KeyboardInterrupt
            return ids[row.input]

        def changes_since(_: str):
            for key in sorted(set(rows) | set(base)):
                if rows.get(key) != base.get(key):
                    yield key, rows.get(key)

        return Revision("pets", commit, "image", labels, lambda: iter(sorted(rows.values())), changes_since, read)

    def row(key: str, label: str, seed: str | None = None) -> Row:
        return Row(key, hashlib.sha256(data[seed or key]).hexdigest(), label)

    v1 = {k: row(k, "cat" if n % 2 else "dog") for n, k in enumerate(data) if n < 250}
    v2 = {k: r._replace(label="dog" if r.label == "cat" else "cat") if n % 3 == 0 else r for n, (k, r) in enumerate(v1.items()) if n % 5}
    v2 |= {k: row(k, "cat") for k in list(data)[250:]}  # 50 new
    v2["i001"] = row("i001", "dog", "i299")  # a new input
    with pytest.raises(KeyboardInterrupt):  # the first checkout, stopped in its second batch
        checkout(revision("c1", v1, {}, stop_after=10), tmp_path / "work")
    assert Manifest(tmp_path / "work").get("commit") == ""
    checkout(revision("c1", v1, {}), tmp_path / "work")
    checkout(revision("c1", v1, {}), tmp_path / "c1")
    assert tree(tmp_path / "work") == tree(tmp_path / "c1")
    with pytest.raises(KeyboardInterrupt):
        checkout(revision("c2", v2, v1, stop_after=20), tmp_path / "work")
    assert Manifest(tmp_path / "work").get("commit") == "c1"  # not finished: still said to hold c1
    done = checkout(revision("c2", v2, v1), tmp_path / "work")
    assert done.edited == []
    checkout(revision("c2", v2, {}), tmp_path / "fresh")
    assert tree(tmp_path / "work") == tree(tmp_path / "fresh")
    assert not [p for p in (tmp_path / "work").rglob("*") if p.is_dir() and not any(p.iterdir())]


def test_checkout_refuses_folders_it_does_not_own_and_tabular_datasets_get_one_file(cli, tmp_path):
    v1, _ = history(cli, tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    assert "not empty" in cli.fails("checkout", "pets", v1, tmp_path / "full")
    cli.ok("dataset", "create", "iris", "--modality", "tabular", "--labels", "a,b")
    t1 = cli.last_line("import", "iris", write_csv(tmp_path / "iris.csv", [["k1", "a", "1.5"], ["k2", "b", "2.5"]], ("key", "label", "x")))
    cli.last_line("checkout", "pets", v1, tmp_path / "pets")
    assert "dataset 'pets', not 'iris'" in cli.fails("checkout", "iris", t1, tmp_path / "pets")
    cli.last_line("checkout", "iris", t1, tmp_path / "rows")
    cli.ok("branch", "iris", "w")
    cli.ok("label", "iris", "k2", "a", "--branch", "w")
    t2 = cli.last_line("commit", "iris", "-m", "k2", "--branch", "w")
    cli.last_line("checkout", "iris", t2, tmp_path / "rows")
    rows = [json.loads(line) for line in (tmp_path / "rows" / "iris.jsonl").read_text().splitlines()]
    assert rows == [{"key": "k1", "label": "a", "x": 1.5}, {"key": "k2", "label": "a", "x": 2.5}]
    assert "unknown revision" in cli.fails("checkout", "iris", "nope", tmp_path / "rows")


def test_a_move_reads_the_target_through_its_history_or_its_checkpoint_alike(cli, tmp_path, monkeypatch):
    """A move looks the changed keys up at the target through its first-parent history (no checkpoint, no Arrow)
    when that is short, else in its checkpoint: both give the revision exactly, a merge commit included."""
    from sqlalchemy import text

    from server.client.local import LocalBackend
    from server.db import run_read

    monkeypatch.setenv("S2_CHECKPOINT_MIN_ROWS", "1")  # checkpoints on this small history too
    v1, v2 = history(cli, tmp_path)
    cli.ok("branch", "pets", "side")
    cli.ok("label", "pets", "p005.png", "dog", "--branch", "side")
    cli.ok("rm", "pets", "p012.png", "--branch", "side")
    cli.last_line("commit", "pets", "-m", "side", "--branch", "side")
    cli.ok("label", "pets", "p007.png", "dog")
    cli.last_line("commit", "pets", "-m", "main moves on")
    v3 = cli.last_line("merge", "pets", "side", "--into", "main")  # a merge commit: its delta is against main's side
    parents, checkpoints = run_read(
        lambda db: (
            db.execute(text("SELECT count(*) FROM commit_parents JOIN commits ON pk = commit_pk WHERE id = :id"), {"id": v3}).scalar(),
            db.execute(text("SELECT count(*) FROM commits WHERE checkpoint_blob IS NOT NULL")).scalar(),
        )
    )
    assert parents == 2 and checkpoints >= 1
    exported = {}
    for rev in (v1, v2, v3):
        cli.ok("export", "pets", rev, tmp_path / f"e-{rev}", "--format", "imagefolder")
        exported[rev] = tree(tmp_path / f"e-{rev}")
    backend = LocalBackend()
    for start, target in ((v1, v3), (v3, v1), (v2, v3), (v3, v2), (v1, v2)):
        for most in (4096, 0):  # 0: no history is short enough, the checkpoint is read
            work = tmp_path / f"w{most}-{start[:8]}-{target[:8]}"
            backend.checkout("pets", start, work, False)
            monkeypatch.setattr(checkout_module, "HISTORY_MAX", most)
            done = backend.checkout("pets", target, work, False)
            assert tree(work) == exported[target] and done["commit"] == target and done["edited"] == []


def test_a_key_changed_and_changed_back_is_left_as_it_is(cli, tmp_path):
    """The commits between two revisions touched a key whose file ends up the same: nothing is done to it, and
    an edit by hand there is no conflict (the checkout overwrites nothing of it)."""
    cli.ok("dataset", "create", "pets", "--modality", "image", "--labels", "cat,dog")
    v1 = cli.last_line("import", "pets", images(tmp_path / "a", {f"p{i:03d}.png": (i, "cat" if i % 2 else "dog") for i in range(10)}))
    cli.ok("label", "pets", "p004.png", "cat")
    cli.last_line("commit", "pets", "-m", "p004 is a cat")
    cli.ok("label", "pets", "p004.png", "dog")
    cli.ok("label", "pets", "p006.png", "cat")
    v3 = cli.last_line("commit", "pets", "-m", "no, a dog; p006 is a cat")
    work = tmp_path / "work"
    cli.last_line("checkout", "pets", v1, work)
    (work / "dog" / "p004.png").write_bytes(b"my own edit")
    out = cli.run("checkout", "pets", v3, work)
    assert out.returncode == 0 and "0 written, 1 moved; 10 examples" in out.stderr
    assert (work / "dog" / "p004.png").read_bytes() == b"my own edit" and (work / "cat" / "p006.png").exists()


def test_a_checkout_interrupted_while_its_threads_write_is_finished_by_the_next_run(tmp_path, monkeypatch):
    """Batches of 64 files and more are written by threads: stopped while they write, every file they wrote is in
    the manifest, so the next run neither writes it again under a name of its own nor leaves it behind."""
    monkeypatch.setattr(checkout_module, "BATCH", 200)
    data = {f"i{n:03d}": png_bytes(n) for n in range(300)}
    ids = {hashlib.sha256(b).hexdigest(): b for b in data.values()}
    rows = {k: Row(k, hashlib.sha256(b).hexdigest(), "cat" if n % 2 else "dog") for n, (k, b) in enumerate(data.items())}

    def revision(commit: str, rows: dict[str, Row]) -> Revision:
        return Revision(
            "pets", commit, "image", ["cat", "dog"], lambda: iter(sorted(rows.values())), lambda _: iter(()), lambda r: ids[r.input]
        )

    claim, calls = checkout_module.claim, []

    def stopped(*args, **kwargs):
        calls.append(1)
        if len(calls) == 250:  # in the second batch, while the threads write
            raise KeyboardInterrupt
        return claim(*args, **kwargs)

    monkeypatch.setattr(checkout_module, "claim", stopped)
    with pytest.raises(KeyboardInterrupt):
        checkout(revision("c1", rows), tmp_path / "work")
    monkeypatch.setattr(checkout_module, "claim", claim)
    written = Manifest(tmp_path / "work").db.execute("SELECT count(*) FROM files").fetchone()[0]
    assert 200 < written < 300 and written == len(tree(tmp_path / "work"))  # every file written is entered
    assert checkout(revision("c1", rows), tmp_path / "work").written == 300 - written
    checkout(revision("c1", rows), tmp_path / "fresh")
    assert tree(tmp_path / "work") == tree(tmp_path / "fresh")
