"""The CLI for scripts, through the real `s2` executable on the local store: --json and -q on every write, data on
stdout and messages on stderr, one JSON vocabulary with zoned timestamps, headers on every listing, export formats
from the output's name, and readable `s2 run` and `s2 compare`."""

import importlib
import json
import pkgutil

import click
import pyarrow.parquet as pq
import pytest

from tests.factories import write_csv

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # output rules: one store is enough
SERVICES = {"serve", "up", "worker"}  # long-running processes: no result to print
READS = {
    "audit",
    "blame",
    "branch list",
    "compare",
    "dataset list",
    "diff",
    "fsck",
    "imports",
    "labelstudio status",
    "labelstudio tasks",
    "log",
    "models",
    "mr list",
    "mr show",
    "lineage",
    "queue agreement",
    "queue neighbours",
    "queue show",
    "review list",
    "run",
    "runs",
    "show",
    "slice list",
    "status",
    "tag list",
    "user list",
    "user tokens",
}


def every_command() -> dict[str, click.Command]:
    """Every leaf command of `s2` by its path ("dataset create"), with every module of server.cli loaded."""
    import server.cli
    from server.cli.main import cli

    for module in pkgutil.iter_modules(server.cli.__path__):
        importlib.import_module(f"server.cli.{module.name}")

    def walk(group: click.Group, path: tuple[str, ...]):
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from walk(command, (*path, name))
            else:
                yield " ".join((*path, name)), command

    return dict(walk(cli, ()))


def quiet(cli, *args: object) -> str:
    """Run a write with -q: nothing on stderr, one id (or nothing) on stdout; returns it."""
    proc = cli.run(*args, "-q")
    assert proc.returncode == 0 and proc.stderr == "", (args, proc.stderr)
    assert len(proc.stdout.splitlines()) <= 1, (args, proc.stdout)
    return proc.stdout.strip()


def said(proc) -> tuple[str, str]:
    """(stdout, stderr) of a command that must have succeeded."""
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr


def seeded(cli, tmp_path, rows: int = 12) -> str:
    """Text dataset ds (labels a, b) with k00..k{rows-1}, k03 in the eval split; returns the import's commit."""
    cli.ok("dataset", "create", "ds", "--modality", "text", "--labels", "a,b")
    table = [[f"k{i:02d}", "ab"[i % 2], f"{'apple pie' if i % 2 == 0 else 'blue sky'} {i}", "eval" if i == 3 else ""] for i in range(rows)]
    return quiet(cli, "import", "ds", write_csv(tmp_path / "rows.csv", table, ("key", "label", "text", "split")))


def test_every_command_takes_json_and_every_write_takes_quiet():
    commands = every_command()
    assert READS <= set(commands) and SERVICES <= set(commands)
    for path, command in commands.items():
        options = {opt: p for p in command.params if isinstance(p, click.Option) for opt in p.opts + p.secondary_opts}
        if path not in SERVICES:
            assert "--json" in options, f"s2 {path} has no --json"
        if path not in SERVICES | READS:
            assert options.get("-q") is options.get("--quiet") is not None, f"s2 {path} has no -q/--quiet"
        assert "-q" not in options or options["-q"].name == "quiet", f"s2 {path} uses -q for --{options['-q'].name}"
        visible = {opt for opt, p in options.items() if not p.hidden}
        assert "--loglevel" not in visible, f"s2 {path}: the spelling is --log-level"
    assert {"--log-level", "--loglevel"} <= {o for p in commands["worker"].params for o in p.opts}  # the old one still works


@sqlite_only
def test_a_write_prints_its_id_on_stdout_its_summary_on_stderr_and_its_result_as_json(cli, tmp_path):
    made = cli.run("dataset", "create", "ds", "--modality", "text", "--labels", "a,b")
    assert said(made) == ("ds\n", "created dataset ds (text; labels a, b)\n")
    rows = write_csv(tmp_path / "rows.csv", [[f"k{i:02d}", "ab"[i % 2], f"text {i}"] for i in range(12)])
    out, err = said(cli.run("import", "ds", rows))
    head = out.strip()
    assert out == f"{head}\n" and len(head) == 64 and err == "imported 12 examples: 12 changed; 12 examples now\n"
    assert json.loads(cli.ok("import", "ds", rows, "--json")) == {"id": head, "examples": 12, "changes": 0, "rows": 12}
    assert quiet(cli, "import", "ds", rows) == head  # nothing to commit: the head, and not a word

    staged = json.loads(cli.ok("label", "ds", "k01", "a", "--json"))
    assert [(s["key"], s["label"], s["author"]) for s in staged] == [("k01", "a", "tester@example.com")]
    assert quiet(cli, "label", "ds", "k02", "b") == ""  # staging makes nothing with an id
    assert [(s["key"], s["remove"]) for s in json.loads(cli.ok("rm", "ds", "k11", "--json"))] == [("k11", True)]
    assert json.loads(cli.ok("unstage", "ds", "k11", "--json")) == {"dropped": 1, "kept": 0}
    commit = json.loads(cli.ok("commit", "ds", "-m", "two", "--json"))
    assert (commit["parents"], commit["message"], commit["changes"], commit["dropped"]) == ([head], "two", 2, 0)
    assert commit["created_at"].endswith("Z")  # SQLite keeps no zone: s2 stores UTC and says so
    assert json.loads(cli.ok("log", "ds", "-n", "1", "--json"))[0] == {k: v for k, v in commit.items() if k != "dropped"}

    assert quiet(cli, "tag", "ds", "v1", "HEAD~1") == head
    assert quiet(cli, "branch", "ds", "f") == commit["id"]
    cli.ok("label", "ds", "k03", "a", "--branch", "f")
    on_f = quiet(cli, "commit", "ds", "-m", "k03 is an a", "--branch", "f")
    merged = json.loads(cli.ok("merge", "ds", "f", "--into", "main", "--json"))
    assert (merged["outcome"], merged["id"], merged["head"]) == ("fast-forward", on_f, on_f)
    assert quiet(cli, "export", "ds", "v1", tmp_path / "v1.jsonl") == head
    assert quiet(cli, "branch", "delete", "ds", "f") == on_f
    assert quiet(cli, "tag", "delete", "ds", "v1") == head
    protected = json.loads(cli.ok("protect", "ds", "main", "--json"))
    assert (protected["name"], protected["protected"]) == ("main", True)

    pinned = cli.run("dataset", "pin-eval", "ds", "golden", "--rev", head, "--all")
    assert said(pinned)[0] == f"{head}\n" and f"pinned eval set golden: ds@{head[:12]}" in pinned.stderr
    assert json.loads(cli.ok("dataset", "pin-eval", "ds", "golden", "--rev", "main", "--json"))["unscored"] == []
    assert json.loads(cli.ok("dataset", "watch", "ds", "--json", "--branch", "main"))["spec"]["template"] == "ngram_bag"
    assert quiet(cli, "dataset", "watch", "ds", "--branch", "main", "--off") == ""
    run = cli.run("train", "ds", "-q")  # no worker: the warning still says so, on stderr
    assert run.stdout.strip().isdigit() and run.stderr.startswith("s2: warning: no worker is listening")
    cancelled = json.loads(cli.ok("cancel", run.stdout.strip(), "--json"))
    assert (cancelled["id"], cancelled["state"], cancelled["created_at"][-1]) == (int(run.stdout), "cancelled", "Z")

    token = quiet(cli, "user", "add", "lou", "--role", "labeler")
    issued = json.loads(cli.ok("user", "token", "lou", "--json"))
    assert token.startswith("s2_") and issued["token"].startswith("s2_") and issued["user"] == "lou"
    assert quiet(cli, "user", "revoke", str(issued["id"])) == str(issued["id"])
    assert json.loads(cli.ok("review", "add", "ds", "k01", "-Q", "suspects", "--json")) == {"queue": "suspects", "added": 1, "updated": 0}
    assert quiet(cli, "gc") == ""


@sqlite_only
def test_every_listing_has_a_header_on_stderr_when_piped(cli, tmp_path):
    seeded(cli, tmp_path)
    cli.ok("tag", "ds", "v1", "main")
    cli.ok("label", "ds", "k01", "a")
    cli.ok("user", "add", "lou", "--role", "labeler", "-q")
    cli.ok("review", "add", "ds", "k01", "k02")
    cli.ok("train", "ds")
    listings = {
        ("dataset", "list"): (["NAME", "MODALITY", "LABELS"], 1),
        ("branch", "ds"): (["BRANCH", "HEAD"], 1),
        ("tag", "list", "ds"): (["TAG", "COMMIT"], 1),
        ("log", "ds"): (["COMMIT", "DATE", "(UTC)", "AUTHOR", "CHANGES", "EXAMPLES", "MESSAGE"], 2),
        ("blame", "ds", "k01"): (["COMMIT", "DATE", "(UTC)", "AUTHOR", "CHANGE", "MESSAGE"], 1),
        ("status", "ds"): (["EDIT", "KEY", "LABEL", "AUTHOR"], 1),
        ("imports", "ds"): (["ID", "STATE", "ROWS", "CHANGES", "COMMIT", "OR", "ERROR", "SOURCE"], 1),
        ("runs",): (["RUN", "STATE", "DATASET@COMMIT", "TEMPLATE", "MODEL", "ERROR"], 1),
        ("models", "ds"): (["MODEL", "STAGE", "COMMIT", "TEMPLATE", "ACCURACY", "MACRO-F1"], 0),
        ("review", "list", "ds"): (["SCORE", "KEY", "REASON"], 2),
        ("user", "list"): (["USER", "ROLE", "DATASETS"], 1),
        ("user", "tokens", "lou"): (["ID", "PREFIX", "STATE", "LABEL"], 1),
        ("audit", "-n", "3"): (["DATE", "(UTC)", "ACTOR", "ACTION", "TARGET"], 3),
    }
    for args, (columns, count) in listings.items():
        out, err = said(cli.run(*args))
        assert err.splitlines()[0].split() == columns, (args, err)
        assert len(out.splitlines()) == count and all(
            len(line.split("\t")) == len(err.splitlines()[0].split("\t")) for line in out.splitlines()
        ), (
            args,
            out,
        )
    assert json.loads(cli.ok("runs", "--json"))[0]["created_at"].endswith("Z")
    assert all(e["at"].endswith("Z") for e in json.loads(cli.ok("audit", "--json")))


def test_export_takes_its_format_from_the_output_name_and_rows_carry_their_split(cli, tmp_path):
    head = seeded(cli, tmp_path, rows=4)
    out, err = said(cli.run("export", "ds", "main", tmp_path / "rows.jsonl"))
    assert out == f"{head}\n" and err.endswith("(jsonl)\n")
    records = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [(r["key"], r["split"]) for r in records] == [("k00", None), ("k01", None), ("k02", None), ("k03", "eval")]
    assert said(cli.run("export", "ds", "main", tmp_path / "rows.parquet"))[1].endswith("(parquet)\n")
    assert pq.read_table(tmp_path / "rows.parquet").column("split").to_pylist() == [None, None, None, "eval"]
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "new"):
        assert said(cli.run("export", "ds", "main", folder))[1].endswith("(imagefolder)\n")
        assert sorted(p.name for p in folder.iterdir()) == ["a", "b"]
    line = cli.fails("export", "ds", "main", tmp_path / "out.csv")
    assert "cannot tell the export format from" in line and "'.csv'" in line and "--format" in line
    assert not (tmp_path / "out.csv").exists()
    assert json.loads(cli.ok("export", "ds", "main", tmp_path / "x.data", "--format", "jsonl", "--json"))["format"] == "jsonl"


@sqlite_only
def test_run_and_compare_read_as_text_and_pin_eval_names_the_models_it_does_not_score(cli, tmp_path, workers):
    seeded(cli, tmp_path, rows=40)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"epochs": 2, "batch_size": 16}))
    workers()
    first = cli.ok("train", "ds", "--spec", spec, "--wait", "-q").strip()  # stdout: the model's id alone
    pinned = cli.run("dataset", "pin-eval", "ds", "golden", "--rev", "main", "--all")
    assert f"1 existing model(s) are not scored on it ({first})" in said(pinned)[1] and "s2 train ds --rev REV" in pinned.stderr
    cli.ok("label", "ds", "k00", "b")
    cli.ok("commit", "ds", "-m", "k00 is a b")
    second = json.loads(cli.ok("train", "ds", "--spec", spec, "--wait", "--json"))
    assert (first, second["id"]) == ("ds@1", "ds@2") and "golden" in second["eval_sets"]
    assert json.loads(cli.ok("dataset", "pin-eval", "ds", "golden", "--rev", "main", "--all", "--json"))["unscored"] == [first]

    text = cli.ok("run", str(second["run"]))
    lines = text.splitlines()
    assert lines[0] == f"run {second['run']}: succeeded"
    fields = dict(
        line.split(None, 1) for line in lines[1:] if line.startswith("  ") and not line.startswith("   ") and len(line.split()) > 1
    )
    assert fields["data"].startswith(f"ds@{second['dataset_commit'][:12]}") and fields["spec"].startswith(
        "ngram_bag (epochs 2, batch_size 16"
    )
    assert fields["model"].startswith("ds@2") and fields["finished"].endswith("UTC")
    assert "epoch 2/2" in fields["progress"] and "points" not in text  # the curve is --json's
    assert json.loads(cli.ok("run", str(second["run"]), "--json"))["progress"]["points"]

    compared = cli.ok("compare", first, "ds@2")
    lines = compared.splitlines()
    assert lines[0].startswith("ds@1 -> ds@2 on eval set 'eval'")
    metrics = {line.split()[0]: line.split()[1:] for line in lines[2:5]}
    assert lines[1].split() == ["METRIC", "A", "B", "DELTA"] and set(metrics) == {"accuracy", "macro_f1", "loss"}
    assert all(len(v.split(".")[1]) == 4 for row in metrics.values() for v in row if v != "-")  # rounded to 4 places
    assert lines[5] == "per class:" and lines[6].split() == ["CLASS", "PRECISION", "RECALL", "F1", "F1", "DELTA"]
    assert [line.split()[0] for line in lines[7:9]] == ["a", "b"] and " -> " in lines[7]
    assert "flipped examples:" in compared and compared.splitlines()[-1].startswith("data: 0 added, 0 removed, 1 relabeled")
    full = json.loads(cli.ok("compare", first, "ds@2", "--json"))
    assert set(full["per_class"]) == {"a", "b"} and full["data_diff"]["relabeled"] == [{"key": "k00", "from": "a", "to": "b"}]
