"""Bad input through the real CLI: one stderr line naming the input and the problem, and the store as it was."""

import inspect
import io
import json
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import click
import pyarrow.parquet as pq
from click.testing import CliRunner
from PIL import Image

from server.blobs import blob_id_of
from tests.conftest import S2_BIN
from tests.factories import write_csv, write_image_csv


def state(cli, tmp_path: Path, name: str, contents: bool = True):
    """What a failed command must leave as it was: the history, the staged edits and the contents at main."""
    found = [json.loads(cli.ok("log", name, "--json")), json.loads(cli.ok("status", name, "--json"))]
    if contents:
        out = tmp_path / "states" / f"{uuid.uuid4().hex}.parquet"
        cli.ok("export", name, "main", out, "--format", "parquet")
        found.append(pq.read_table(out).to_pylist())
    return found


def make_socket(path: Path) -> Path:
    """A file that exists but cannot be opened for reading, even by root."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path.relative_to(Path.cwd())))  # relative: AF_UNIX paths are short
    return path


def noisy_png(size: int = 48) -> bytes:
    img = Image.frombytes("RGB", (size, size), bytes((i * 7919) % 251 for i in range(size * size * 3)))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def text_dataset(cli, tmp_path: Path, name: str = "ds") -> None:
    cli.ok("dataset", "create", name, "--modality", "text", "--labels", "a,b,c")
    cli.last_line("import", name, write_csv(tmp_path / "seed.csv", [["k1", "a", "one"], ["k2", "b", "two"], ["k3", "c", "three"]]))


def test_bad_text_imports_name_the_input_and_change_nothing(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text_dataset(cli, tmp_path)
    before = state(cli, tmp_path, "ds")
    (tmp_path / "latin1.csv").write_bytes("key,label,text\nk7,a,caf\xe9\n".encode("latin-1"))
    (tmp_path / "junk.parquet").write_bytes(b"this is not parquet")
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "abs.jsonl").write_text(json.dumps({"key": "/etc/passwd", "label": "a", "text": "x"}) + "\n")
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "sockdir" / "a" / "ok.txt").parent.mkdir(parents=True)
    (tmp_path / "sockdir" / "a" / "ok.txt").write_text("fine")
    make_socket(tmp_path / "sockdir" / "a" / "sock.txt")
    cases = {
        write_csv(tmp_path / "label.csv", [["k4", "a", "four"], ["k9", "zebra", "nine"]]): [
            "label.csv",
            "line 3",
            "k9",
            "'zebra'",
            "label set",
        ],
        write_csv(tmp_path / "dup.csv", [["k5", "a", "x"], ["k6", "b", "y"], ["k5", "b", "z"]]): [
            "dup.csv",
            "line 4",
            "duplicate key 'k5'",
        ],
        tmp_path / "nope.csv": ["nope.csv", "does not exist"],
        write_csv(tmp_path / "header.csv", []): ["header.csv", "no examples"],
        tmp_path / "empty.jsonl": ["empty.jsonl", "no examples"],
        tmp_path / "empty.csv": ["empty.csv", "is empty"],
        tmp_path / "emptydir": ["emptydir", "no examples"],
        write_csv(tmp_path / "up.csv", [["k8", "a", "ok"], ["../x", "a", "escape"]]): ["up.csv", "line 3", "'../x'", "not a safe"],
        tmp_path / "abs.jsonl": ["abs.jsonl", "line 1", "'/etc/passwd'", "not a safe"],
        tmp_path / "latin1.csv": ["latin1.csv", "UTF-8"],
        tmp_path / "junk.parquet": ["junk.parquet", "Parquet"],
        tmp_path / "sockdir": ["sock.txt", "cannot read"],
    }
    for source, expected in cases.items():
        line = cli.fails("import", "ds", source)
        assert all(part in line for part in expected), (source.name, line)
    assert all(p in cli.fails("label", "ds", "k1", "zebra") for p in ("k1", "'zebra'", "label set"))
    assert "ghost" in cli.fails("label", "ds", "ghost", "a")
    assert state(cli, tmp_path, "ds") == before


def test_unreadable_source_files_are_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text_dataset(cli, tmp_path)
    log = cli.ok("log", "ds", "--json")
    (tmp_path / "latin1.jsonl").write_bytes(b'{"key": "k7", "label": "a", "text": "caf\xe9"}\n')
    for source in (make_socket(tmp_path / "sock.csv"), make_socket(tmp_path / "sock.jsonl"), tmp_path / "latin1.jsonl"):
        line = cli.fails("import", "ds", source)
        assert source.name in line, line
    assert cli.ok("log", "ds", "--json") == log


def test_corrupt_truncated_and_missing_images_are_refused(cli, tmp_path):
    cli.ok("dataset", "create", "pics", "--modality", "image", "--labels", "cat,dog")
    cli.last_line("import", "pics", write_image_csv(tmp_path / "seed", {"s1": "cat", "s2": "dog"}))
    before = state(cli, tmp_path, "pics")
    good = noisy_png()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "garbage.png").write_bytes(b"\x89PNG but not really")
    (tmp_path / "bad" / "dir.png").mkdir()
    (tmp_path / "trunc" / "cat").mkdir(parents=True)
    (tmp_path / "trunc" / "cat" / "whole.png").write_bytes(good)
    (tmp_path / "trunc" / "cat" / "half.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "nothing").mkdir()
    header = ("key", "label", "image")
    cases = {
        write_csv(tmp_path / "bad" / "corrupt.csv", [["x1", "cat", "garbage.png"]], header): [
            "corrupt.csv",
            "x1",
            "garbage.png",
            "not a readable image",
        ],
        write_csv(tmp_path / "bad" / "gone.csv", [["x2", "dog", "gone.png"]], header): ["gone.csv", "x2", "gone.png", "cannot read"],
        write_csv(tmp_path / "bad" / "isdir.csv", [["x3", "dog", "dir.png"]], header): ["isdir.csv", "x3", "dir.png", "cannot read"],
        tmp_path / "trunc": ["half.png", "cat/half.png", "not a readable image"],
        tmp_path / "nothing": ["nothing", "no examples"],
    }
    for source, expected in cases.items():
        line = cli.fails("import", "pics", source)
        assert all(part in line for part in expected), (source.name, line)
    assert state(cli, tmp_path, "pics") == before


def test_bad_row_near_the_end_of_a_large_file_commits_nothing(cli, tmp_path):
    cli.ok("dataset", "create", "big", "--modality", "text", "--labels", "a,b")
    rows = [[f"k{i:05d}", "zebra" if i == 19_989 else "ab"[i % 2], f"text number {i}"] for i in range(20_000)]
    before = cli.ok("log", "big", "--json")
    line = cli.fails("import", "big", write_csv(tmp_path / "big.csv", rows))
    assert all(part in line for part in ("big.csv", "line 19991", "k19989", "'zebra'")), line
    assert cli.ok("log", "big", "--json") == before
    assert json.loads(cli.ok("status", "big", "--json")) == []

    head = cli.last_line("import", "big", write_csv(tmp_path / "fixed.csv", [r for r in rows if r[1] != "zebra"]))
    log = json.loads(cli.ok("log", "big", "--json"))
    assert (log[0]["id"], log[0]["rows"], len(log)) == (head, 19_999, 2)
    cli.ok("label", "big", "k19990", "b")
    cli.last_line("commit", "big", "-m", "later commands still work")
    assert json.loads(cli.ok("diff", "big", "main~1", "main", "--json"))["relabeled"] == [{"key": "k19990", "from": "a", "to": "b"}]
    cli.ok("fsck")


def test_unknown_revisions_are_one_line_and_write_nothing(cli, tmp_path):
    text_dataset(cli, tmp_path)
    branches = cli.ok("branch", "ds", "--json")
    assert "'nope'" in cli.fails("diff", "ds", "nope", "main")
    assert "'main~5'" in cli.fails("diff", "ds", "main", "main~5")
    assert "'deadbeef'" in cli.fails("export", "ds", "deadbeef", tmp_path / "out", "--format", "jsonl")
    assert not (tmp_path / "out").exists()
    assert "'nope'" in cli.fails("branch", "ds", "feature", "--from", "nope")
    assert "'nope'" in cli.fails("tag", "ds", "v1", "nope")
    assert cli.ok("branch", "ds", "--json") == branches
    assert "'ghost'" in cli.fails("log", "ghost")


def test_merge_conflict_lists_the_key_and_changes_nothing(cli, tmp_path):
    text_dataset(cli, tmp_path)
    cli.ok("branch", "ds", "f")
    cli.ok("label", "ds", "--file", write_csv(tmp_path / "edits.csv", [["k1", "b"], ["k2", "c"]], ("key", "label")), "--branch", "f")
    cli.last_line("commit", "ds", "-m", "on f", "--branch", "f")
    cli.ok("label", "ds", "k1", "c")
    cli.last_line("commit", "ds", "-m", "on main")
    before, f_log = state(cli, tmp_path, "ds", contents=False), cli.ok("log", "ds", "--branch", "f", "--json")
    proc = cli.run("merge", "ds", "f", "--into", "main")
    assert proc.returncode == 1 and "conflicts on 1 example" in proc.stderr and "s2 resolve" in proc.stderr
    table = proc.stdout.splitlines()  # the whole conflict list, on stdout; its header on stderr when piped
    assert proc.stderr.splitlines()[0].split() == ["KEY", "BASE", "TARGET", "SOURCE"] and [r.split()[0] for r in table] == ["k1"]
    assert state(cli, tmp_path, "ds", contents=False) == before
    assert cli.ok("log", "ds", "--branch", "f", "--json") == f_log


def test_commit_with_nothing_staged_is_refused(cli, tmp_path):
    text_dataset(cli, tmp_path)
    log = cli.ok("log", "ds", "--json")
    assert "nothing staged" in cli.fails("commit", "ds", "-m", "empty")
    assert cli.ok("log", "ds", "--json") == log


def test_commit_of_edits_that_change_nothing_does_not_keep_them_staged(cli, tmp_path):
    text_dataset(cli, tmp_path)
    log = cli.ok("log", "ds", "--json")
    cli.ok("label", "ds", "k1", "a")  # k1 already is 'a'
    assert "nothing to commit" in cli.fails("commit", "ds", "-m", "no-op")
    assert cli.ok("log", "ds", "--json") == log
    assert json.loads(cli.ok("status", "ds", "--json")) == []
    # A stale edit must never ride along with a later commit and undo newer data.
    cli.last_line("import", "ds", write_csv(tmp_path / "relabel.csv", [["k1", "b", "one"]]))
    cli.ok("label", "ds", "k2", "c")
    cli.last_line("commit", "ds", "-m", "k2 only")
    assert json.loads(cli.ok("diff", "ds", "main~1", "main", "--json"))["relabeled"] == [{"key": "k2", "from": "b", "to": "c"}]


def test_dataset_create_refuses_bad_label_sets_and_taken_names(cli):
    cli.ok("dataset", "create", "ds", "--modality", "text", "--labels", "a,b")
    listing = cli.ok("dataset", "list", "--json")
    assert all(p in cli.fails("dataset", "create", "one", "--modality", "text", "--labels", "solo") for p in ("'one'", "two labels"))
    assert all(p in cli.fails("dataset", "create", "rep", "--modality", "text", "--labels", "a,b,a") for p in ("'rep'", "repeats a"))
    assert all(p in cli.fails("dataset", "create", "ds", "--modality", "image", "--labels", "x,y") for p in ("'ds'", "already exists"))
    assert "'../up'" in cli.fails("dataset", "create", "../up", "--modality", "text", "--labels", "a,b")
    assert cli.ok("dataset", "list", "--json") == listing


def test_dataset_create_refuses_an_unknown_modality_in_one_line(cli):
    line = cli.fails("dataset", "create", "sounds", "--modality", "audio", "--labels", "a,b")
    assert "modality" in line and "audio" in line
    assert json.loads(cli.ok("dataset", "list", "--json")) == []


def test_fsck_finds_a_changed_blob_and_export_refuses_to_read_it(cli, blobs, tmp_path, monkeypatch):
    monkeypatch.setenv("S2_INLINE_MAX_BYTES", "0")  # short texts as blob files, so there is one to damage
    text_dataset(cli, tmp_path)
    cli.last_line("import", "ds", write_csv(tmp_path / "v2.csv", [["k1", "a", "uno"]]))  # main no longer holds "one"
    assert "0 corrupt" in cli.ok("fsck")
    blob_id = blob_id_of(b"one")
    path = blobs.path_of(blob_id)
    path.chmod(0o644)
    path.write_bytes(b"0ne")
    proc = cli.run("fsck")
    assert proc.returncode == 1 and blob_id in proc.stdout, proc
    line = cli.fails("export", "ds", "main~1", tmp_path / "out" / "old.jsonl", "--format", "jsonl")
    assert blob_id in line and "corrupt" in line
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    cli.ok("export", "ds", "main", tmp_path / "head.jsonl", "--format", "jsonl")  # revisions without it still read
    assert [json.loads(x)["text"] for x in (tmp_path / "head.jsonl").read_text().splitlines()] == ["uno", "two", "three"]


LOADED = """
import contextlib, io, json, sys
from server.cli.main import main
sys.argv = ["s2", *sys.argv[1:]]
out, code = io.StringIO(), 0
with contextlib.redirect_stdout(out):
    try:
        main()
    except SystemExit as exc:
        code = exc.code
heavy = sorted(m for m in ("torch", "lightning", "pytorch_lightning") if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy, "out": out.getvalue()}))
"""


def test_log_and_diff_do_not_load_torch(cli, tmp_path):
    text_dataset(cli, tmp_path)
    for args in (["log", "ds", "--json"], ["diff", "ds", "main~1", "main", "--json"]):
        proc = subprocess.run([sys.executable, "-c", LOADED, *args], env=cli.env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["code"] in (0, None) and result["heavy"] == [], (args, result)
        assert json.loads(result["out"])  # the command did its work


def test_help_for_every_command():
    from server.cli import datasets, history, io, maintenance, registry, training, users, web  # noqa: F401  (registers the commands)
    from server.cli.main import cli as group

    top = subprocess.run([str(S2_BIN), "--help"], capture_output=True, text=True, timeout=60)
    assert top.returncode == 0 and "Usage:" in top.stdout
    contract = {
        "dataset",
        "import",
        "label",
        "commit",
        "log",
        "diff",
        "branch",
        "merge",
        "tag",
        "blame",
        "export",
        "fsck",
        "gc",
        "checkout",
    }
    assert contract <= set(group.commands) and all(name in top.stdout for name in contract)
    commands, todo = [((), group)], [((), group)]
    while todo:
        prefix, cmd = todo.pop()
        for name, sub in cmd.commands.items():
            commands.append(((*prefix, name), sub))
            if isinstance(sub, click.Group):
                todo.append(((*prefix, name), sub))
    assert {("dataset", "create"), ("user", "add"), ("train",)} <= {path for path, _ in commands}
    runner = CliRunner()
    for path, cmd in commands:
        summary = " ".join(inspect.cleandoc(cmd.help or "").partition("\f")[0].split("\n\n")[0].split())
        assert summary, f"s2 {' '.join(path)} has no help text"
        result = runner.invoke(group, [*path, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output and " ".join(path) in result.output, (path, result.output)
        assert summary in " ".join(result.output.split()), (path, summary, result.output)  # click rewraps the text


def test_a_bad_setting_names_the_variable_in_one_line(cli, monkeypatch):
    cli.ok("dataset", "create", "ds", "--modality", "text", "--labels", "a,b")
    cli.env["S2_PAGE_MAX"] = "lots"
    assert cli.fails("log", "ds").startswith("s2: error: S2_PAGE_MAX='lots': Input should be a valid integer")
    del cli.env["S2_PAGE_MAX"]
    cli.env["s2_page_max"] = "-"  # names are case-insensitive, as they were with pydantic-settings
    assert cli.fails("log", "ds").startswith("s2: error: s2_page_max='-': ")
    del cli.env["s2_page_max"]
    assert "create dataset ds" in cli.ok("log", "ds")
