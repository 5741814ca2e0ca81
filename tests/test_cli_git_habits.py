"""git's habits through the real `s2` executable on the local store: HEAD and REV^N, `s2 log NAME [REV]`,
"did you mean" for datasets, branches, revisions and commands, listing and deleting refs and datasets,
and no silent wait for a run that no worker will take."""

import json
import signal
import subprocess
import time

from tests.conftest import S2_BIN
from tests.factories import write_csv


def sigint_as_at_a_terminal() -> None:
    """Ctrl-C as a person's shell delivers it: a test suite started in the background (nohup, CI) runs with
    SIGINT ignored, and Python keeps an ignored SIGINT ignored, so the CLI would never see the interrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _merged(cli, tmp_path) -> dict[str, str]:
    """Dataset ds whose main ends in a merge: {"first", "side", "main", "merge"} commit ids."""
    cli.ok("dataset", "create", "ds", "--modality", "text", "--labels", "a,b")
    first = cli.last_line("import", "ds", write_csv(tmp_path / "one.csv", [["k1", "a", "one"], ["k2", "b", "two"]]))
    cli.ok("branch", "ds", "fix")
    cli.ok("label", "ds", "k1", "b", "--branch", "fix")
    side = cli.last_line("commit", "ds", "-m", "k1 is a b", "--branch", "fix")
    main = cli.last_line("import", "ds", write_csv(tmp_path / "two.csv", [["k3", "a", "three"]]))
    merge = cli.last_line("merge", "ds", "fix", "--into", "main")
    return {"first": first, "side": side, "main": main, "merge": merge}


def _at(cli, rev: str, *more: str) -> str:
    return json.loads(cli.ok("log", "ds", rev, "-n", "1", "--json", *more))[0]["id"]


def test_head_and_parent_syntax_name_the_commits_git_would(cli, tmp_path):
    ids = _merged(cli, tmp_path)
    assert len(json.loads(cli.ok("log", "ds", "--json"))[0]["parents"]) == 2
    assert _at(cli, "HEAD") == _at(cli, "main") == _at(cli, "HEAD^0") == ids["merge"]
    assert _at(cli, "HEAD^") == _at(cli, "HEAD^1") == _at(cli, "HEAD~1") == _at(cli, "HEAD~") == ids["main"]
    assert _at(cli, "HEAD^2") == _at(cli, "fix") == ids["side"]
    assert _at(cli, "HEAD^2^") == _at(cli, "HEAD^2~1") == _at(cli, "HEAD~2") == _at(cli, f"{ids['merge'][:10]}^^") == ids["first"]
    # The existing option still works, and REV given twice alike is fine.
    assert _at(cli, "fix", "--branch", "fix") == ids["side"]
    assert json.loads(cli.ok("log", "ds", "--branch", "HEAD^2", "--json"))[0]["id"] == ids["side"]
    assert json.loads(cli.ok("log", "ds", "--rev", "HEAD^2", "--json"))[0]["id"] == ids["side"]
    assert "once" in cli.fails("log", "ds", "main", "--branch", "fix")
    # HEAD is understood wherever a REV is: diff, tag, branch --from, show.
    assert json.loads(cli.ok("diff", "ds", "HEAD^2", "HEAD^", "--json"))["relabeled"] == [{"key": "k1", "from": "b", "to": "a"}]
    assert json.loads(cli.ok("show", "ds", "k1", "--rev", "HEAD^2"))["label"] == "b"
    cli.ok("tag", "ds", "before-merge", "HEAD^")
    cli.ok("branch", "ds", "again", "--from", "HEAD~2")
    assert _at(cli, "before-merge") == ids["main"] and _at(cli, "again") == ids["first"]
    # Errors name what is wrong.
    assert "parent 3 of HEAD, which has only 2 parents" in cli.fails("log", "ds", "HEAD^3")
    assert "goes past the first commit" in cli.fails("log", "ds", "HEAD~9")
    assert "has no parent" in cli.fails("log", "ds", "HEAD~3^")
    # HEAD is not a name a ref may take.
    assert "HEAD" in cli.fails("branch", "ds", "HEAD")
    assert "HEAD" in cli.fails("tag", "ds", "HEAD", "main")


def test_unknown_names_suggest_the_close_ones(cli, tmp_path):
    cli.ok("dataset", "create", "digits", "--modality", "text", "--labels", "a,b")
    cli.ok("import", "digits", write_csv(tmp_path / "one.csv", [["k1", "a", "one"], ["k2", "b", "two"]]))
    cli.ok("branch", "digits", "fix-labels")
    line = cli.fails("log", "digts")
    assert "no dataset named 'digts'; did you mean 'digits'?" in line and "create it with" not in line
    assert "create it with: s2 dataset create zebra" in cli.fails("log", "zebra")  # nothing close: creating it is the hint
    line = cli.fails("label", "digits", "k1", "b", "--branch", "fix-label")
    assert "no branch 'fix-label' in dataset 'digits'; did you mean 'fix-labels'?" in line and "create it with" not in line
    assert "did you mean 'main'?" in cli.fails("log", "digits", "mian")
    assert "did you mean 'fix-labels'?" in cli.fails("branch", "delete", "digits", "fix-label")
    # Commands, at the top and in a group, worded the same way (exit 2: a usage error).
    proc = cli.run("lgo", "digits")
    assert proc.returncode == 2 and proc.stderr.strip() == "s2: error: no command 'lgo' in s2; did you mean 'log'?"
    proc = cli.run("dataset", "delet", "digits")
    assert proc.returncode == 2 and "no command 'delet' in s2 dataset; did you mean 'delete'?" in proc.stderr
    assert "see: s2 --help" in cli.fails("zzzzqq")


def test_tags_and_branches_are_listed_and_deleted(cli, tmp_path):
    ids = _merged(cli, tmp_path)
    cli.ok("tag", "ds", "v1", "HEAD")
    cli.ok("tag", "ds", "v0", "HEAD~2")
    for args in (("tag", "list", "ds"), ("tag", "ds")):
        proc = cli.run(*args)
        assert proc.returncode == 0 and proc.stderr.splitlines()[0].split() == ["TAG", "COMMIT"]  # the header: not data on a pipe
        assert proc.stdout.splitlines() == [f"v0\t{ids['first'][:12]}", f"v1\t{ids['merge'][:12]}"]
    assert json.loads(cli.ok("tag", "list", "ds", "--json")) == [
        {"name": "v0", "commit": ids["first"]},
        {"name": "v1", "commit": ids["merge"]},
    ]
    assert cli.run("branch", "list", "ds").stderr.splitlines()[0].split() == ["BRANCH", "HEAD"]
    assert [line.split("\t")[0] for line in cli.ok("branch", "ds").splitlines()] == ["fix", "main"]
    # Deleting a tag leaves its commit.
    assert f"deleted tag v1 (was {ids['merge'][:12]})" in cli.run("tag", "delete", "ds", "v1").stderr
    assert "no tag 'v1'" in cli.fails("tag", "delete", "ds", "v1")
    assert [t["name"] for t in json.loads(cli.ok("tag", "list", "ds", "--json"))] == ["v0"]
    # The default branch and protected branches are refused, with the reason.
    assert "default branch" in cli.fails("branch", "delete", "ds", "main")
    cli.ok("protect", "ds", "fix")
    assert "protected" in cli.fails("branch", "delete", "ds", "fix") and "s2 protect ds fix --off" in cli.fails(
        "branch", "delete", "ds", "fix"
    )
    cli.ok("protect", "ds", "fix", "--off")
    # A branch with staged edits and a watch rule: both go with it; its commits stay reachable by id.
    cli.ok("label", "ds", "k2", "a", "--branch", "fix")
    proc = cli.run("branch", "delete", "ds", "fix")
    assert proc.returncode == 0, proc.stderr
    assert f"deleted branch fix (was {ids['side'][:12]}); dropped 1 staged edit(s)" in proc.stderr
    assert f"s2 branch ds fix --from {ids['side']}" in proc.stderr and proc.stdout == f"{ids['side']}\n"
    assert "no branch 'fix'" in cli.fails("status", "ds", "--branch", "fix")
    assert _at(cli, ids["side"]) == ids["side"]
    cli.ok("branch", "ds", "fix", "--from", ids["side"])  # the name is free again, and git's way back works
    assert json.loads(cli.ok("branch", "delete", "ds", "fix", "--json")) == {"name": "fix", "head": ids["side"], "dropped_staged": 0}
    audit = [(e["action"], e["target"]) for e in json.loads(cli.ok("audit", "--json"))]
    assert ("branch.delete", "ds/fix") in audit and ("tag.delete", "ds/v1") in audit


def test_deleting_a_dataset_asks_and_leaves_nothing_behind(cli, tmp_path):
    _merged(cli, tmp_path)
    cli.ok("tag", "ds", "v1", "HEAD")
    cli.ok("label", "ds", "k2", "a", "--branch", "fix")
    cli.ok("commit", "ds", "-m", "k2 is an a", "--branch", "fix")
    cli.ok("mr", "open", "ds", "--source", "fix", "--title", "k2 is an a")
    assert "open merge request !1" in cli.fails("branch", "delete", "ds", "fix")  # a branch a request works on stays
    cli.ok("dataset", "watch", "ds", "--branch", "main")
    cli.ok("train", "ds")  # a queued run (no worker here)
    cli.ok("review", "add", "ds", "k1", "--queue", "q")
    cli.ok("dataset", "create", "other", "--modality", "text", "--labels", "a,b")
    # Not at a terminal and no --yes: refused, nothing deleted.
    line = cli.fails("dataset", "delete", "ds")
    assert "--yes" in line and "cannot be undone" in line
    assert "ds" in [d["name"] for d in json.loads(cli.ok("dataset", "list", "--json"))]
    assert "did you mean 'ds'?" in cli.fails("dataset", "delete", "dss", "--yes")
    out = cli.run("dataset", "delete", "ds", "--yes").stderr
    assert out.startswith("deleted dataset ds: 6 commit(s), 2 branch(es), 1 tag(s), 1 run(s), 0 model(s)") and "s2 gc" in out
    assert [d["name"] for d in json.loads(cli.ok("dataset", "list", "--json"))] == ["other"]
    assert "no dataset named 'ds'" in cli.fails("log", "ds")
    # The name can be used again, from nothing: no commit, branch, tag, request or queue item of the old one shows.
    cli.ok("dataset", "create", "ds", "--modality", "text", "--labels", "a,b")
    assert len(json.loads(cli.ok("log", "ds", "--json"))) == 1
    assert "v1" not in cli.ok("tag", "list", "ds") and cli.ok("branch", "ds").split("\t")[0] == "main"
    assert json.loads(cli.ok("mr", "list", "ds", "--json")) == []
    assert json.loads(cli.ok("runs", "--json")) == [] and cli.ok("review", "list", "ds", "--queue", "q").strip() == ""
    assert "ds" in {e["target"].split("/")[0] for e in json.loads(cli.ok("audit", "--json")) if e["action"] == "dataset.delete"}
    # The store stays consistent: every blob still hashes (the old dataset's wait for gc).
    cli.ok("fsck")
    cli.ok("gc", "--dry-run")


def test_a_run_no_worker_listens_for_is_said_at_once_and_ctrl_c_says_it_goes_on(cli, tmp_path):
    cli.ok("dataset", "create", "ds", "--modality", "text", "--labels", "a,b")
    cli.ok("import", "ds", write_csv(tmp_path / "one.csv", [[f"k{i}", "ab"[i % 2], f"text {i}"] for i in range(20)]))
    proc = cli.run("train", "ds")
    assert proc.returncode == 0, proc.stderr
    assert "no worker is listening on queue 'cpu'" in proc.stderr and "s2 worker --queue cpu" in proc.stderr
    proc = cli.run("dataset", "watch", "ds", "--branch", "main")
    assert proc.returncode == 0 and "no worker is listening on queue 'cpu'" in proc.stderr
    cli.ok("dataset", "watch", "ds", "--branch", "main", "--off")
    waiting = subprocess.Popen(
        [str(S2_BIN), "train", "ds", "--wait"],
        env=cli.env,
        cwd=cli.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_at_a_terminal,
    )
    deadline, seen = time.monotonic() + 60, ""
    while "no worker is listening" not in seen and time.monotonic() < deadline:
        seen += waiting.stderr.readline()
    assert "no worker is listening on queue 'cpu'" in seen, seen
    time.sleep(0.5)  # in the wait
    waiting.send_signal(signal.SIGINT)
    _, rest = waiting.communicate(timeout=30)
    assert waiting.returncode == 130, rest
    run_id = json.loads(cli.ok("runs", "--json"))[0]["id"]
    assert f"run {run_id} goes on" in rest and f"s2 cancel {run_id}" in rest
    assert json.loads(cli.ok("run", str(run_id), "--json"))["state"] == "queued"
    cli.ok("cancel", str(run_id))
