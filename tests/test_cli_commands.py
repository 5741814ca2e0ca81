"""History commands and failing file and database operations through the real `s2` executable."""

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import S2_BIN, private_pg_database
from tests.factories import write_csv


def seeded(cli, tmp_path: Path) -> str:
    """Text dataset ds with k1..k3 labeled a, b, c; returns the import commit."""
    cli.ok("dataset", "create", "ds", "--modality", "text", "--labels", "a,b,c")
    return cli.last_line("import", "ds", write_csv(tmp_path / "seed.csv", [["k1", "a", "one"], ["k2", "b", "two"], ["k3", "c", "three"]]))


def relabel(cli, key: str, label: str, message: str, branch: str = "main") -> str:
    """Stage and commit one edit on branch; returns the new commit id."""
    cli.ok("label", "ds", key, label, "--branch", branch)
    return cli.last_line("commit", "ds", "-m", message, "--branch", branch)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single stderr line of a command that failed with status 1 and no traceback."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("s2: error: "), proc.stderr
    return lines[0]


def run_s2(env: dict[str, str], cwd: Path, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(S2_BIN), *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_an_export_path_that_cannot_be_made_is_one_line_naming_it(cli, tmp_path):
    seeded(cli, tmp_path)
    line = one_error_line(cli.run("export", "ds", "main", "/proc/nope/out.jsonl", "--format", "jsonl"))
    assert "'/proc/nope'" in line and "No such file or directory" in line, line


def test_an_s2_home_that_is_a_file_is_one_line_naming_it(tmp_path):
    home = tmp_path / "not-a-folder"
    home.write_text("a file where the store folder should be")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("S2_")}, "S2_HOME": str(home)}
    line = one_error_line(run_s2(env, tmp_path, "log", "ds"))
    assert f"'{home}'" in line and "needs a folder" in line, line
    assert home.read_text() == "a file where the store folder should be"


def test_a_statement_the_database_refuses_is_one_line_naming_the_database(tmp_path):
    with private_pg_database() as url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("S2_")},
            "S2_DATABASE_URL": url,
            "S2_HOME": str(tmp_path / "home"),
            "S2_AUTHOR": "tester@example.com",
        }
        assert run_s2(env, tmp_path, "dataset", "create", "ds", "--modality", "text", "--labels", "a,b").returncode == 0
        read_only = {**env, "PGOPTIONS": "-c default_transaction_read_only=on"}  # as on a read-only replica
        line = one_error_line(run_s2(read_only, tmp_path, "dataset", "create", "more", "--modality", "text", "--labels", "a,b"))
        assert url.rsplit("/", 1)[1] in line and "read-only transaction" in line, line
        listed = run_s2(env, tmp_path, "dataset", "list", "--json")
        assert [d["name"] for d in json.loads(listed.stdout)] == ["ds"]


def test_label_file_errors_name_the_file_and_line_and_stage_nothing(cli, tmp_path):
    seeded(cli, tmp_path)
    log = cli.ok("log", "ds", "--json")
    edits = ("key", "label")
    (tmp_path / "empty.csv").write_bytes(b"")
    cases = {
        tmp_path / "nope.csv": ["nope.csv", "cannot read", "No such file"],
        write_csv(tmp_path / "cols.csv", [["k1", "b"]], ("key", "lab")): ["cols.csv", "needs columns key,label", "found: key, lab"],
        write_csv(tmp_path / "onlykey.csv", [["k1"]], ("key",)): ["onlykey.csv", "needs columns key,label", "found: key"],
        write_csv(tmp_path / "ghost.csv", [["k1", "b"], ["ghost", "a"]], edits): ["ghost.csv", "line 3", "no example 'ghost'"],
        write_csv(tmp_path / "dup.csv", [["k1", "b"], ["k2", "a"], ["k1", "c"]], edits): ["dup.csv", "line 4", "'k1'", "first at line 2"],
        write_csv(tmp_path / "short.csv", [["k1", "b"], ["k2"]], edits): ["short.csv", "line 3", "fewer cells"],
        tmp_path / "empty.csv": ["empty.csv", "is empty"],
        write_csv(tmp_path / "header.csv", [], edits): ["header.csv", "no rows"],
    }
    for path, expected in cases.items():
        line = cli.fails("label", "ds", "--file", path)
        assert all(part in line for part in expected), (path.name, line)
        assert json.loads(cli.ok("status", "ds", "--json")) == [], path.name
    zebra = write_csv(tmp_path / "zebra.csv", [["k1", "b"], ["k2", "zebra"]], edits)
    assert cli.fails("label", "ds", "--file", zebra) == (
        f"s2: error: '{zebra}' line 3: key 'k2': label 'zebra' is not in the label set (a, b, c)"
    )
    assert json.loads(cli.ok("status", "ds", "--json")) == []
    assert cli.ok("log", "ds", "--json") == log
    cli.ok("label", "ds", "--file", write_csv(tmp_path / "good.csv", [["k1", "b"], ["k2", ""]], edits))
    assert [(s["key"], s["label"]) for s in json.loads(cli.ok("status", "ds", "--json"))] == [("k1", "b"), ("k2", None)]


def test_blame_lists_every_commit_that_changed_the_key_oldest_first(cli, tmp_path):
    imported = seeded(cli, tmp_path)
    first = relabel(cli, "k1", "b", "k1 to b")
    relabel(cli, "k2", "c", "k2 only")  # does not touch k1
    third = relabel(cli, "k1", "c", "k1 to c")
    entries = json.loads(cli.ok("blame", "ds", "k1", "--json"))
    assert [(e["commit"], e["label"], e["message"]) for e in entries] == [
        (imported, "a", "import seed.csv"),
        (first, "b", "k1 to b"),
        (third, "c", "k1 to c"),
    ]
    text = cli.ok("blame", "ds", "k1").splitlines()
    assert [line.split()[0] for line in text] == [imported[:12], first[:12], third[:12]]
    assert "label=c" in text[2] and "k1 to c" in text[2]
    assert [e["commit"] for e in json.loads(cli.ok("blame", "ds", "k1", "--rev", "main~1", "--json"))] == [imported, first]


def test_merge_fast_forward_then_three_way_shows_in_log_and_show(cli, tmp_path):
    imported = seeded(cli, tmp_path)
    cli.ok("branch", "ds", "f")
    tip = relabel(cli, "k1", "b", "k1 on f", branch="f")
    out = cli.run("merge", "ds", "f", "--into", "main")
    assert (out.stdout, out.stderr) == (f"{tip}\n", "fast-forwarded main to f\n")  # the id on stdout, the summary on stderr
    assert [c["id"] for c in json.loads(cli.ok("log", "ds", "--json"))][:2] == [tip, imported]
    assert json.loads(cli.ok("show", "ds", "k1"))["label"] == "b"

    cli.ok("branch", "ds", "g")
    on_g = relabel(cli, "k2", "c", "k2 on g", branch="g")
    on_main = relabel(cli, "k3", "a", "k3 on main")
    out = cli.run("merge", "ds", "g", "--into", "main", "-m", "bring in g")
    assert out.stderr == "merged g into main: 1 change(s)\n"
    head = json.loads(cli.ok("log", "ds", "--json", "-n", "1"))[0]
    assert (head["id"], head["parents"], head["message"]) == (out.stdout.strip(), [on_main, on_g], "bring in g")
    assert f"(merge of {on_main[:12]}, {on_g[:12]})" in cli.ok("log", "ds", "-n", "1")
    assert [json.loads(cli.ok("show", "ds", k))["label"] for k in ("k1", "k2", "k3")] == ["b", "c", "a"]
    assert json.loads(cli.ok("show", "ds", "k2", "--rev", "main~1"))["label"] == "b"  # the first parent: main before
    assert cli.run("merge", "ds", "g", "--into", "main").stderr == "main already contains g\n"


def test_unknown_revisions_for_merge_log_and_blame_are_one_line(cli, tmp_path):
    imported = seeded(cli, tmp_path)
    log = cli.ok("log", "ds", "--json")
    assert "unknown revision 'nope'" in cli.fails("merge", "ds", "nope", "--into", "main")
    assert "unknown revision 'nope'" in cli.fails("log", "ds", "--branch", "nope")
    assert "unknown revision 'nope'" in cli.fails("blame", "ds", "k1", "--rev", "nope")
    assert "goes past the first commit" in cli.fails("log", "ds", "--branch", "main~7")
    assert "at least 7 hex digits" in cli.fails("blame", "ds", "k1", "--rev", imported[:6])
    assert cli.ok("log", "ds", "--json") == log


def test_every_local_write_is_in_the_audit_trail_under_the_cli_user(cli, tmp_path):
    """Writes made on the store directly are recorded like the API's, with S2_AUTHOR as the actor; failed ones are not."""
    seeded(cli, tmp_path)
    cli.ok("branch", "ds", "fix")
    relabel(cli, "k1", "b", "k1 is b", branch="fix")
    cli.ok("merge", "ds", "fix", "--into", "main")
    cli.ok("tag", "ds", "v1", "main")
    assert "is protected" in cli.run("protect", "ds", "fix").stderr
    assert "default branch" in cli.fails("protect", "ds", "main", "--off")
    cli.ok("label", "ds", "k2", "c")
    cli.ok("unstage", "ds", "k2")
    cli.fails("label", "ds", "k3", "zebra")  # refused: nothing recorded
    trail = json.loads(cli.ok("audit", "--json"))
    assert {e["actor"] for e in trail} == {"tester@example.com"}
    assert [(e["action"], e["target"]) for e in reversed(trail)] == [
        ("dataset.create", "ds"),
        ("dataset.import", "ds/default"),
        ("branch.create", "ds/fix"),
        ("edits.stage", "ds/fix"),
        ("edits.commit", "ds/fix"),
        ("branch.merge", "ds/main"),
        ("tag.create", "ds/v1"),
        ("branch.protect", "ds/fix"),
        ("edits.stage", "ds/default"),
        ("edits.unstage", "ds/default"),
    ]
    assert next(e for e in trail if e["action"] == "branch.merge")["detail"]["outcome"] == "fast-forward"
    assert [e["action"] for e in json.loads(cli.ok("audit", "--json", "--actor", "nobody"))] == []
    assert len(cli.ok("audit", "-n", "2").splitlines()) == 2
