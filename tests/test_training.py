"""Every commit compiles: real `s2 worker` processes train real models from the CLI, over Redis and PostgreSQL."""

import json
import os
import signal
import time

import pytest

from tests.factories import write_digits_folder, write_topics_csv, write_wine_csv

DIGITS = list("0123456789")
DIGITS_SPEC = {"epochs": 6, "image_size": 16, "image_channels": 1, "batch_size": 32, "learning_rate": 0.003}
TEXT_SPEC = {"epochs": 8, "batch_size": 32, "learning_rate": 0.01}
production = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


def runs(cli) -> list[dict]:
    return json.loads(cli.ok("runs", "--json"))


def wait_until(predicate, timeout: float = 120, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def make_digits(cli, tmp_path, limit=None) -> str:
    cli.ok("dataset", "create", "digits", "--modality", "image", "--labels", ",".join(DIGITS))
    return cli.last_line("import", "digits", write_digits_folder(tmp_path / "digits", limit))


def spec_file(tmp_path, spec: dict, name: str = "spec.json"):
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return path


@pytest.mark.slow(minutes=1.5)
@production
def test_train_digits_on_a_worker_gives_a_model_tied_to_the_commit(cli, workers, tmp_path):
    head = make_digits(cli, tmp_path)
    workers()
    proc = cli.run("train", "digits", "--spec", spec_file(tmp_path, DIGITS_SPEC), "--wait", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "epoch" in proc.stderr  # live progress while waiting
    model = json.loads(proc.stdout)
    assert model["id"] == "digits@1" and model["dataset_commit"] == head
    assert model["metrics"]["accuracy"] > 0.9
    assert set(model["metrics"]["per_class"]) == set(DIGITS)
    assert set(model["metrics"]["per_class"]["3"]) >= {"precision", "recall", "f1"}
    assert 0 < model["metrics"]["macro_f1"] <= 1
    [run] = runs(cli)
    assert run["state"] == "succeeded" and run["model"] == "digits@1" and run["worker_host"] and run["device"]
    listed = json.loads(cli.ok("models", "digits", "--json"))
    assert [m["id"] for m in listed] == ["digits@1"]
    # Same commit + spec + seed on CPU: the same weights, byte for byte (--force: else digits@1 is the answer).
    again = json.loads(cli.ok("train", "digits", "--spec", spec_file(tmp_path, DIGITS_SPEC), "--wait", "--json", "--force"))
    assert again["id"] == "digits@2" and again["weights"] == model["weights"] and again["spec_hash"] == model["spec_hash"]
    cli.ok("fsck")


@production
def test_watched_branch_trains_every_commit_coalescing_quick_ones(cli, workers, tmp_path):
    cli.ok("dataset", "create", "topics", "--modality", "text", "--labels", "sport,food,tech")
    cli.ok("import", "topics", write_topics_csv(tmp_path / "t.csv"))
    cli.ok("dataset", "watch", "topics", "--branch", "main", "--spec", spec_file(tmp_path, TEXT_SPEC))
    commits = []
    for key, label in (("t0000", "food"), ("t0001", "tech"), ("t0002", "sport")):
        cli.ok("label", "topics", key, label)
        commits.append(cli.last_line("commit", "topics", "-m", f"relabel {key}"))
    [run] = runs(cli)  # no worker yet: the three commits wait in one run
    assert run["state"] == "queued" and run["covers"] == commits and run["dataset_commit"] == commits[-1]
    workers()
    done = wait_until(lambda: [r for r in runs(cli) if r["state"] == "succeeded"], what="the coalesced run")
    assert done[0]["dataset_commit"] == commits[-1]
    cli.ok("label", "topics", "t0003", "food")
    later = cli.last_line("commit", "topics", "-m", "one more")
    wait_until(lambda: len([r for r in runs(cli) if r["state"] == "succeeded"]) == 2, what="the next commit's run")
    models = json.loads(cli.ok("models", "topics", "--json"))
    assert [m["dataset_commit"] for m in models] == [later, commits[-1]]
    assert models[0]["metrics"]["accuracy"] > 0.9


@production
def test_a_worker_killed_mid_run_leaves_the_run_retried_not_stuck(cli, workers, tmp_path, monkeypatch):
    monkeypatch.setenv("S2_RUN_STALE_AFTER_S", "3")
    make_digits(cli, tmp_path)
    first = workers(S2_RUN_STALE_AFTER_S="3")
    cli.ok("train", "digits", "--spec", spec_file(tmp_path, {**DIGITS_SPEC, "epochs": 40}))
    wait_until(lambda: (runs(cli)[0].get("progress") or {}).get("step", 0) > 0, what="training to start")
    first.stop(signal.SIGKILL)
    assert runs(cli)[0]["state"] == "running"  # nobody knows yet
    second = workers(S2_RUN_STALE_AFTER_S="3")
    wait_until(lambda: runs(cli)[0]["attempt"] == 2, what="the lost run to be taken up again", timeout=60)
    cli.ok("cancel", str(runs(cli)[0]["id"]))  # no need to train 40 epochs again
    final = wait_until(lambda: runs(cli)[0]["state"] in ("cancelled", "succeeded") and runs(cli)[0], what="the retried run to end")
    assert final["state"] == "cancelled" and "stopped during attempt 1" in (final["error"] or "")
    assert json.loads(cli.ok("models", "digits", "--json")) == []  # never a half-written model
    assert "retried" in second.output()  # the second worker's sweep took the run up


def _children(pid: int) -> list[int]:
    from pathlib import Path

    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.slow(minutes=1)
@production
def test_a_killed_training_child_is_retried_while_its_parent_worker_lives_on(cli, workers, tmp_path, monkeypatch):
    # --isolate (multi-GPU hosts): the run trains in a child; if only the child dies (OOM killer, a
    # segfault), the parent keeps beating as a worker, but the run must not stay "running" forever.
    monkeypatch.setenv("S2_RUN_STALE_AFTER_S", "3")
    make_digits(cli, tmp_path, limit=600)
    worker = workers(args=("--isolate",), S2_RUN_STALE_AFTER_S="3")
    cli.ok("train", "digits", "--spec", spec_file(tmp_path, {**DIGITS_SPEC, "epochs": 400}))
    wait_until(lambda: (runs(cli)[0].get("progress") or {}).get("step", 0) > 0, what="training to start")
    [child] = _children(worker.proc.pid)
    os.kill(child, signal.SIGKILL)
    retried = wait_until(lambda: runs(cli)[0]["attempt"] == 2 and runs(cli)[0], what="the lost run to be retried", timeout=60)
    assert "stopped during attempt 1" in retried["error"]
    assert worker.proc.poll() is None  # the parent lived on and took the run up again itself
    cli.ok("cancel", str(retried["id"]))
    final = wait_until(lambda: runs(cli)[0]["state"] in ("cancelled", "succeeded", "failed") and runs(cli)[0], what="the run to end")
    assert final["state"] == "cancelled"
    assert json.loads(cli.ok("models", "digits", "--json")) == []


@production
def test_a_training_that_raises_is_failed_with_its_log_and_the_next_commit_trains(cli, workers, tmp_path, s2env, monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("S2_INLINE_MAX_BYTES", "0")  # texts as blob files, so there is one to damage

    cli.ok("dataset", "create", "topics", "--modality", "text", "--labels", "sport,food,tech")
    cli.ok("import", "topics", write_topics_csv(tmp_path / "t.csv"))
    broken = json.loads(cli.ok("show", "topics", "t0005"))["input"]
    blob = Path(s2env["S2_HOME"]) / "blobs" / broken[:2] / broken[2:]
    blob.chmod(0o644)
    blob.write_text("tampered")
    cli.ok("dataset", "watch", "topics", "--branch", "main", "--spec", spec_file(tmp_path, TEXT_SPEC))
    workers()
    cli.ok("label", "topics", "t0001", "sport")
    cli.ok("commit", "topics", "-m", "trigger")
    failed = wait_until(lambda: [r for r in runs(cli) if r["state"] == "failed"], what="the run to fail")[0]
    assert broken in failed["error"] and "corrupt" in failed["error"]
    assert failed["log_tail"]
    cli.ok("rm", "topics", "t0005")
    cli.ok("commit", "topics", "-m", "drop the damaged example")
    wait_until(lambda: [r for r in runs(cli) if r["state"] == "succeeded"], what="the next commit to train")


@production
def test_cancel_a_queued_and_a_running_run(cli, workers, tmp_path):
    make_digits(cli, tmp_path, limit=600)
    queued = json.loads(cli.ok("train", "digits", "--json"))
    assert cli.run("cancel", str(queued["id"])).stderr.strip().endswith("cancelled")
    workers()
    running = json.loads(cli.ok("train", "digits", "--json", "--spec", spec_file(tmp_path, {**DIGITS_SPEC, "epochs": 200})))
    wait_until(lambda: next(r for r in runs(cli) if r["id"] == running["id"])["state"] == "running", what="the run to start")
    cli.ok("cancel", str(running["id"]))
    wait_until(lambda: next(r for r in runs(cli) if r["id"] == running["id"])["state"] == "cancelled", what="the run to stop", timeout=60)
    assert "already cancelled" in cli.fails("cancel", str(running["id"]))


def test_bad_training_requests_are_refused_at_submission(cli, tmp_path):
    cli.ok("dataset", "create", "topics", "--modality", "text", "--labels", "sport,food,tech")
    assert "has no examples" in cli.fails("train", "topics")
    one_class = tmp_path / "one.csv"
    one_class.write_text("key,label,text\na,food,bread\nb,food,cheese\nc,,unlabeled\n")
    cli.ok("import", "topics", one_class)
    assert "1 labeled class(es)" in cli.fails("train", "topics")
    cli.ok("import", "topics", write_topics_csv(tmp_path / "t.csv"))
    assert "template 'cnn_small' is for image data, not text" in cli.fails(
        "train", "topics", "--spec", spec_file(tmp_path, {"template": "cnn_small"})
    )
    assert "unknown template 'gpt9'" in cli.fails("train", "topics", "--spec", spec_file(tmp_path, {"template": "gpt9"}))
    assert "'epohcs'" in cli.fails("train", "topics", "--spec", spec_file(tmp_path, {"epohcs": 3}))
    assert "no worker with a GPU" in cli.fails("train", "topics", "--spec", spec_file(tmp_path, {"accelerator": "gpu"}))
    assert "num_nodes 2" in cli.fails("train", "topics", "--spec", spec_file(tmp_path, {"num_nodes": 2}))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert "not valid JSON" in cli.fails("train", "topics", "--spec", bad)
    # A watch rule is a standing submission: the same checks, before any commit depends on it.
    assert "no worker with a GPU" in cli.fails(
        "dataset", "watch", "topics", "--branch", "main", "--spec", spec_file(tmp_path, {"accelerator": "gpu"})
    )
    assert "'epohcs'" in cli.fails("dataset", "watch", "topics", "--branch", "main", "--spec", spec_file(tmp_path, {"epohcs": 3}))
    cli.ok("label", "topics", "t0001", "sport")
    cli.ok("commit", "topics", "-m", "no watch rule was made, so nothing trains")
    # An eval set from another dataset must be data of the same kind with the same labels.
    cli.ok("dataset", "create", "tabular", "--modality", "tabular", "--labels", "sport,food,tech")
    assert "holds tabular data" in cli.fails("dataset", "pin-eval", "topics", "g", "--rev", "main", "--from-dataset", "tabular")
    cli.ok("dataset", "create", "other", "--modality", "text", "--labels", "sport,food")
    assert "same label set" in cli.fails("dataset", "pin-eval", "topics", "g", "--rev", "main", "--from-dataset", "other")
    assert runs(cli) == []


@pytest.mark.slow(minutes=2)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("broker_url", ["filesystem"], indirect=True)
def test_embedded_default_trains_text_and_tabular(cli, workers, tmp_path):
    cli.ok("dataset", "create", "wine", "--modality", "tabular", "--labels", "class_0,class_1,class_2")
    cli.ok("import", "wine", write_wine_csv(tmp_path / "wine.csv"))
    cli.ok("dataset", "create", "topics", "--modality", "text", "--labels", "sport,food,tech")
    cli.ok("import", "topics", write_topics_csv(tmp_path / "t.csv"))
    worker = workers(args=("--isolate",))  # each run in a fresh child process, as on multi-GPU hosts
    wine = json.loads(
        cli.ok("train", "wine", "--wait", "--json", "--spec", spec_file(tmp_path, {"epochs": 40, "batch_size": 16, "learning_rate": 0.01}))
    )
    assert wine["metrics"]["accuracy"] > 0.85 and wine["template"] == "mlp"
    topics = json.loads(cli.ok("train", "topics", "--wait", "--json", "--spec", spec_file(tmp_path, TEXT_SPEC)))
    assert topics["metrics"]["accuracy"] > 0.9 and topics["template"] == "ngram_bag"
    assert "a fresh process per run" in worker.output()


@pytest.mark.slow(minutes=1)
@production
def test_compare_shows_what_changed_and_promotion_refuses_a_regression(cli, workers, tmp_path):
    from trainer.data import assign_split

    make_digits(cli, tmp_path, limit=700)
    cli.ok("dataset", "pin-eval", "digits", "holdout", "--rev", "main")
    workers()
    good = json.loads(cli.ok("train", "digits", "--wait", "--json", "--spec", spec_file(tmp_path, {**DIGITS_SPEC, "epochs": 10})))
    assert set(good["eval_sets"]) == {"eval", "holdout"}
    table = json.loads(cli.ok("diff", "digits", "main~1", "main", "--json"))["added"]
    held_out = [k for k in table if assign_split(k, None, 0.2) == "eval"][:5]
    edits = tmp_path / "edits.csv"
    edits.write_text("key,label\n" + "".join(f"{k},{(int(k.split('/')[0]) + 1) % 10}\n" for k in held_out))
    cli.ok("label", "digits", "--file", edits)
    relabel = cli.last_line("commit", "digits", "-m", "relabel five held-out digits")
    bad = json.loads(
        cli.ok("train", "digits", "--wait", "--json", "--spec", spec_file(tmp_path, {**DIGITS_SPEC, "epochs": 1, "learning_rate": 1e-5}))
    )
    assert bad["dataset_commit"] == relabel and bad["metrics"]["accuracy"] < good["metrics"]["accuracy"]
    report = json.loads(cli.ok("compare", good["id"], bad["id"], "--json"))
    assert report["metrics"]["accuracy"]["a"] == good["metrics"]["accuracy"]
    assert report["metrics"]["accuracy"]["delta"] == pytest.approx(bad["metrics"]["accuracy"] - good["metrics"]["accuracy"], abs=1e-6)
    assert set(report["per_class"]) == set(DIGITS) and set(report["per_class"]["0"]["f1"]) == {"a", "b", "delta"}
    assert len(report["confusion_matrix"]["a"]) == len(report["confusion_matrix"]["b"]) == 10
    assert sorted(r["key"] for r in report["data_diff"]["relabeled"]) == sorted(held_out)
    assert report["broken"] and set(report["fixed"]).isdisjoint(report["broken"])
    assert any(flip["key"] in held_out for flip in report["flips"])  # a relabeled key flipped: its history is shown
    for flip in report["flips"]:
        history = [h["commit"] for h in flip["label_history"]]
        assert history == ([relabel] if flip["key"] in held_out else [])
    assert "holdout" in report["eval_sets"]
    cli.ok("promote", good["id"], "--stage", "production")
    refusal = cli.fails("promote", bad["id"], "--stage", "production")
    assert f"worse than production {good['id']} on eval set 'holdout'" in refusal and "accuracy" in refusal
    assert json.loads(cli.ok("models", "digits", "--json"))[1]["stage"] == "production"
    cli.ok("promote", bad["id"], "--stage", "production", "--force")
    stages = {m["id"]: m["stage"] for m in json.loads(cli.ok("models", "digits", "--json"))}
    assert stages == {bad["id"]: "production", good["id"]: "archived"}


@pytest.mark.slow(minutes=1)
@production
def test_eval_set_from_another_dataset_coalescing_behind_a_running_run_and_the_promotion_threshold(cli, workers, tmp_path):
    cli.ok("dataset", "create", "topics", "--modality", "text", "--labels", "sport,food,tech")
    cli.ok("import", "topics", write_topics_csv(tmp_path / "t.csv"))
    cli.ok("dataset", "create", "golden", "--modality", "text", "--labels", "sport,food,tech")
    golden = cli.last_line("import", "golden", write_topics_csv(tmp_path / "g.csv", n=90, seed=7))
    assert f"golden@{golden[:12]}" in cli.run("dataset", "pin-eval", "topics", "golden", "--rev", "main", "--from-dataset", "golden").stderr
    workers()
    good = json.loads(cli.ok("train", "topics", "--wait", "--json", "--spec", spec_file(tmp_path, TEXT_SPEC)))
    assert good["metrics"]["accuracy"] > 0.9 and good["eval_sets"]["golden"]["accuracy"] > 0.9
    poor = json.loads(
        cli.ok("train", "topics", "--wait", "--json", "--spec", spec_file(tmp_path, {**TEXT_SPEC, "epochs": 1, "learning_rate": 1e-5}))
    )
    old, new = good["eval_sets"]["golden"]["accuracy"], poor["eval_sets"]["golden"]["accuracy"]
    assert old - new > 0.1
    cli.ok("promote", good["id"], "--stage", "production")
    refusal = cli.fails("promote", poor["id"], "--stage", "production")
    assert f"on eval set 'golden': accuracy {new:.4f} vs {old:.4f} (-{old - new:.4f}, more than the allowed 0.0100)" in refusal
    assert "now production" in cli.run("promote", poor["id"], "--stage", "production", "--max-regression", f"{old - new + 0.01:.4f}").stderr
    stages = {m["id"]: m["stage"] for m in json.loads(cli.ok("models", "topics", "--json"))}
    assert stages == {poor["id"]: "production", good["id"]: "archived"}

    # Commits that land while a run trains wait in one new run that trains the newest of them.
    cli.ok("dataset", "watch", "topics", "--branch", "main", "--spec", spec_file(tmp_path, {**TEXT_SPEC, "epochs": 2000}))
    cli.ok("label", "topics", "t0000", "tech")
    first = cli.last_line("commit", "topics", "-m", "first")
    busy = wait_until(lambda: [r for r in runs(cli) if r["covers"] == [first] and r["state"] == "running"], what="the first run to start")[
        0
    ]
    later = []
    for key in ("t0001", "t0002"):
        cli.ok("label", "topics", key, "sport")
        later.append(cli.last_line("commit", "topics", "-m", f"relabel {key}"))
    waiting = [r for r in runs(cli) if r["state"] == "queued"]
    assert [(r["covers"], r["dataset_commit"]) for r in waiting] == [(later, later[-1])]
    assert next(r for r in runs(cli) if r["id"] == busy["id"])["dataset_commit"] == first  # the running one is left alone
    cli.ok("cancel", str(waiting[0]["id"]))
    cli.ok("cancel", str(busy["id"]))
    wait_until(lambda: next(r for r in runs(cli) if r["id"] == busy["id"])["state"] == "cancelled", what="the first run to stop")
