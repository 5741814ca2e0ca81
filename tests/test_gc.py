"""s2 gc and fsck: what failed and killed imports leave behind is reported and reclaimed; nothing referenced is touched."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from server.blobs import blob_id_of
from tests.conftest import S2_BIN
from tests.factories import png_bytes, write_csv


def image_table(folder: Path, seeds: range, bad_last: bool = False) -> Path:
    """A CSV of PNGs beside it; with bad_last, its last row names a label outside the set (the import fails there)."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for n in seeds:
        (folder / "img" / f"{n}.png").write_bytes(png_bytes(n))
        rows.append([f"k{n:05d}", "cat" if n % 2 else "dog", f"img/{n}.png"])
    if bad_last:
        rows[-1][1] = "horse"
    return write_csv(folder / "table.csv", rows, ("key", "label", "image"))


def blob_ids(blobs) -> set[str]:
    return set(blobs.iter_ids())


class FeedingImport:
    """`s2 import` reading its CSV from a named pipe that the test fills: the import is truly running, and waits
    for more rows for as long as the test holds them back."""

    def __init__(self, cli, folder: Path, seeds: range):
        (folder / "img").mkdir(parents=True, exist_ok=True)
        self.rows = []
        for n in seeds:
            (folder / "img" / f"{n}.png").write_bytes(png_bytes(n))
            self.rows.append(f"k{n:05d},{'cat' if n % 2 else 'dog'},img/{n}.png\n")
        self.pipe = folder / "table.csv"
        os.mkfifo(self.pipe)
        self.proc = subprocess.Popen(
            [str(S2_BIN), "import", "pets", str(self.pipe)],
            env=cli.env,
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.writer = open(self.pipe, "w")  # blocks until the importer opens it
        self.writer.write("key,label,image\n")
        self.sent = 0

    def send(self, n: int, blobs) -> None:
        """Send n more rows and wait until the importer has stored their images."""
        chunk, self.sent = self.rows[self.sent : self.sent + n], self.sent + n
        self.writer.write("".join(chunk))
        self.writer.flush()
        wanted = {blob_id_of(png_bytes(int(row.split(",")[2][4:-5]))) for row in chunk}
        deadline = time.monotonic() + 60
        while not wanted <= blob_ids(blobs):
            assert self.proc.poll() is None and time.monotonic() < deadline, self.proc.stderr.read()
            time.sleep(0.01)

    def finish(self) -> subprocess.CompletedProcess:
        """Send the rest, close the pipe, and wait for the importer."""
        self.writer.write("".join(self.rows[self.sent :]))
        self.writer.close()
        out, err = self.proc.communicate(timeout=120)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)


def test_gc_reclaims_a_failed_imports_blobs_and_keeps_every_referenced_one(cli, blobs, tmp_path):
    cli.ok("dataset", "create", "pets", "--modality", "image", "--labels", "cat,dog")
    first = cli.last_line("import", "pets", image_table(tmp_path / "a", range(0, 20)))
    cli.last_line("import", "pets", image_table(tmp_path / "b", range(20, 30)))
    kept = blob_ids(blobs)
    line = cli.fails("import", "pets", image_table(tmp_path / "c", range(30, 60), bad_last=True))
    assert "horse" in line and "line 31" in line  # the job names the row that failed it
    orphans = blob_ids(blobs) - kept
    assert orphans == {blob_id_of(png_bytes(n)) for n in range(30, 59)}  # stored before the bad row was read

    report = json.loads(cli.ok("fsck", "--json"))
    assert report["corrupt"] == [] and report["missing"] == []
    assert json.loads(cli.ok("gc", "--json"))["blobs"] == 0  # within the default grace period (1 h) nothing is taken
    line = cli.fails("gc", "--grace", "0")  # a blob and its row are written within a minute: shorter is refused
    assert "grace period 0 s is too short" in line
    assert blob_ids(blobs) == kept | orphans

    two_hours_ago = time.time() - 7200  # as if the import failed long ago
    for blob_id in blob_ids(blobs):
        os.utime(blobs.path_of(blob_id), (two_hours_ago, two_hours_ago))
    dry = json.loads(cli.ok("gc", "--dry-run", "--json"))
    assert dry["dry_run"] and dry["blobs"] == len(orphans) and dry["blob_bytes"] == sum(len(png_bytes(n)) for n in range(30, 59))
    assert blob_ids(blobs) == kept | orphans  # a dry run deletes nothing
    assert "would free" in cli.run("gc", "--dry-run").stderr

    done = json.loads(cli.ok("gc", "--grace", "60", "--json"))
    assert done["blobs"] == len(orphans) and not done["dry_run"]
    assert blob_ids(blobs) == kept  # old as they are, referenced blobs stay
    assert json.loads(cli.ok("gc", "--grace", "60", "--json"))["blobs"] == 0
    cli.ok("fsck")
    for rev, out in ((first, "v1"), ("main", "v2")):  # every revision still reads, byte for byte
        cli.ok("export", "pets", rev, tmp_path / out, "--format", "imagefolder")
    assert len(list((tmp_path / "v2").rglob("*.png"))) == 30
    assert "store.gc" in cli.ok("audit")


def test_gc_beside_a_running_import_takes_none_of_its_blobs(cli, blobs, tmp_path, monkeypatch):
    """An import stores inputs before its commit references them; gc during the import must leave them, even an
    old unreferenced blob (a failed import's) that the running import stores again."""
    cli.ok("dataset", "create", "pets", "--modality", "image", "--labels", "cat,dog")
    cli.fails("import", "pets", image_table(tmp_path / "failed", range(0, 50), bad_last=True))
    reused = {blob_id_of(png_bytes(n)) for n in range(0, 49)}
    hours_ago = time.time() - 7200
    for blob_id in reused:  # as if that import failed long ago
        os.utime(blobs.path_of(blob_id), (hours_ago, hours_ago))
    feeding = FeedingImport(cli, tmp_path / "big", range(0, 400))
    feeding.send(100, blobs)  # the import has stored these (the reused ones among them) and waits for more
    report = json.loads(cli.ok("gc", "--grace", "60", "--json"))
    done = feeding.finish()
    assert done.returncode == 0, done.stderr
    assert report["blobs"] == 0, report  # the running import's blobs, the reused old ones included, were spared
    cli.ok("fsck")  # every blob the new commit references is there
    assert json.loads(cli.ok("show", "pets", "k00000"))["label"] == "dog"


def test_a_killed_import_leaves_leftovers_that_fsck_lists_and_gc_removes(cli, blobs, s2env, tmp_path, monkeypatch):
    monkeypatch.setenv("S2_RUN_STALE_AFTER_S", "2")  # how long a job's missing heartbeat means its process died
    cli.ok("dataset", "create", "pets", "--modality", "image", "--labels", "cat,dog")
    feeding = FeedingImport(cli, tmp_path / "big", range(0, 400))
    feeding.send(60, blobs)
    feeding.proc.send_signal(signal.SIGKILL)
    feeding.proc.wait()
    feeding.writer.close()
    fan = next(p for p in blobs.root.iterdir() if p.is_dir())
    (fan / ".tmp-4242-1-abcdef").write_bytes(b"half a blob")  # what a write killed between open and rename leaves
    an_hour_ago = time.time() - 3600  # found later: fsck lists leftovers older than a minute (younger may be in use)
    blob_paths = [blobs.path_of(blob_id) for blob_id in blob_ids(blobs)]
    for path in [fan / ".tmp-4242-1-abcdef", *(Path(s2env["S2_HOME"]) / "tmp").iterdir(), *blob_paths]:
        os.utime(path, (an_hour_ago, an_hour_ago))
    time.sleep(2.5)

    job = json.loads(cli.ok("imports", "pets", "--json"))[0]
    assert job["state"] == "failed" and "stopped before it finished" in job["error"]
    assert cli.run("show", "pets", "k00000").returncode != 0  # nothing was committed
    report = json.loads(cli.ok("fsck", "--json"))  # leftovers are not damage: fsck passes and lists them
    kinds = sorted(item["kind"] for item in report["leftovers"])
    assert kinds == ["partial-blob", "spill"], report["leftovers"]
    assert "s2 gc removes it" in cli.ok("fsck")
    stored = blob_ids(blobs)
    assert stored  # the inputs read before the kill
    done = json.loads(cli.ok("gc", "--grace", "60", "--json"))
    assert done["blobs"] == len(stored) and done["temp_files"] == 1 and done["folders"] == 1
    assert blob_ids(blobs) == set() and not list(fan.glob(".tmp-*"))
    assert not list((Path(s2env["S2_HOME"]) / "tmp").iterdir())
    assert json.loads(cli.ok("fsck", "--json"))["leftovers"] == []


def test_an_input_that_moves_from_inline_to_the_blob_store_is_kept(cli, blobs, tmp_path, monkeypatch):
    """A short text stored inline, then (the threshold lowered) committed again as a blob with a new label: the
    blob is the example's input now, so gc must not take it, however old."""
    cli.ok("dataset", "create", "notes", "--modality", "text", "--labels", "a,b")
    cli.last_line("import", "notes", write_csv(tmp_path / "one.csv", [["k1", "a", "hello there"]], ("key", "label", "text")))
    assert blob_ids(blobs) == set()  # inline: no file of its own
    monkeypatch.setenv("S2_INLINE_MAX_BYTES", "0")
    cli.last_line("import", "notes", write_csv(tmp_path / "two.csv", [["k1", "b", "hello there"]], ("key", "label", "text")))
    assert blob_ids(blobs) == {blob_id_of(b"hello there")}
    two_hours_ago = time.time() - 7200
    os.utime(blobs.path_of(blob_id_of(b"hello there")), (two_hours_ago, two_hours_ago))
    assert json.loads(cli.ok("gc", "--json"))["blobs"] == 0
    cli.ok("export", "notes", "main", tmp_path / "out", "--format", "imagefolder")
    assert (tmp_path / "out" / "b" / "k1").read_text() == "hello there"
