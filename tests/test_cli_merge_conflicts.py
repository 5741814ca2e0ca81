"""Merge conflicts from the local CLI, as git users expect: every conflict listed, --ours/--theirs, `s2 resolve`, --abort."""

import json
from pathlib import Path

from tests.factories import write_csv

CONFLICT_FIELDS = {"key", "base_label", "target_label", "source_label", "base_removed", "target_removed", "source_removed"}


def seeded(cli, tmp_path: Path, keys: int = 4) -> None:
    """Text dataset t with k01..kNN labeled a, and branch fix at its first commit."""
    cli.ok("dataset", "create", "t", "--modality", "text", "--labels", "a,b,c,d")
    cli.ok("import", "t", write_csv(tmp_path / "rows.csv", [[f"k{i:02d}", "a", f"text {i}"] for i in range(1, keys + 1)]))
    cli.ok("branch", "t", "fix")


def commit(cli, tmp_path: Path, branch: str, edits: dict[str, str]) -> str:
    """Stage edits on branch (one --file) and commit them; the new commit id."""
    path = write_csv(tmp_path / f"{branch}-{len(edits)}-{sorted(edits)[0]}.csv", list(edits.items()), ("key", "label"))
    cli.ok("label", "t", "--file", path, "--branch", branch)
    return cli.last_line("commit", "t", "-m", f"{len(edits)} edits on {branch}", "--branch", branch)


def diverged(cli, tmp_path: Path, keys: int = 4, clashing: int = 2) -> list[str]:
    """main labels k01..k{clashing} b, fix labels them c (and k{keys} b, a clean change); the clashing keys."""
    seeded(cli, tmp_path, keys)
    clash = [f"k{i:02d}" for i in range(1, clashing + 1)]
    commit(cli, tmp_path, "main", dict.fromkeys(clash, "b"))
    commit(cli, tmp_path, "fix", {**dict.fromkeys(clash, "c"), f"k{keys:02d}": "b"})
    return clash


def labels(cli, keys: list[str], rev: str = "main") -> dict[str, str]:
    return {k: json.loads(cli.ok("show", "t", k, "--rev", rev))["label"] for k in keys}


def test_a_conflicting_merge_lists_every_conflict_and_says_how_to_resolve(cli, tmp_path):
    clash = diverged(cli, tmp_path, keys=32, clashing=30)
    proc = cli.run("merge", "t", "fix", "--into", "main")
    assert proc.returncode == 1
    assert [line.split() for line in proc.stdout.splitlines()] == [[k, "a", "b", "c"] for k in clash]  # all 30, none cut
    header, *err = [line for line in proc.stderr.splitlines() if line.strip()]  # the table's header: on stderr when piped
    assert header.split() == ["KEY", "BASE", "TARGET", "SOURCE"]
    assert len(err) == 1 and "30 example(s)" in err[0] and "s2 resolve t KEY LABEL --into main" in err[0] and "--ours" in err[0]
    proc = cli.run("merge", "t", "fix", "--into", "main", "--json")
    assert proc.returncode == 1
    found = json.loads(proc.stdout)["conflicts"]
    assert [c["key"] for c in found] == clash and CONFLICT_FIELDS <= set(found[0])
    assert {k: found[0][k] for k in CONFLICT_FIELDS} == {
        "key": "k01",
        "base_label": "a",
        "target_label": "b",
        "source_label": "c",
        "base_removed": False,
        "target_removed": False,
        "source_removed": False,
    }
    assert labels(cli, ["k01", "k32"]) == {"k01": "b", "k32": "a"}  # nothing written


def test_ours_and_theirs_settle_every_conflict(cli, tmp_path):
    clash = diverged(cli, tmp_path)
    cli.ok("branch", "t", "other", "--from", "main")
    head = cli.last_line("merge", "t", "fix", "--into", "main", "--theirs")
    assert len(head) == 64
    assert labels(cli, [*clash, "k04"]) == {"k01": "c", "k02": "c", "k04": "b"}
    done = json.loads(cli.ok("merge", "t", "fix", "--into", "other", "--ours", "--json"))
    assert done["outcome"] == "merge" and done["id"] == done["head"]
    assert labels(cli, [*clash, "k04"], "other") == {"k01": "b", "k02": "b", "k04": "b"}


def test_resolve_per_key_with_labels_completes_the_merge(cli, tmp_path):
    clash = diverged(cli, tmp_path)
    assert cli.run("merge", "t", "fix", "--into", "main").returncode == 1
    listing = cli.run("resolve", "t")  # the merge in progress
    assert listing.stderr.splitlines()[0].split() == ["KEY", "BASE", "TARGET", "SOURCE", "RESOLUTION"]
    assert [line.split()[0] for line in listing.stdout.splitlines()] == clash
    # a bad label or key: one line, nothing recorded
    assert "label 'zebra'" in cli.fails("resolve", "t", "k01", "zebra", "--into", "main")
    assert "not in conflict" in cli.fails("resolve", "t", "k03", "a")
    assert "is of 'fix', not 'main'" in cli.fails("resolve", "t", "k01", "a", "--source", "main")
    proc = cli.run("resolve", "t", "k01", "a", "--into", "main", "--source", "fix")
    assert proc.returncode == 0 and "1 conflict(s) left: k02" in proc.stderr and proc.stdout == ""
    pending = json.loads(cli.ok("resolve", "t", "--json"))
    assert pending["unresolved"] == 1 and pending["conflicts"][0]["resolution"] == {"label": "a"}
    head = cli.last_line("resolve", "t", "k02", "--theirs")
    assert len(head) == 64
    assert labels(cli, [*clash, "k04"]) == {"k01": "a", "k02": "c", "k04": "b"}
    log = json.loads(cli.ok("log", "t", "--json"))
    assert log[0]["id"] == head and "merge fix into main" in log[0]["message"]
    assert "no merge in progress" in cli.fails("resolve", "t", "k01", "a")


def test_a_target_that_moved_is_replanned_never_overwritten(cli, tmp_path):
    diverged(cli, tmp_path, keys=5, clashing=3)
    assert cli.run("merge", "t", "fix", "--into", "main").returncode == 1
    cli.ok("resolve", "t", "k01", "a")
    cli.ok("resolve", "t", "k02", "a")
    commit(cli, tmp_path, "main", {"k01": "c", "k02": "d"})  # main changes k01 again (now agrees with fix) and k02
    proc = cli.run("resolve", "t", "k03", "a")
    assert proc.returncode == 1 and "main moved since the merge started" in proc.stderr
    table = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()}
    assert table == {"k02": ["a", "d", "c", "-"], "k03": ["a", "b", "c", "label", "a"]}  # k02's old resolution dropped
    head = cli.last_line("resolve", "t", "k02", "b")
    assert labels(cli, ["k01", "k02", "k03", "k05"]) == {"k01": "c", "k02": "b", "k03": "a", "k05": "b"}
    assert json.loads(cli.ok("log", "t", "--json"))[0]["id"] == head


def test_abort_drops_the_merge_in_progress(cli, tmp_path):
    diverged(cli, tmp_path)
    assert cli.run("merge", "t", "fix", "--into", "main").returncode == 1
    cli.ok("resolve", "t", "k01", "a")
    proc = cli.run("merge", "--abort", "t", "--into", "main")
    assert proc.returncode == 0 and "aborted the merge in progress into main" in proc.stderr
    assert "no merge in progress into 'main'" in cli.fails("merge", "--abort", "t", "--into", "main")
    assert "no merge in progress" in cli.fails("resolve", "t", "k01", "a")
    assert labels(cli, ["k01", "k02"]) == {"k01": "b", "k02": "b"}
    # a new conflicted merge starts afresh, and --theirs completes it and drops it
    assert cli.run("merge", "t", "fix", "--into", "main").returncode == 1
    cli.ok("merge", "t", "fix", "--into", "main", "--theirs")
    assert "no merge in progress" in cli.fails("resolve", "t")
