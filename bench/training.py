"""Training benchmark: s2 against a plain PyTorch loop and against Celery itself, side by side in one run.

    .venv/bin/python bench/training.py [--quick] [--reps N] [--samples N] [--threads N] [--pg URL] [--keep]

On scikit-learn's digits (1,797 8x8 PNGs, imported as an ImageFolder) with PostgreSQL and Redis:
(a) the same cnn_small, data and hyper-parameters trained by a plain PyTorch loop vs through s2
    (`s2 train --wait`, and `s2 commit` on a watched branch) with a warm `s2 worker`: overhead in s and x;
(b) commit -> run `running` latency over Redis vs Celery's own send -> task start for a no-op task;
(c) samples/s of the trainer's data path vs the same tensors in memory vs cnn_small's training step.
Prints a markdown table with PASS/FAIL per goal; exit 0 when all pass, 1 otherwise, 2 when a command failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import time
import uuid
from pathlib import Path

import torch

from _training_env import CommandFailed, World, busy_cpu_seconds, log, own_cpu_seconds, write_digits_folder

DS = "digits"
LABELS = [str(d) for d in range(10)]
SPEC = {"template": "cnn_small", "epochs": 6, "image_size": 16, "image_channels": 1, "batch_size": 32,
        "learning_rate": 0.003}  # tests/test_training.py's digits spec
LATENCY_SPEC = {**SPEC, "epochs": 1}  # (b) cancels each run as soon as it starts anyway
DEFAULT_SPEC = {"template": "cnn_small"}  # (c) also at the defaults: 32x32 RGB, batch 64
WATCHED, LATENCY = "watched", "latency"
GOAL_RATIO, GOAL_FIXED_S, GOAL_LATENCY_MS = 1.2, 2.0, 50.0
TERMINAL = ("succeeded", "failed", "cancelled")


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


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
        stamp = {name: getattr(run, name).timestamp() if getattr(run, name) else None
                 for name in ("created_at", "dispatched_at", "started_at", "finished_at")}
        model = db.get(ModelVersion, run.model_version_id) if run.model_version_id else None
        return {"id": run.id, "state": run.state, "error": run.error, **stamp,
                "duration_s": model.duration_s if model else None,
                "accuracy": model.metrics["eval"]["accuracy"] if model else None}


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
    out = {"submit": run["created_at"] - t0, "queue": run["started_at"] - run["created_at"],
           "worker_other": worker - run["duration_s"], "train": run["duration_s"],
           "registered": run["finished_at"] - t0, "accuracy": run["accuracy"]}
    out["total"] = (end - t0) if end is not None else out["registered"]
    out["tail"] = (end - run["finished_at"]) if end is not None else None
    return out


# -- (a) plain loop vs s2 ------------------------------------------------------------------
def bench_a(world: World, args, items, spec, spec_file: Path) -> dict:
    from _training_ml import plain_train

    plain, s2_train, s2_commit = [], [], []
    for rep in range(args.reps):
        log(f"(a) rep {rep + 1}/{args.reps}: plain loop ...")
        plain.append(plain_train(items, spec, len(LABELS)))
        log(f"(a) rep {rep + 1}/{args.reps}: s2 train --wait ...")
        t0 = time.time()
        model = json.loads(world.s2("train", DS, "--spec", spec_file, "--wait", "--json"))
        s2_train.append(phases(t0, run_times(id=model["run"]), end=time.time()))
        log(f"(a) rep {rep + 1}/{args.reps}: s2 commit on watched branch '{WATCHED}' ...")
        key, _, target = items[rep]
        world.s2("label", DS, key, LABELS[(target + 1 + rep) % len(LABELS)], "--branch", WATCHED)
        t0 = time.time()
        commit = world.s2("commit", DS, "-m", f"bench relabel {rep}", "--branch", WATCHED).strip().splitlines()[-1]
        run = wait_run(300, 0.25, lambda r: r["state"] in TERMINAL, commit_id=commit, branch=WATCHED)
        s2_commit.append(phases(t0, run))
    return {"plain": plain, "train": s2_train, "commit": s2_commit}


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
            run_in_transaction(lambda db: stage_edits(db, blobs, dataset=DS, branch=LATENCY, edits=[(key, label, False)],
                                                      author="bench@example.com"))
            mark.clear()
            made = run_in_transaction(lambda db: commit_staged(db, blobs, dataset=DS, branch=LATENCY,
                                                               message=f"latency {i}", author="bench@example.com"))
            returned = time.time()
            run = wait_run(30, 0.005, lambda r: r["started_at"] is not None or r["state"] in TERMINAL,
                           commit_id=made.id, branch=LATENCY)
            if run["started_at"] is None:
                raise CommandFailed(f"latency run {run['id']} ended {run['state']} without starting: {run['error']}")
            try:
                run_in_transaction(lambda db: cancel_run(db, run["id"]))
            except InvalidInput:  # it finished already (an epoch is short); the sample stands
                pass
            wait_run(60, 0.05, lambda r: r["state"] in TERMINAL, id=run["id"])
            if i:
                samples.append({"commit": (run["started_at"] - mark["t"]) * 1e3,
                                "visible": (run["started_at"] - returned) * 1e3,
                                "send": (run["dispatched_at"] - mark["t"]) * 1e3 if run["dispatched_at"] else None})
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
    from server.datasets.service import get_dataset
    from server.db import session_scope
    from server.registry.service import to_training_snapshot

    t0 = time.perf_counter()
    with session_scope() as db:
        snapshot = to_training_snapshot(db, default_blob_store(), get_dataset(db, DS), head)
    read_s = time.perf_counter() - t0
    return {"snapshot_s": read_s, "rows": {name: data_path_rates(snapshot, raw, args.repeats)
                                           for name, raw in (("bench spec", SPEC), ("default spec", DEFAULT_SPEC))}}


# -- the report -------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(res: dict, args, spec) -> bool:
    import celery
    import lightning

    a, b, c = res["a"], res["b"], res["c"]
    cpu = args.cpu
    other = max(0.0, cpu["busy"] - cpu["own"])
    busy = (f" — **the machine was busy with other work ({other / cpu['wall']:.1f} of {args.cores} cores on average): "
            f"timings are inflated and noisy; rerun on a quiet machine**") if other > 0.25 * cpu["wall"] else ""
    plain = med([p["seconds"] for p in a["plain"]])
    rows, passed = [], True
    for name, runs, end in (("train", a["train"], "`s2 train --wait` until the CLI exits"),
                            ("commit", a["commit"], "`s2 commit` on a watched branch until the model is registered")):
        s2 = med([r["total"] for r in runs])
        ok_ratio, ok_fixed = s2 / plain < GOAL_RATIO, s2 - plain < GOAL_FIXED_S
        passed &= ok_ratio and ok_fixed
        rows.append(f"| a | {end} vs plain PyTorch loop, s (median of {len(runs)}) | {s2:.2f} | {plain:.2f} | "
                    f"{s2 - plain:+.2f} s | {s2 / plain:.2f}x | ratio < {GOAL_RATIO}x | {verdict(ok_ratio)} |")
        rows.append(f"| a | ... fixed cost (s2 − plain) with a warm worker | | | {s2 - plain:+.2f} s | | "
                    f"< {GOAL_FIXED_S:.0f} s | {verdict(ok_fixed)} |")
    lat = med([s["commit"] for s in b["s2"]])
    oneway = med(b["oneway"])
    ok = lat < GOAL_LATENCY_MS
    passed &= ok
    rows.append(f"| b | commit → run `running` over Redis vs Celery no-op send → task start, ms (median of "
                f"{len(b['s2'])}) | {lat:.1f} | {oneway:.1f} | {lat - oneway:+.1f} ms | {lat / oneway:.1f}x | "
                f"< {GOAL_LATENCY_MS:.0f} ms | {verdict(ok)} |")
    rows.append(f"| b | Celery no-op round trip incl. result (reference), ms | | {med(b['roundtrip']):.1f} | | | | |")
    for name, r in c["rows"].items():
        shape = "x".join(map(str, r["shape"]))
        ok = r["s2"] > r["step"]
        passed &= ok
        rows.append(f"| c | data path (snapshot → DataModule loader: blob read + verify + PNG decode) vs in-memory "
                    f"DataLoader, samples/s, {name} ({shape}, batch {r['batch_size']}) | {r['s2']:,.0f} | "
                    f"{r['memory']:,.0f} | | {r['s2'] / r['memory']:.2f}x | > training step ({r['step']:,.0f}/s) | "
                    f"{verdict(ok)} |")
        rows.append(f"| c | cnn_small training step (forward + backward + AdamW), samples/s, {name} | {r['step']:,.0f} "
                    f"| | | | (reference) | |")
    print(f"""## Training: s2 vs a plain PyTorch loop and vs Celery

{platform.machine()}, {args.cores} cores, Python {platform.python_version()}, torch {torch.__version__} with {args.threads} \
thread(s) in both the plain loop and the worker, Lightning {lightning.__version__}, Celery {celery.__version__}; \
PostgreSQL + Redis on loopback. Data: scikit-learn digits, {a['plain'][0]['train_n'] + a['plain'][0]['eval_n']} \
PNGs ({a['plain'][0]['train_n']} train / {a['plain'][0]['eval_n']} eval by key hash). Spec: `{json.dumps(SPEC)}`. \
Whole run {cpu['wall']:.0f} s; CPU used by this benchmark's processes {cpu['own']:.0f} s, by everything else on the \
machine (PostgreSQL and Redis included) {other:.0f} s{busy}.

| part | measurement | s2 | peer | difference | ratio | goal | result |
|---|---|---:|---:|---:|---:|---|---|""")
    print("\n".join(rows))
    print("\n(a) where the time goes, medians in s:\n")
    print("| phase | plain loop | `s2 train --wait` | `s2 commit` → registered |\n|---|---:|---:|---:|")
    t, m = a["train"], a["commit"]

    def col(runs, key):
        values = [r[key] for r in runs if r.get(key) is not None]
        return f"{med(values):.3f}" if values else "—"

    print(f"| CLI start + submit / commit (command start → run created) | — | {col(t, 'submit')} | {col(m, 'submit')} |")
    print(f"| queue (run created → worker marks it running) | — | {col(t, 'queue')} | {col(m, 'queue')} |")
    print(f"| worker outside train(): read snapshot; store weights + register | — | {col(t, 'worker_other')} | "
          f"{col(m, 'worker_other')} |")
    print(f"| read + decode the PNGs up front | {col(a['plain'], 'decode_s')} | (per item, inside train()) | |")
    print(f"| training: epochs + per-epoch eval (s2: train(): Lightning fit + scoring + weights) | "
          f"{col(a['plain'], 'train_s')} | {col(t, 'train')} | {col(m, 'train')} |")
    print(f"| model registered → CLI exits (0.3 s polling, print) | — | {col(t, 'tail')} | — |")
    print(f"| total | {plain:.3f} | {col(t, 'total')} | {col(m, 'total')} |")
    print(f"| eval accuracy | {med([p['accuracy'] for p in a['plain']]):.3f} | {col(t, 'accuracy')} | {col(m, 'accuracy')} |")
    print("\nPer repetition (s): " + "; ".join(
        f"{name} " + ", ".join(f"{r[key]:.2f}" for r in runs)
        for name, runs, key in (("plain", a["plain"], "seconds"), ("s2 train", t, "total"), ("s2 commit", m, "total"))))
    print("\n(b) latency distribution, ms (p10 / median / p90 / max):\n")
    print("| path | p10 | median | p90 | max |\n|---|---:|---:|---:|---:|")
    dists = (("s2: commit's COMMIT returned → run `running` (worker's started_at)", [s["commit"] for s in b["s2"]]),
             ("s2: commit call returned (after-commit dispatch included) → `running`", [s["visible"] for s in b["s2"]]),
             ("s2: commit's COMMIT returned → task sent (run's dispatched_at)", [s["send"] for s in b["s2"] if s["send"]]),
             ("Celery: send_task → no-op task starts", b["oneway"]),
             ("Celery: send_task → result back (`.get()`)", b["roundtrip"]))
    for name, values in dists:
        print(f"| {name} | {pct(values, .1):.1f} | {med(values):.1f} | {pct(values, .9):.1f} | {max(values):.1f} |")
    print(f"""
Notes:
- (a) Both sides train cnn_small (trainer.templates.image.CNNSmall) from seed {spec.seed} for {spec.epochs} epochs on the same \
train rows (s2's split by key hash, eval_fraction {spec.eval_fraction}), batch {spec.batch_size}, AdamW lr \
{spec.learning_rate} wd {spec.weight_decay}, images resized to {spec.image_size}x{spec.image_size}x{spec.image_channels}, \
and evaluate on the eval rows after every epoch. The plain loop reads and decodes the PNGs from the ImageFolder once, up \
front (timed), then uses DataLoader(TensorDataset) in the benchmark process; s2 decodes per item each epoch in the \
worker. Nothing else runs during either. s2 is timed from the command's start (CLI interpreter start-up included); \
`s2 train` until the CLI exits, `s2 commit` until the run's finished_at (the model registration's transaction). The \
worker was warm: one untimed `s2 train --wait` first, and one untimed plain epoch.
- (b) In process, through the services `s2 label`/`s2 commit` use (stage_edits, commit_staged) on watched branch \
'{LATENCY}' with S2_BROKER_URL=redis://127.0.0.1:6379/N; t0 = the commit's COMMIT returning (a SQLAlchemy after_commit \
hook placed first), t1 = the run's started_at as the worker's claim writes it; each run is cancelled as soon as it \
runs, then 0.3 s idle before the next commit; one warm-up sample dropped. The peer is a Celery worker started here \
with s2's Celery policy (solo pool, late acks, prefetch 1, no gossip/mingle/heartbeat) on the same Redis database; its \
no-op stamps time.time() on start; 0.3 s idle between sends.
- (c) One epoch of SnapshotDataModule(snapshot, spec).train_dataloader() (num_workers {spec.num_workers}, the default) \
over a TrainingSnapshot from to_training_snapshot (read in {c['snapshot_s']:.3f} s), vs the same rows pre-decoded \
into a TensorDataset; medians of {args.repeats}. Training step: cnn_small on pre-decoded batches of the same size.""")
    return passed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 repetition of (a), 1 epoch per (c) rate: under ~2 minutes")
    p.add_argument("--reps", type=int, help="repetitions of (a) (default 3; --quick 1)")
    p.add_argument("--samples", type=int, default=20, help="latency samples in (b) (default 20)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads on both sides")
    p.add_argument("--pg", help="PostgreSQL server URL without database (default postgresql+psycopg2://postgres@127.0.0.1:5432)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (worker logs)")
    args = p.parse_args()
    args.reps = args.reps or (1 if args.quick else 3)
    args.repeats = 1 if args.quick else 3
    args.cores = os.cpu_count()
    torch.set_num_threads(args.threads)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop the workers, drop the database
    start, busy, own = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
    world = World(**({"pg": args.pg} if args.pg else {}), keep=args.keep, threads=args.threads)
    with world:
        try:
            from _training_ml import plain_train, read_folder

            from trainer.spec import resolve_spec

            spec = resolve_spec(SPEC, "image")
            log(f"setup in {world.tmp}: digits ImageFolder, dataset, branches, watch rules ...")
            folder = write_digits_folder(world.tmp / "digits")
            items = read_folder(folder, LABELS)
            spec_file, latency_file = world.tmp / "spec.json", world.tmp / "latency.json"
            spec_file.write_text(json.dumps(SPEC))
            latency_file.write_text(json.dumps(LATENCY_SPEC))
            world.s2("dataset", "create", DS, "--modality", "image", "--labels", ",".join(LABELS))
            head = world.s2("import", DS, folder).strip().splitlines()[-1]
            for branch, file in ((WATCHED, spec_file), (LATENCY, latency_file)):
                world.s2("branch", DS, branch, "--from", "main")
                world.s2("dataset", "watch", DS, "--branch", branch, "--spec", file)
            log("(c) data path throughput ...")
            c = bench_c(args, head)
            log("starting `s2 worker` and warming it up with one untimed `s2 train --wait` ...")
            world.start_s2_worker()
            world.s2("train", DS, "--spec", spec_file, "--wait", "--json")
            plain_train(items, spec, len(LABELS), epochs=1)  # warm the plain side too
            a = bench_a(world, args, items, spec, spec_file)
            log(f"(b) commit -> running latency x{args.samples} ...")
            b = bench_b(world, args, items)
        except CommandFailed as e:
            log(f"error: {e}")
            for proc in world.processes:
                log(f"--- {proc.name} log tail:\n{proc.tail()}")
            return 2
    args.cpu = {"wall": time.perf_counter() - start, "busy": busy_cpu_seconds() - busy, "own": own_cpu_seconds() - own}
    return 0 if report({"a": a, "b": b, "c": c}, args, spec) else 1


if __name__ == "__main__":
    sys.exit(main())
