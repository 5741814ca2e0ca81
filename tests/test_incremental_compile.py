"""Incremental compile through the real `s2` executable and a real worker: warm starts, and the same build twice is free."""

import json
import shutil

import pytest

from tests.factories import write_digits_folder, write_topics_csv
from tests.test_training import DIGITS_SPEC, make_digits, runs, spec_file, wait_until

production = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
SMALL = {**DIGITS_SPEC, "epochs": 4, "image_size": 8}
TEXT = {"batch_size": 32, "epochs": 6}


def train_json(cli, *args) -> tuple[dict, str]:
    """`s2 train ... --json`: the JSON on stdout and what was said on stderr."""
    proc = cli.run("train", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


@pytest.mark.slow(minutes=1.5)
@production
def test_warm_start_reuse_and_force_through_the_cli(cli, workers, tmp_path):
    make_digits(cli, tmp_path, limit=500)
    workers()
    small, one_epoch = spec_file(tmp_path, SMALL), spec_file(tmp_path, {**SMALL, "epochs": 1}, "one.json")
    first, _ = train_json(cli, "digits", "--spec", small, "--wait")
    assert first["id"] == "digits@1" and first["parent_model"] is None
    keys = json.loads(cli.ok("diff", "digits", "main~1", "main", "--json"))["added"][:5]  # 1% of the 500
    edits = tmp_path / "edits.csv"
    edits.write_text("key,label\n" + "".join(f"{k},{(int(k.split('/')[0]) + 1) % 10}\n" for k in keys))
    cli.ok("label", "digits", "--file", edits)
    fix = cli.last_line("commit", "digits", "-m", "relabel 1%")

    # --warm-start: the commit's model starts from its parent commit's; after one epoch it is as good as that model
    warm, said = train_json(cli, "digits", "--spec", one_epoch, "--warm-start", "--wait")
    assert warm["id"] == "digits@2" and warm["dataset_commit"] == fix and warm["parent_model"] == "digits@1"
    assert "run 2: warm start from digits@1" in said and warm["spec"]["warm_start"] is True
    assert warm["metrics"]["accuracy"] > first["metrics"]["accuracy"] - 0.05
    run = json.loads(cli.ok("run", str(warm["run"]), "--json"))
    assert (run["parent_model"], run["scratch_reason"], run["reused"]) == ("digits@1", None, False)

    # the same build again is answered at once by digits@2, with or without --wait; --force trains it again
    again, said = train_json(cli, "digits", "--spec", one_epoch, "--warm-start")
    assert (again["reused"], again["state"], again["model"], again["worker_host"]) == (True, "succeeded", "digits@2", None)
    assert "s2: model digits@2 already built from this commit and spec; --force trains again" in said
    assert train_json(cli, "digits", "--spec", one_epoch, "--warm-start", "--wait")[0]["id"] == "digits@2"
    forced, said = train_json(cli, "digits", "--spec", one_epoch, "--warm-start", "--wait", "--force")
    assert forced["id"] == "digits@3" and forced["parent_model"] == "digits@1" and "already built" not in said
    assert forced["weights"] == warm["weights"]  # it was the same build: the same weights, byte for byte
    assert [r["reused"] for r in runs(cli)] == [False, True, True, False, False]

    # one epoch from scratch is far behind the warm start's one epoch
    scratch, _ = train_json(cli, "digits", "--spec", one_epoch, "--wait")
    assert scratch["id"] == "digits@4" and scratch["parent_model"] is None
    assert scratch["metrics"]["accuracy"] < warm["metrics"]["accuracy"] - 0.2

    # a model with another label set cannot start it: the run trains from scratch and records why
    folder = write_digits_folder(tmp_path / "five", limit=150)
    for digit in "56789":
        shutil.rmtree(folder / digit)
    cli.ok("dataset", "create", "five", "--modality", "image", "--labels", "0,1,2,3,4")
    cli.ok("import", "five", folder)
    assert train_json(cli, "five", "--spec", one_epoch, "--wait")[0]["id"] == "five@1"
    other, said = train_json(cli, "digits", "--spec", one_epoch, "--from-model", "five@1", "--wait")
    assert other["id"] == "digits@5" and other["parent_model"] is None
    reason = json.loads(cli.ok("run", str(other["run"]), "--json"))["scratch_reason"]
    assert reason.startswith("no compatible parent model: five@1 cannot start it: its labels (0, 1, 2, 3, 4) are not")
    assert f"trained from scratch: {reason}" in said
    assert "no model digits@9" in cli.fails("train", "digits", "--from-model", "digits@9")


@production
def test_a_watched_branch_warm_starts_each_commit_and_a_merge_reuses_the_build(cli, workers, tmp_path):
    cli.ok("dataset", "create", "topics", "--modality", "text", "--labels", "sport,food,tech")
    cli.ok("import", "topics", write_topics_csv(tmp_path / "t.csv"))
    spec = spec_file(tmp_path, TEXT)
    cli.ok("dataset", "watch", "topics", "--branch", "main", "--spec", spec, "--warm-start")
    workers()

    def succeeded(n: int) -> list[dict]:
        return wait_until(lambda: len(done := [r for r in runs(cli) if r["state"] == "succeeded"]) == n and done, what=f"{n} runs")

    cli.ok("label", "topics", "t0000", "tech")
    cli.ok("commit", "topics", "-m", "first")
    [first] = succeeded(1)  # the branch's first model has no parent to start from
    assert first["parent_model"] is None and first["scratch_reason"].startswith(
        "no compatible parent model: no ngram_bag model of 'topics' on "
    )
    cli.ok("label", "topics", "t0001", "sport")
    second_commit = cli.last_line("commit", "topics", "-m", "second")
    second = succeeded(2)[0]
    assert (second["dataset_commit"], second["parent_model"], second["model"]) == (second_commit, "topics@1", "topics@2")

    # a branch watched with the same rule builds its commit; merged into main, that commit is not built twice
    cli.ok("branch", "topics", "dev")
    cli.ok("dataset", "watch", "topics", "--branch", "dev", "--spec", spec, "--warm-start")
    cli.ok("label", "topics", "t0002", "food", "--branch", "dev")
    dev_commit = cli.last_line("commit", "topics", "-m", "on dev", "--branch", "dev")
    dev = succeeded(3)[0]
    assert (dev["branch"], dev["parent_model"], dev["model"]) == ("dev", "topics@2", "topics@3")
    cli.ok("merge", "topics", "dev", "--into", "main")
    merged = runs(cli)[0]  # answered within the merge's transaction: no wait
    assert (merged["branch"], merged["dataset_commit"], merged["state"]) == ("main", dev_commit, "succeeded")
    assert (merged["reused"], merged["model"], merged["parent_model"]) == (True, "topics@3", "topics@2")
    assert [m["id"] for m in json.loads(cli.ok("models", "topics", "--json"))] == ["topics@3", "topics@2", "topics@1"]
