"""`s2 mr`: merge requests from the command line, on the local store and against a server."""

import json
from pathlib import Path

import pytest

from tests.factories import write_csv

REQUEST_KEYS = {
    "id",
    "dataset",
    "number",
    "title",
    "description",
    "source",
    "target",
    "author",
    "state",
    "approved_by",
    "merged_by",
    "merge_commit",
    "created_at",
    "updated_at",
}


def seeded(cli, tmp_path: Path, keys: int = 4) -> None:
    """Text dataset t with k1..kN labeled a, and branches fix and idle at its first commit."""
    cli.ok("dataset", "create", "t", "--modality", "text", "--labels", "a,b,c")
    cli.ok("import", "t", write_csv(tmp_path / "rows.csv", [[f"k{i}", "a", f"text {i}"] for i in range(1, keys + 1)]))
    cli.ok("branch", "t", "fix")
    cli.ok("branch", "t", "idle")


def commit(cli, branch: str, edits: dict[str, str], tmp_path: Path | None = None) -> str:
    """Stage edits on branch (one `s2 label` each, or one --file in tmp_path) and commit them; the new commit id."""
    if tmp_path is not None:
        cli.ok("label", "t", "--file", write_csv(tmp_path / f"{branch}.csv", list(edits.items()), ("key", "label")), "--branch", branch)
    for key, label in edits.items() if tmp_path is None else ():
        cli.ok("label", "t", key, label, "--branch", branch)
    return cli.last_line("commit", "t", "-m", f"{len(edits)} edits on {branch}", "--branch", branch)


def test_open_refuses_pointless_requests_and_list_shows_a_table(cli, tmp_path):
    seeded(cli, tmp_path)
    commit(cli, "fix", {"k1": "b"})
    refused = {
        ("--source", "fix", "--into", "fix"): "would merge into itself",
        ("--source", "idle"): "nothing to merge: 'main' already holds every commit of 'idle'",
        ("--source", "nope"): "no branch 'nope'",
        ("--source", "fix", "--into", "nope"): "no branch 'nope'",
    }
    for args, said in refused.items():
        proc = cli.run("mr", "open", "t", *args, "--title", "x")
        assert proc.returncode == 1 and proc.stdout == "", (args, proc.stdout)
        line = cli.fails("mr", "open", "t", *args, "--title", "x")
        assert line.startswith("s2: error: ") and said in line, (args, line)
    proc = cli.run("mr", "list", "t")  # none yet: no table, a message on stderr
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "no open merge requests in t\n")

    proc = cli.run("mr", "open", "t", "--source", "fix", "--title", "Fix k1", "--description", "k1 is a b")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "t!1\n" and "fix → main (/d/t/merge-requests/1)" in proc.stderr  # the id on stdout, its page on stderr
    assert "already asks to merge 'fix' into 'main'" in cli.fails("mr", "open", "t", "--source", "fix", "--title", "again")
    second = json.loads(cli.ok("mr", "open", "t", "--source", "fix", "--into", "idle", "--title", "Fix\tinto  idle", "--json"))
    assert set(second) == REQUEST_KEYS
    assert (second["id"], second["number"], second["target"], second["state"]) == ("t!2", 2, "idle", "open")

    listed = cli.run("mr", "list", "t")
    header, rows = listed.stderr.splitlines()[0], listed.stdout.splitlines()  # the header: on stderr when piped
    assert header.split() == ["NUMBER", "STATE", "SOURCE", "→", "TARGET", "AUTHOR", "TITLE"]
    assert [r.split() for r in rows] == [
        ["!2", "open", "fix", "→", "idle", "tester@example.com", "Fix", "into", "idle"],
        ["!1", "open", "fix", "→", "main", "tester@example.com", "Fix", "k1"],
    ]
    assert rows[0].index("open") == header.index("STATE") and rows[0].index("tester") == header.index("AUTHOR")
    listed = json.loads(cli.ok("mr", "list", "t", "--json"))
    assert [r["id"] for r in listed] == ["t!2", "t!1"] and all(set(r) == REQUEST_KEYS for r in listed)
    cli.ok("mr", "close", "t", "2")
    assert [r["number"] for r in json.loads(cli.ok("mr", "list", "t", "--json"))] == [1]
    assert [r["number"] for r in json.loads(cli.ok("mr", "list", "t", "--state", "closed", "--json"))] == [2]
    assert [r["number"] for r in json.loads(cli.ok("mr", "list", "t", "--state", "all", "--json"))] == [2, 1]
    assert "'shut' is not one of" in cli.fails("mr", "list", "t", "--state", "shut")
    assert "no dataset named 'nope'" in cli.fails("mr", "list", "nope")


def test_a_conflict_is_shown_side_by_side_resolved_and_merged_with_the_sources_label(cli, tmp_path):
    seeded(cli, tmp_path)
    commit(cli, "fix", {"k1": "b", "k2": "c"})
    commit(cli, "main", {"k1": "c"})  # k1 now conflicts: a at the base, c on main, b on fix
    assert cli.last_line("mr", "open", "t", "--source", "fix", "--title", "Fix two", "-d", "k1 is a b\nk2 is a c").startswith("t!1")

    shown = cli.ok("mr", "show", "t", "1")
    assert shown.startswith("t!1: Fix two  [open]\nfix → main, opened by tester@example.com")
    assert "    k1 is a b\n    k2 is a c\n" in shown
    assert "1 commit(s) ahead of main, 1 behind; mergeable: conflicts" in shown
    assert "check: no model of fix's head yet (none trained) vs no production model to compare with" in shown
    assert "conflicts (1, 1 unresolved):" in shown
    table = shown.split("conflicts (1, 1 unresolved):\n")[1].splitlines()
    assert table[0].split() == ["KEY", "BASE", "TARGET", "(main)", "SOURCE", "(fix)", "TAKE"]
    assert table[1].split() == ["k1", "a", "c", "b", "-"]
    assert "more" not in shown

    detail = json.loads(cli.ok("mr", "show", "t", "1", "--json"))
    assert set(detail) >= REQUEST_KEYS | {"ahead", "behind", "mergeable", "conflicts", "conflicts_left", "check", "comments"}
    (conflict,) = detail["conflicts"]
    assert (conflict["key"], conflict["base_label"], conflict["target_label"], conflict["source_label"], conflict["take"]) == (
        "k1",
        "a",
        "c",
        "b",
        None,
    )
    assert "conflicts on 1 example(s): k1" in cli.fails("mr", "merge", "t", "1")

    # Resolving: a side must be named, only a conflicting key, and the answer is the conflict.
    assert "--ours" in cli.fails("mr", "resolve", "t", "1", "k1")
    assert cli.run("mr", "resolve", "t", "1", "k1").returncode == 2
    assert "'k2' is not in conflict" in cli.fails("mr", "resolve", "t", "1", "k2", "--theirs")
    assert "no merge request !9" in cli.fails("mr", "resolve", "t", "9", "k1", "--theirs")
    resolved = json.loads(cli.ok("mr", "resolve", "t", "1", "k1", "--theirs", "--json"))
    assert (resolved["key"], resolved["take"], resolved["taken_by"], resolved["source_label"]) == (
        "k1",
        "theirs",
        "tester@example.com",
        "b",
    )
    proc = cli.run("mr", "resolve", "t", "1", "k1", "--theirs")
    assert proc.stdout == "" and "k1 takes the source's label, b" in proc.stderr

    assert json.loads(cli.ok("mr", "comment", "t", "1", "looks right\nto me", "--json"))["body"] == "looks right\nto me"
    assert json.loads(cli.ok("mr", "approve", "t", "1", "--json"))["approved_by"] == ["tester@example.com"]
    shown = cli.ok("mr", "show", "t", "1")
    assert "mergeable: resolved" in shown and "conflicts (1, 0 unresolved):" in shown and "approved by tester@example.com" in shown
    assert "theirs (tester@example.com)" in shown.split("conflicts (1, 0 unresolved):")[1].splitlines()[2]
    assert "comments (1):\n  tester@example.com, " in shown and "    looks right\n    to me" in shown

    proc = cli.run("mr", "merge", "t", "1")
    assert proc.returncode == 0, proc.stderr
    head = proc.stdout.strip()
    assert len(head) == 64 and "merged t!1: fix → main" in proc.stderr
    assert json.loads(cli.ok("log", "t", "--json"))[0]["id"] == head
    assert [json.loads(cli.ok("show", "t", k))["label"] for k in ("k1", "k2", "k3")] == ["b", "c", "a"]  # the source's k1
    merged = json.loads(cli.ok("mr", "show", "t", "1", "--json"))
    assert (merged["state"], merged["merged_by"], merged["merge_commit"], merged["mergeable"]) == (
        "merged",
        "tester@example.com",
        head,
        "merged",
    )
    assert f"merged by tester@example.com as {head}" in cli.ok("mr", "show", "t", "1")
    assert "is merged: it cannot be merged" in cli.fails("mr", "merge", "t", "1")
    assert "is merged: it cannot be closed" in cli.fails("mr", "close", "t", "1")
    assert [r.split()[:2] for r in cli.ok("mr", "list", "t", "--state", "all").splitlines()] == [["!1", "merged"]]


def test_show_lists_every_conflict(cli, tmp_path):
    seeded(cli, tmp_path, keys=30)
    commit(cli, "fix", {f"k{i}": "b" for i in range(1, 31)}, tmp_path)
    commit(cli, "main", {f"k{i}": "c" for i in range(1, 31)}, tmp_path)
    cli.ok("mr", "open", "t", "--source", "fix", "--title", "All of them")
    cli.ok("mr", "resolve", "t", "1", "k7", "--ours")
    shown = cli.ok("mr", "show", "t", "1")
    rows = shown.split("conflicts (30, 29 unresolved):\n")[1].splitlines()[1:31]
    assert sorted(r.split()[0] for r in rows) == sorted(f"k{i}" for i in range(1, 31))
    assert all(r.split()[1:4] == ["a", "c", "b"] for r in rows)
    assert "more" not in shown
    assert [r.split()[-2:] for r in rows if r.split()[0] == "k7"] == [["ours", "(tester@example.com)"]]
    assert "conflicts on 29 example(s)" in cli.fails("mr", "merge", "t", "1")  # the 29 left


def test_the_check_and_a_cut_conflict_list_are_shown_as_the_server_sent_them(capsys):
    """The check's metrics rounded, with deltas; conflicts the server did not list are counted, never dropped silently."""
    from server.cli.merge_requests import _show_check, _show_conflicts
    from server.merge_requests.schemas import CheckRead, ConflictRead

    check = CheckRead(
        source_head="f" * 64,
        model="t@4",
        run=9,
        run_state="succeeded",
        production="t@2",
        metrics={
            "accuracy": {"production": 0.912345, "model": 0.934567, "delta": 0.022222},
            "macro_f1": {"production": 0.9, "model": 0.88, "delta": -0.02},
            "loss": {"production": None, "model": None, "delta": None},
        },
    )
    _show_check(check.model_dump(mode="json"), "fix")
    assert capsys.readouterr().out.splitlines() == [
        "check: model t@4 vs production t@2",
        "  accuracy  production  0.9123  model  0.9346  delta +0.0222",
        "  macro_f1  production  0.9000  model  0.8800  delta -0.0200",
    ]
    _show_check({**check.model_dump(mode="json"), "model": None, "run_state": "running"}, "fix")
    assert capsys.readouterr().out.startswith("check: no model of fix's head yet (run 9 is running) vs production t@2\n")

    listed = [
        ConflictRead(
            key=f"k{i}",
            base_label="a",
            base_removed=False,
            target_label=None,
            target_removed=True,
            source_label=None,
            source_removed=False,
            take=None,
        ).model_dump(mode="json")
        for i in range(3)
    ]
    _show_conflicts({"dataset": "t", "number": 1, "source": "fix", "target": "main", "conflicts": listed, "conflicts_left": 5})
    out = capsys.readouterr().out
    assert "conflicts (5, 5 unresolved):" in out and "k0   a     (removed)      (unlabeled)   -" in out
    assert "... and 2 more unresolved (the server lists 3;" in out


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_requests_work_against_a_server_with_its_roles(s2env, broker_url, cli, tmp_path):
    """open, show, resolve, merge over HTTP only; a labeler opens and resolves, an engineer merges."""
    from tests.api.conftest import Api, free_port, start_server
    from tests.api.test_cli_remote import remote
    from tests.conftest import stop_process

    seeded(cli, tmp_path)
    commit(cli, "fix", {"k1": "b", "k2": "c"})
    commit(cli, "main", {"k1": "c"})
    admin = cli.last_line("user", "add", "root", "--role", "admin")
    proc = start_server({**s2env, "S2_BROKER_URL": broker_url}, tmp_path / "server.log", port := free_port())
    try:
        api = Api(f"http://127.0.0.1:{port}", admin, tmp_path / "server.log", proc)
        lena = remote(s2env, tmp_path, api, api.add_user("lena", "labeler", ("t",)))
        eve = remote(s2env, tmp_path, api, api.add_user("eve", "engineer"))

        opened = lena.run("mr", "open", "t", "--source", "fix", "--title", "Fix two")
        assert opened.stdout == "t!1\n" and "(/d/t/merge-requests/1)" in opened.stderr
        assert "would merge into itself" in lena.fails("mr", "open", "t", "--source", "fix", "--into", "fix", "--title", "x")
        assert "nothing to merge" in lena.fails("mr", "open", "t", "--source", "idle", "--title", "x")
        listed = eve.run("mr", "list", "t")
        header, row = listed.stderr.strip(), listed.stdout.strip()
        assert header.startswith("NUMBER") and row.split() == ["!1", "open", "fix", "→", "main", "lena", "Fix", "two"]

        shown = eve.ok("mr", "show", "t", "1")
        assert "mergeable: conflicts" in shown and shown.split("unresolved):\n")[1].splitlines()[1].split() == ["k1", "a", "c", "b", "-"]
        local = json.loads(cli.ok("mr", "show", "t", "1", "--json"))
        assert json.loads(eve.ok("mr", "show", "t", "1", "--json")) == local  # the same JSON either way

        assert "only t!1's author (lena) or an engineer" in remote(s2env, tmp_path, api, api.add_user("lou", "labeler", ("t",))).fails(
            "mr", "resolve", "t", "1", "k1", "--theirs"
        )
        lena.ok("mr", "resolve", "t", "1", "k1", "--theirs")
        lena.ok("mr", "comment", "t", "1", "ready")
        assert "engineer" in lena.fails("mr", "merge", "t", "1")
        eve.ok("mr", "approve", "t", "1")
        head = eve.last_line("mr", "merge", "t", "1")
        merged = json.loads(eve.ok("mr", "show", "t", "1", "--json"))
        assert (merged["state"], merged["merged_by"], merged["merge_commit"], merged["approved_by"]) == ("merged", "eve", head, ["eve"])
        assert [c["author"] for c in merged["comments"]] == ["lena"]
        assert json.loads(eve.ok("show", "t", "k1"))["label"] == "b"
        assert "no merge request !4" in eve.fails("mr", "show", "t", "4")
    finally:
        stop_process(proc)
