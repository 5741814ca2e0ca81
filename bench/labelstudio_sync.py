"""The Label Studio bridge's push and pull against Label Studio's own JSON import and export of the same tasks.

    .venv/bin/python bench/labelstudio_sync.py                 # N = 2,000 and 10,000 (~13 min on 2 cores)
    .venv/bin/python bench/labelstudio_sync.py --quick         # N = 500, one round: a smoke run (~1 min)
    #   --n N (repeatable)  --batch B (default 500, s2's)  --repeat R (default 3 up to 2,000, else 1)
    #   --sqlite (s2 on its embedded store)  --no-memory  --keep

Per round, a new text dataset (N unlabeled short texts, 4 labels, plus 20 labeled ones) is made through s2's services
on a new PostgreSQL database (127.0.0.1:5432, user postgres, dropped afterwards; `--sqlite`: the embedded default),
with a model whose guesses cover every unlabeled key (registered as a worker does), so each task carries a prediction.
A real Label Studio (tests/labelstudio/server.py: bench/.venv-ls, SQLite, a migrated data dir copied) takes:

1. push: s2's `push` of the unlabeled queue into a new project (`connect` made it, untimed) -- vs -- Label Studio's
   JSON import of the same N task dicts (built the same way, by tasks.task_data + tasks.pre_annotation, and checked
   against what s2 sent) into another new project with the same label config: POST /api/projects/{id}/import with
   the same query (return_task_ids, commit_to_project) in batches of B, the JSON sent by httpx.
2. pull: every task of s2's project annotated (Label Studio's data-manager action "Create Annotations From
   Predictions", untimed), then s2's `pull` (reads the annotated tasks through one snapshot export without the
   predictions and drafts, made, downloaded and deleted, parsed as it streams and
   staged B at a time, checking each example's version, then commits the N labels) -- vs -- Label Studio's JSON
   export of that project (GET /api/projects/{id}/export
   ?exportType=JSON&download_all_tasks=true, body read and parsed). Then a second pull (nothing new: no commit)
   against the export again. Also timed, for reference: the same export read by pages of B task ids (ids[]=...).
3. memory: one more round per N without the peer, s2's push and pull under tracemalloc (peak Python heap, and what
   the pull's commit adds at its peak).

Every request to Label Studio is timed inside httpx, so s2's time splits into waiting on Label Studio and its own
(this process's CPU, PostgreSQL); push and pull overlap the two on two threads, so those parts can add up to more
than the wall time. The two sides of a pair run back to back, alternating which goes first from round
to round; times are medians over rounds. Goals: s2 within 20% of Label Studio's time (overhead = s2/LS - 1) for the
push and the first pull; s2's peak heap at the largest N at most 1.5x its peak at the smallest (bounded by one
batch, whatever the count). Exit status 0 when every goal is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.labelstudio.server import LabelStudioError, LabelStudioServer  # noqa: E402

PG = os.environ.get("S2_BENCH_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432")
LABELS = ["north", "south", "east", "west"]
WORDS = (
    "river stone cloud market signal harbor forest engine lantern window garden bridge copper violet thunder meadow "
    "compass pepper silver orchard canyon falcon marble ember glacier tunnel velvet saddle beacon willow"
).split()
SEEDED = 20  # labeled examples: a run needs two labeled classes before a model can be registered
OVERHEAD_GOAL = 0.20
MEMORY_GOAL = 1.5
AUTHOR = "bench@example.com"
IMPORT_PARAMS = {"return_task_ids": "true", "commit_to_project": "true"}  # what s2's push asks for too


class Wire:
    """Wall time spent inside httpx requests (every request here goes to Label Studio)."""

    seconds = 0.0
    requests = 0

    @classmethod
    def install(cls) -> None:
        send = httpx.Client.send

        def timed_send(self, request, **kwargs):  # noqa: ANN001, ANN202
            t = time.perf_counter()
            try:
                return send(self, request, **kwargs)
            finally:
                cls.seconds += time.perf_counter() - t
                cls.requests += 1

        httpx.Client.send = timed_send


class Commit:
    """While tracing: the heap's peak before the pull's commit_staged, and what that commit itself added at its peak."""

    before = 0
    own = 0

    @classmethod
    def install(cls) -> None:
        import labeling.labelstudio.pull as pull_module

        commit_staged = pull_module.commit_staged

        def traced(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            if not tracemalloc.is_tracing():
                return commit_staged(*args, **kwargs)
            held, cls.before = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            try:
                return commit_staged(*args, **kwargs)
            finally:
                cls.own = tracemalloc.get_traced_memory()[1] - held

        pull_module.commit_staged = traced


def measure(fn, trace: bool = False) -> tuple[object, dict]:
    """(fn(), {s, cpu: this process's CPU, wire: time waiting on Label Studio, requests, peak: tracemalloc bytes,
    commit: what the pull's commit added to the heap at its peak})."""
    wire, requests = Wire.seconds, Wire.requests
    Commit.before = Commit.own = 0
    if trace:
        tracemalloc.start()
    cpu, t = time.process_time(), time.perf_counter()
    try:
        out = fn()
    finally:
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        peak = max(tracemalloc.get_traced_memory()[1], Commit.before) if trace else None
        if trace:
            tracemalloc.stop()
    took = {"s": wall, "cpu": cpu, "wire": Wire.seconds - wire, "requests": Wire.requests - requests}
    return out, took | {"peak": peak, "commit": Commit.own}


def make_dataset(blobs, name: str, n: int, seed: int) -> dict[str, tuple[str, str, float]]:  # noqa: ANN001
    """A text dataset of n unlabeled examples (and SEEDED labeled) with a model guessing every unlabeled one.

    Returns {key: (text, guessed label, confidence)} of the unlabeled examples."""
    from server.datasets.datasets import create_dataset
    from server.datasets.inputs import store_input
    from server.datasets.rows import Row
    from server.db import run_in_transaction
    from server.runs.service import submit_run
    from tests.api.factories import register_model
    from tests.factories import upsert

    rng = random.Random(seed)
    run_in_transaction(lambda db: create_dataset(db, name=name, modality="text", labels=LABELS, author=AUTHOR))
    rows, unlabeled = [], {}
    for i in range(n + SEEDED):
        key, text = f"ex{i:07d}", " ".join(rng.choices(WORDS, k=rng.randint(8, 14)))
        label = LABELS[i % len(LABELS)] if i >= n else None
        input_id, inline = store_input(blobs, text.encode(), "text")
        rows.append(Row(key, input_id, label, None, None, inline))
        if label is None:
            unlabeled[key] = (text, LABELS[rng.randrange(len(LABELS))], round(rng.uniform(0.4, 0.95), 2))
    upsert(blobs, name, rows)
    run = run_in_transaction(lambda db: submit_run(db, blobs, dataset=name, rev=None, spec=None)).id
    guess = {k: g for k, (_, g, _) in unlabeled.items()}
    probs = {k: [c if lab == g else (1 - c) / (len(LABELS) - 1) for lab in LABELS] for k, (_, g, c) in unlabeled.items()}
    register_model(blobs, run, LABELS, guess, guess, probs)
    return unlabeled


def peer_tasks(name: str, unlabeled: dict[str, tuple[str, str, float]]) -> list[dict]:
    """The tasks s2 pushes for these examples, built by the same functions (model version 1 of the dataset)."""
    from labeling.labelstudio.tasks import pre_annotation, task_data

    return [
        {"data": task_data("text", key, name, inline=text), "predictions": [pre_annotation("text", guess, conf, f"{name}@1")]}
        for key, (text, guess, conf) in sorted(unlabeled.items())
    ]


def same_tasks(exported: list[dict], sent: list[dict]) -> str | None:
    """Why the tasks in s2's project differ from the peer's (None: same data, one prediction with the same result)."""
    by_key = {t["data"]["s2_key"]: t for t in exported}
    for want in sent:
        got = by_key.get(want["data"]["s2_key"])
        if got is None or got["data"] != want["data"]:
            return f"task data of {want['data']['s2_key']}: {got and got['data']} != {want['data']}"
        # the export names predictions by id: their result is checked through the annotation made from each one
        results = [a["result"] for a in got["annotations"]]
        if len(got.get("predictions") or []) != 1 or results != [want["predictions"][0]["result"]]:
            return f"prediction of {want['data']['s2_key']}: {got.get('predictions')}, annotated {results} != {want['predictions']}"
    return None if len(exported) == len(sent) else f"{len(exported)} tasks exported, {len(sent)} sent"


class Bench:
    """One Label Studio server, one s2 store; rounds of push / annotate / pull, with and without the peer."""

    def __init__(self, ls: LabelStudioServer, batch: int):
        from label_studio_sdk import LabelStudio

        from server.blobs import default_blob_store

        self.ls, self.batch, self.blobs = ls, batch, default_blob_store()
        self.sdk = LabelStudio(base_url=ls.url, api_key=ls.token, timeout=600)
        self.http = httpx.Client(base_url=ls.url, headers={"Authorization": f"Token {ls.token}"}, timeout=600)
        self.rounds = 0

    def pair(self, s2_fn, ls_fn, s2_first: bool, trace: bool) -> tuple[object, dict, object, dict | None]:  # noqa: ANN001
        if trace:
            out, s2 = measure(s2_fn, trace=True)
            return out, s2, None, None
        if s2_first:
            out, s2 = measure(s2_fn)
            peer_out, peer = measure(ls_fn)
        else:
            peer_out, peer = measure(ls_fn)
            out, s2 = measure(s2_fn)
        return out, s2, peer_out, peer

    def export(self, project: int) -> list[dict]:
        r = self.http.get(f"/api/projects/{project}/export", params={"exportType": "JSON", "download_all_tasks": "true"})
        r.raise_for_status()
        return json.loads(r.content)

    def export_ids(self, project: int, ids: list[int]) -> int:
        """The annotated tasks of project, exported a page of B task ids at a time (ids[]=...)."""
        got = 0
        for i in range(0, len(ids), self.batch):
            params = [("exportType", "JSON"), ("download_all_tasks", "false")] + [("ids[]", t) for t in ids[i : i + self.batch]]
            r = self.http.get(f"/api/projects/{project}/export", params=params)
            r.raise_for_status()
            got += len(json.loads(r.content))
        assert got == len(ids), (got, len(ids))
        return got

    def round(self, n: int, trace: bool) -> dict:
        """A new dataset of n; push, annotate, pull, pull again (each against Label Studio's own, unless trace)."""
        from labeling.labelstudio.bridge import connect, push
        from labeling.labelstudio.pull import pull
        from labeling.labelstudio.tasks import labeling_config

        name, s2_first = f"b{n}_{self.rounds}", self.rounds % 2 == 1
        self.rounds += 1
        unlabeled = make_dataset(self.blobs, name, n, seed=self.rounds)
        tasks = peer_tasks(name, unlabeled)
        project = connect(dataset=name, url=self.ls.url, token=self.ls.token, branch=None, project=None, title=None, by=AUTHOR)["project"]
        peer = None if trace else self.sdk.projects.create(title=f"peer {name}", label_config=labeling_config("text", LABELS)).id

        def ls_import() -> int:
            made = 0
            for i in range(0, len(tasks), self.batch):
                r = self.http.post(f"/api/projects/{peer}/import", params=IMPORT_PARAMS, json=tasks[i : i + self.batch])
                r.raise_for_status()
                made += len(r.json()["task_ids"])
            return made

        def s2_push() -> dict:
            return push(self.blobs, dataset=name, queue="unlabeled", public_url=None, ttl_s=3600, batch=self.batch)

        result: dict = {}
        pushed, result["push"], imported, result["push_ls"] = self.pair(s2_push, ls_import, s2_first, trace)
        assert pushed["pushed"] == n and pushed["with_predictions"] == n, pushed
        assert trace or imported == n, imported
        r = self.http.post(
            "/api/dm/actions",
            params={"id": "predictions_to_annotations", "project": project},
            json={"selectedItems": {"all": True, "excluded": []}},
        )
        assert r.status_code == 200 and f"Created {n} annotations" in r.text, r.text

        def s2_pull() -> dict:
            return pull(self.blobs, dataset=name, by=AUTHOR, batch=self.batch)

        pulled, result["pull"], exported, result["pull_ls"] = self.pair(s2_pull, lambda: self.export(project), s2_first, trace)
        assert pulled["applied"] == n and pulled["commit"], {k: v for k, v in pulled.items() if k != "status"}
        if not trace:
            assert len(exported) == n and all(len(t["annotations"]) == 1 for t in exported)
            differs = same_tasks(exported, tasks)
            assert differs is None, differs
            ids = sorted(t["id"] for t in exported)  # what a pull reading the export by its own task ids would wait on:
            _, result["ids_ls"] = measure(lambda: self.export_ids(project, ids))
        again, result["pull2"], _, result["pull2_ls"] = self.pair(s2_pull, lambda: self.export(project), not s2_first, trace)
        assert again["unchanged"] == n and again["commit"] is None, {k: v for k, v in again.items() if k != "status"}
        return result


def pg_database() -> tuple[str, object]:
    """A new, empty PostgreSQL database (s2 migrates it on first use) and how to drop it."""
    from sqlalchemy import create_engine, text

    name = f"s2bench_ls_{uuid.uuid4().hex[:10]}"
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        from server.db import get_engine

        get_engine(f"{PG}/{name}").dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return f"{PG}/{name}", drop


def fmt_s(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.2f}"


def report(results: dict[int, list[dict]], traced: dict[int, dict], args) -> bool:  # noqa: ANN001
    med = {
        n: {k: {f: statistics.median(r[k][f] for r in rounds) for f in ("s", "cpu", "wire", "requests")} for k in rounds[0]}
        for n, rounds in results.items()
    }
    ok = True
    rounds = ", ".join(f"{len(r)} at {n:,}" for n, r in results.items())
    print(f"\nLabel Studio bridge vs Label Studio's JSON import/export: batch {args.batch}, rounds {rounds} (medians), s2 on {args.db}\n")
    print("| N | operation | s2 s | Label Studio s | overhead | goal | result |\n|---:|---|---:|---:|---:|---|---|")
    names = {
        "push": ("push (unlabeled queue, with predictions)", "JSON import (POST /import)"),
        "pull": ("pull (stage + check + commit N labels)", "JSON export (GET /export)"),
        "pull2": ("second pull (no-op)", "JSON export (GET /export)"),
    }
    for n, m in med.items():
        for op, (what, peer) in names.items():
            s2, ls = m[op]["s"], m[f"{op}_ls"]["s"]
            over = s2 / ls - 1
            judged = op != "pull2"
            passed = over < OVERHEAD_GOAL
            ok &= passed or not judged
            verdict = ("PASS" if passed else "FAIL") if judged else ""
            print(f"| {n:,} | {what} vs {peer} | {fmt_s(s2)} | {fmt_s(ls)} | {over:+.0%} | {'< +20%' if judged else ''} | {verdict} |")
    print("\nWhere s2's time went (medians): waiting on Label Studio's answers (inside httpx), this process's CPU, requests\n")
    print(
        "| N | operation | s2 s | waiting on LS s | s2 CPU s | requests | LS side s | LS side requests |\n|---:|---|---:|---:|---:|---:|---:|---:|"
    )
    for n, m in med.items():
        for op in names:
            s2, ls = m[op], m[f"{op}_ls"]
            print(
                f"| {n:,} | {op} | {fmt_s(s2['s'])} | {fmt_s(s2['wire'])} | {fmt_s(s2['cpu'])} | {s2['requests']:.0f} | "
                f"{fmt_s(ls['s'])} | {ls['requests']:.0f} |"
            )
    print(
        "\nWhat the pull waits on: Label Studio's export of the annotated tasks, streamed (s2) vs the whole export read at once"
        f" and the export asked for by pages of {args.batch} task ids (Label Studio side)\n"
    )
    print(f"| N | s2 pull waiting on LS s | export, whole s | export by pages of {args.batch} task ids s |\n|---:|---:|---:|---:|")
    for n, m in med.items():
        print(f"| {n:,} | {fmt_s(m['pull']['wire'])} | {fmt_s(m['pull_ls']['s'])} | {fmt_s(m['ids_ls']['s'])} |")
    if traced:
        sizes = sorted(traced)
        print("\ns2's peak Python heap (tracemalloc, client side; Label Studio's server is not measured)\n")
        print("| N | operation | peak MB | of which the commit, MB | per task, bytes |\n|---:|---|---:|---:|---:|")
        for n in sizes:
            for op in ("push", "pull", "pull2"):
                peak, commit = traced[n][op]["peak"], traced[n][op]["commit"]
                own = f"{commit / 1e6:.1f}" if op == "pull" else "—"
                print(f"| {n:,} | {op} | {peak / 1e6:.1f} | {own} | {peak / n:,.0f} |")
        if len(sizes) > 1:
            lo, hi = sizes[0], sizes[-1]
            print(f"\n| operation | peak at {hi:,} / peak at {lo:,} | goal | result |\n|---|---:|---|---|")
            for op in ("push", "pull"):
                ratio = traced[hi][op]["peak"] / traced[lo][op]["peak"]
                ok &= ratio <= MEMORY_GOAL
                print(f"| {op} | {ratio:.2f}x | ≤ {MEMORY_GOAL}x | {'PASS' if ratio <= MEMORY_GOAL else 'FAIL'} |")
    return ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, action="append", help="tasks per round (repeatable; default 2000 and 10000)")
    p.add_argument("--batch", type=int, default=500, help="tasks per request, both sides (s2's default S2_LABELSTUDIO_BATCH)")
    p.add_argument("--repeat", type=int, help="timed rounds per N (default 3 up to 2,000, else 1)")
    p.add_argument("--quick", action="store_true", help="N = 500, one round: a smoke run")
    p.add_argument("--sqlite", action="store_true", help="s2 on its embedded SQLite store instead of PostgreSQL")
    p.add_argument("--no-memory", action="store_true", help="skip the tracemalloc rounds")
    p.add_argument("--keep", action="store_true", help="keep the work directory (Label Studio's data, S2_HOME)")
    args = p.parse_args()
    sizes = [500] if args.quick else sorted(set(args.n or [2000, 10000]))
    args.db = "SQLite" if args.sqlite else "PostgreSQL"
    work = Path(tempfile.mkdtemp(prefix="s2bench-ls-"))
    for k in [k for k in os.environ if k.startswith("S2_")]:
        del os.environ[k]
    os.environ.update({"S2_HOME": str(work / "s2"), "S2_AUTHOR": AUTHOR, "S2_ANALYSIS_FOLDS": "0"})
    drop = None
    if not args.sqlite:
        os.environ["S2_DATABASE_URL"], drop = pg_database()
    ls = None
    try:
        ls = LabelStudioServer(work / "ls")
        ls.start()
        Wire.install()
        Commit.install()
        bench = Bench(ls, args.batch)
        results: dict[int, list[dict]] = {}
        traced: dict[int, dict] = {}
        for n in sizes:
            repeat = args.repeat or (1 if args.quick or n > 2000 else 3)
            for r in range(repeat):
                results.setdefault(n, []).append(bench.round(n, trace=False))
                got = results[n][-1]
                print(
                    f"N={n:,} round {r + 1}/{repeat}: "
                    + ", ".join(f"{op} s2 {got[op]['s']:.2f} s / LS {got[op + '_ls']['s']:.2f} s" for op in ("push", "pull", "pull2")),
                    file=sys.stderr,
                    flush=True,
                )
            if not args.no_memory:
                traced[n] = bench.round(n, trace=True)
                print(
                    f"N={n:,} memory: " + ", ".join(f"{op} {traced[n][op]['peak'] / 1e6:.1f} MB" for op in ("push", "pull")),
                    file=sys.stderr,
                )
        ok = report(results, traced, args)
    except LabelStudioError as exc:
        print(f"Label Studio: {exc}", file=sys.stderr)
        sys.exit(2)
    finally:
        if ls is not None:
            ls.stop()
        if drop is not None:
            drop()
        if args.keep:
            print(f"work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
