"""Training benchmark: s2 against a plain PyTorch loop and against Celery itself, side by side in one run.

    .venv/bin/python bench/training.py [--quick] [--reps N] [--samples N] [--threads N] [--pg URL] [--keep]

On scikit-learn's digits (1,797 8x8 PNGs, imported as an ImageFolder) with PostgreSQL and Redis:
(a) the same cnn_small, data and hyper-parameters trained by a plain PyTorch loop vs through s2
    (`s2 train --wait`, and `s2 commit` on a watched branch) with a warm `s2 worker`: overhead in s and x,
    on the standard job (cnn_small at its defaults: 32x32 RGB, batch 64, 10 epochs; the ratio goal) and on a
    small one (16x16 gray, 6 epochs and 1: fits the fixed cost and the per-epoch cost);
(b) commit -> run `running` latency over Redis vs Celery's own send -> task start for a no-op task;
(c) samples/s of the trainer's data path vs the same tensors in memory vs cnn_small's training step.
Prints a markdown table with PASS/FAIL per goal; exit 0 when all pass, 1 otherwise, 2 when a command failed,
3 when other work kept the machine busy (the verdicts, marked *, are then not conclusive).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import torch
from _training_env import CommandFailed, World, busy_cpu_seconds, log, own_cpu_seconds, write_digits_folder
from _training_report import report

DS = "digits"
LABELS = [str(d) for d in range(10)]
SPEC = {
    "template": "cnn_small",
    "epochs": 6,
    "image_size": 16,
    "image_channels": 1,
    "batch_size": 32,
    "learning_rate": 0.003,
    "lr_schedule": "constant",  # the plain loop's
}  # tests/test_training.py's digits spec
LATENCY_SPEC = {**SPEC, "epochs": 1}  # (b) cancels each run as soon as it starts anyway
# The standard job of (a), and (c): cnn_small at what were its defaults when the goal was set (32x32 RGB, batch 64,
# 10 epochs, constant rate); the defaults now follow the data (trainer/defaults.py), so the job is spelled out.
DEFAULT_SPEC = {
    "template": "cnn_small",
    "image_size": 32,
    "image_channels": 3,
    "batch_size": 64,
    "epochs": 10,
    "learning_rate": 0.001,
    "lr_schedule": "constant",
    "early_stopping_patience": 0,
}
WATCHED, WATCHED_STD, LATENCY = "watched", "watched-std", "latency"
TERMINAL = ("succeeded", "failed", "cancelled")


def run_times(**where) -> dict | None:
    """The newest run matching where (column=value), with its timestamps as epoch seconds."""
    from sqlalchemy import select

    from server.db import session_scope
    from server.runs.models import ModelVersion, TrainingRun

    with session_scope() as db:
        query = select(TrainingRun).order_by(TrainingRun.id.desc()).limit(1)
        for column, value in where.items():
            query = query.where(getattr(TrainingRun, column) == value)
        run = db.scalar(query)
        if run is None:
            return None
        stamp = {
            name: getattr(run, name).timestamp() if getattr(run, name) else None
            for name in ("created_at", "dispatched_at", "started_at", "finished_at")
        }
        model = db.get(ModelVersion, run.model_version_id) if run.model_version_id else None
        return {
            "id": run.id,
            "state": run.state,
            "error": run.error,
            **stamp,
            "duration_s": model.duration_s if model else None,
            "accuracy": model.metrics["eval"]["accuracy"] if model else None,
        }


def wait_run(timeout: float, poll: float, done, **where) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = run_times(**where)
        if run is not None and done(run):
            return run
        time.sleep(poll)
    raise CommandFailed(f"timed out after {timeout:.0f}s waiting for the run of {where}: {run_times(**where)}")


def phases(t0: float, run: dict, end: float | None = None) -> dict:
    """Split one s2 training, t0 (command start) .. end, by the run's timestamps."""
    if run["state"] != "succeeded":
        raise CommandFailed(f"run {run['id']} {run['state']}: {run['error']}")
    worker = run["finished_at"] - run["started_at"]
    sent = run["dispatched_at"]  # None if the send failed and a worker's sweep re-sent it
    out = {
        "submit": run["created_at"] - t0,
        "send": sent - run["created_at"] if sent else None,
        "pickup": run["started_at"] - sent if sent else None,
        "worker_other": worker - run["duration_s"],
        "train": run["duration_s"],
        "registered": run["finished_at"] - t0,
        "accuracy": run["accuracy"],
    }
    out["total"] = (end - t0) if end is not None else out["registered"]
    out["tail"] = (end - run["finished_at"]) if end is not None else None
    return out


# -- (a) plain loop vs s2 ------------------------------------------------------------------
def s2_train(world: World, spec_file: Path) -> dict:
    t0 = time.time()
    model = json.loads(world.s2("train", DS, "--spec", spec_file, "--wait", "--json"))
    return phases(t0, run_times(id=model["run"]), end=time.time())


def s2_commit(world: World, items, rep: int, branch: str) -> dict:
    """Relabel one example on a watched branch and commit it; the phases until its model is registered."""
    key, _, target = items[rep]
    world.s2("label", DS, key, LABELS[(target + 1 + rep) % len(LABELS)], "--branch", branch)
    t0 = time.time()
    commit = world.s2("commit", DS, "-m", f"bench relabel {rep}", "--branch", branch).strip().splitlines()[-1]
    run = wait_run(600, 0.25, lambda r: r["state"] in TERMINAL, commit_id=commit, branch=branch)
    return phases(t0, run)


def bench_a(world: World, args, items, spec, spec_file: Path, short_file: Path, std_spec, std_file: Path) -> dict:
    """Per repetition: the standard job by the plain loop, `s2 train --wait` and a commit on its watched branch;
    then the small job at the spec's epochs and at 1 epoch (to split the overhead into a fixed part and a
    per-epoch part), and a relabel committed on the small job's watched branch."""
    from _training_ml import plain_train

    out: dict[str, list] = {
        "plain": [],
        "plain1": [],
        "train": [],
        "train1": [],
        "commit": [],
        "plain_std": [],
        "train_std": [],
        "commit_std": [],
    }
    for rep in range(args.reps):
        log(
            f"(a) rep {rep + 1}/{args.reps}: standard job ({std_spec.epochs} epochs at the defaults): plain loop, "
            f"s2 train --wait, s2 commit on '{WATCHED_STD}' ..."
        )
        out["plain_std"].append(plain_train(items, std_spec, len(LABELS)))
        out["train_std"].append(s2_train(world, std_file))
        out["commit_std"].append(s2_commit(world, items, args.reps + rep, WATCHED_STD))
        log(f"(a) rep {rep + 1}/{args.reps}: plain loop, {spec.epochs} epochs and 1 ...")
        out["plain"].append(plain_train(items, spec, len(LABELS)))
        out["plain1"].append(plain_train(items, spec, len(LABELS), epochs=1))
        log(f"(a) rep {rep + 1}/{args.reps}: s2 train --wait, {spec.epochs} epochs and 1 ...")
        out["train"].append(s2_train(world, spec_file))
        out["train1"].append(s2_train(world, short_file))
        log(f"(a) rep {rep + 1}/{args.reps}: s2 commit on watched branch '{WATCHED}' ...")
        out["commit"].append(s2_commit(world, items, rep, WATCHED))
    return out


# -- (b) commit -> running latency vs Celery ------------------------------------------------
def bench_b(world: World, args, items) -> dict:
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from server.blobs import default_blob_store
    from server.datasets.staging import commit_staged, stage_edits
    from server.db import run_in_transaction
    from server.errors import InvalidInput
    from server.runs.service import cancel_run

    blobs, mark = default_blob_store(), {}

    def stamp(session) -> None:  # first in line: the moment the commit's COMMIT returned, before its after-commit hooks
        mark.setdefault("t", time.time())

    event.listen(Session, "after_commit", stamp, insert=True)
    samples = []
    try:
        for i in range(args.samples + 1):  # the first is a warm-up
            key, _, target = items[100 + i]
            label = LABELS[(target + 1) % len(LABELS)]
            run_in_transaction(
                lambda db: stage_edits(db, blobs, dataset=DS, branch=LATENCY, edits=[(key, label, False)], author="bench@example.com")
            )
            mark.clear()
            made = run_in_transaction(
                lambda db: commit_staged(db, blobs, dataset=DS, branch=LATENCY, message=f"latency {i}", author="bench@example.com")
            )
            returned = time.time()
            run = wait_run(30, 0.005, lambda r: r["started_at"] is not None or r["state"] in TERMINAL, commit_id=made.id, branch=LATENCY)
            if run["started_at"] is None:
                raise CommandFailed(f"latency run {run['id']} ended {run['state']} without starting: {run['error']}")
            try:
                run_in_transaction(lambda db: cancel_run(db, run["id"]))
            except InvalidInput:  # it finished already (an epoch is short); the sample stands
                pass
            wait_run(60, 0.05, lambda r: r["state"] in TERMINAL, id=run["id"])
            if i:
                samples.append(
                    {
                        "commit": (run["started_at"] - mark["t"]) * 1e3,
                        "visible": (run["started_at"] - returned) * 1e3,
                        "send": (run["dispatched_at"] - mark["t"]) * 1e3 if run["dispatched_at"] else None,
                    }
                )
            time.sleep(0.3)  # let the worker go back to waiting on the queue
    finally:
        event.remove(Session, "after_commit", stamp)
    log(f"(b) Celery peer: no-op task x{args.samples} ...")
    world.start_peer_worker()
    import _training_peer as peer

    oneway, roundtrip = [], []
    for i in range(args.samples + 1):
        tag = uuid.uuid4().hex
        t0 = time.time()
        peer.sender.send_task(peer.TASK, args=[tag], queue=peer.QUEUE)
        started = peer.started_at(tag)
        if i:
            oneway.append((started - t0) * 1e3)
        time.sleep(0.3)
    for i in range(args.samples + 1):
        t0 = time.perf_counter()
        peer.app.send_task(peer.TASK, queue=peer.QUEUE).get(timeout=10)
        if i:
            roundtrip.append((time.perf_counter() - t0) * 1e3)
        time.sleep(0.3)
    return {"s2": samples, "oneway": oneway, "roundtrip": roundtrip}


# -- (c) data path throughput ----------------------------------------------------------------
def bench_c(args, head: str) -> dict:
    from _training_ml import data_path_rates

    from server.blobs import default_blob_store
    from server.datasets.datasets import get_dataset
    from server.db import session_scope
    from server.registry.service import to_training_snapshot

    t0 = time.perf_counter()
    with session_scope() as db:
        snapshot = to_training_snapshot(db, default_blob_store(), get_dataset(db, DS), head)
    read_s = time.perf_counter() - t0
    return {
        "snapshot_s": read_s,
        "rows": {
            name: data_path_rates(snapshot, raw, args.repeats) for name, raw in (("bench spec", SPEC), ("default spec", DEFAULT_SPEC))
        },
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 repetition of (a), 1 epoch per (c) rate: about 2.5 minutes")
    p.add_argument("--reps", type=int, help="repetitions of (a) (default 3; --quick 1)")
    p.add_argument("--samples", type=int, default=20, help="latency samples in (b) (default 20)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads on both sides")
    p.add_argument("--pg", help="PostgreSQL server URL, no database (default postgresql+psycopg2://postgres@127.0.0.1:5432)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (worker logs)")
    args = p.parse_args()
    args.reps = args.reps or (1 if args.quick else 3)
    args.repeats = 1 if args.quick else 3
    args.cores = os.cpu_count()
    torch.set_num_threads(args.threads)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop the workers, drop the database
    start, busy, own = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
    world = World(**({"pg": args.pg} if args.pg else {}), keep=args.keep, threads=args.threads)
    try:
        with world:
            try:
                from _training_ml import plain_train, read_folder

                from trainer.spec import resolve_spec

                spec, std_spec = resolve_spec(SPEC, "image"), resolve_spec(DEFAULT_SPEC, "image")
                log(f"setup in {world.tmp}: digits ImageFolder, dataset, branches, watch rules ...")
                folder = write_digits_folder(world.tmp / "digits")
                items = read_folder(folder, LABELS)
                spec_file, short_file, latency_file, std_file = (world.tmp / f"{n}.json" for n in ("spec", "short", "latency", "std"))
                spec_file.write_text(json.dumps(SPEC))
                std_file.write_text(json.dumps(DEFAULT_SPEC))
                short_file.write_text(json.dumps({**SPEC, "epochs": 1}))
                latency_file.write_text(json.dumps(LATENCY_SPEC))
                world.s2("dataset", "create", DS, "--modality", "image", "--labels", ",".join(LABELS))
                head = world.s2("import", DS, folder).strip().splitlines()[-1]
                for branch, file in ((WATCHED, spec_file), (WATCHED_STD, std_file), (LATENCY, latency_file)):
                    world.s2("branch", DS, branch, "--from", "main")
                    world.s2("dataset", "watch", DS, "--branch", branch, "--spec", file)
                log("(c) data path throughput ...")
                c = bench_c(args, head)
                log("starting `s2 worker` and warming it up with one untimed `s2 train --wait` ...")
                world.start_s2_worker()
                world.s2("train", DS, "--spec", spec_file, "--wait", "--json")
                plain_train(items, spec, len(LABELS), epochs=1)  # warm the plain side too
                a = bench_a(world, args, items, spec, spec_file, short_file, std_spec, std_file)
                log(f"(b) commit -> running latency x{args.samples} ...")
                b = bench_b(world, args, items)
            except (CommandFailed, TimeoutError) as e:
                log(f"error: {e}")
                for proc in world.processes:
                    log(f"--- {proc.name} log tail:\n{proc.tail()}")
                return 2
    except CommandFailed as e:  # the world itself could not be set up
        log(f"error: {e}")
        return 2
    args.cpu = {"wall": time.perf_counter() - start, "busy": busy_cpu_seconds() - busy, "own": own_cpu_seconds() - own}
    return {"pass": 0, "fail": 1, "busy": 3}[report({"a": a, "b": b, "c": c}, args, spec, SPEC, LATENCY, std_spec, DEFAULT_SPEC)]


if __name__ == "__main__":
    sys.exit(main())
