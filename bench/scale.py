"""Scale benchmark: every interactive path of s2 at 100k, 1M and 10M examples, through `s2 serve` on PostgreSQL.

    python bench/scale.py [--n 100000 --n 1000000 --n 10000000] [--samples 200] [--commits 500] [--workdir DIR]

For each N: a seeded text dataset (short texts: ten million rows fit this disk) is uploaded as one
import job while the server's memory is sampled; a branch then gets --commits small commits;
synthetic runs, users and two model versions (predictions on a fifth of the keys) are added.
Every size's server stays up until all are set up; then each path is timed --samples times from a
client on the same machine, the sizes taking turns call by call (p50/p99 ms), so that other load on a
shared machine slows all sizes alike: one
example with its version (on main, and after the commits), a page of each list (examples, commits,
staged edits, runs, models, users, diff, compare), blame of one key, and, once each, a commit of
1,000 relabels and of 1% of N relabels with their whole diffs. The table gives each path's 10M
(largest N) / 100k (smallest N) ratio against the goal (<= 1.5x), and each import's peak memory
(goal < 300 MB).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _scale_env import LABELS, S2, Memory, Server, key_of, write_rows

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from server.api.pagination import encode_cursor  # noqa: E402

RATIO_GOAL, MEMORY_GOAL_MB = 1.5, 300
PATHS = [
    ("example", "one example with its version (main)"),
    ("example_after", "one example after the commits (branch head)"),
    ("page_examples", "page of 100 examples at a random key"),
    ("page_commits", "page of 100 commits (first)"),
    ("page_commits_deep", "page of 100 commits (after 300)"),
    ("page_staged", "page of 100 staged edits at a random key"),
    ("page_runs", "page of 100 runs"),
    ("page_models", "page of models"),
    ("page_users", "page of 100 users at a random name"),
    ("page_diff", "page of 100 keys of the branch's diff"),
    ("page_compare", "page of 100 flips of two models at a random key"),
    ("blame", "blame of one key"),
]
ONCE = [
    ("commit_fixed", "commit of 1,000 relabels"),
    ("diff_fixed", "its whole diff (pages of 1,000)"),
    ("commit_pct", "commit of 1% of N relabels"),
    ("diff_pct", "its whole diff (pages of 1,000)"),
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def import_rows(srv: Server, csv_path: Path) -> dict:
    """Upload the table as one import job; wait for it and for its compaction; the time and the server's peak memory."""
    with Memory(srv.proc.pid) as mem:
        start = time.perf_counter()
        with open(csv_path, "rb") as f:
            job = srv.call("POST", "/datasets/big/imports", files={"files": ("rows.csv", f, "text/csv")}).json()
        while job["state"] not in ("succeeded", "failed"):
            time.sleep(0.5)
            job = srv.call("GET", f"/imports/{job['id']}").json()
        if job["state"] != "succeeded":
            raise RuntimeError(f"import failed: {job['error']}")
        seconds = time.perf_counter() - start
        while srv.sql(f"SELECT checkpoint_blob IS NOT NULL FROM commits WHERE id = '{job['commit']}'") != "t":
            time.sleep(0.5)  # the server writes the checkpoint on a background thread
        compacted = time.perf_counter() - start
    return {
        "seconds": seconds,
        "with_checkpoint": compacted,
        "private_mb": mem.peak_private,
        "total_mb": mem.peak_total,
        "baseline_mb": mem.baseline,
    }


def stage_batch(srv: Server, branch: str, keys: list[str], label_of) -> None:
    for start in range(0, len(keys), 1000):
        edits = [{"key": k, "label": label_of(k)} for k in keys[start : start + 1000]]
        srv.call("POST", "/datasets/big/edits", params={"branch": branch}, json={"edits": edits})


def small_commits(srv: Server, n: int, count: int, rng: random.Random) -> list[str]:
    """count commits of one relabel each on branch work; the keys they changed."""
    srv.call("POST", "/datasets/big/branches", json={"name": "work"})
    touched = []
    for i in range(count):
        key = key_of(rng.randrange(n))
        seen = srv.call("GET", f"/datasets/big/examples/{key}", params={"rev": "work"}).json()
        label = LABELS[(LABELS.index(seen["staged_label"] or seen["label"]) + 1) % 4]
        srv.call("PUT", f"/datasets/big/edits/{key}", params={"branch": "work"}, json={"label": label, "version": seen["version"]})
        srv.call("POST", "/datasets/big/commits", json={"branch": "work", "message": f"fix {i}"})
        touched.append(key)
    return touched


MODELS = """
import io, random, sys
import pyarrow as pa, pyarrow.parquet as pq
from server.blobs import default_blob_store
from server.registry.service import register_model
from trainer.result import TrainResult
n, runs = int(sys.argv[1]), [int(r) for r in sys.argv[2:]]
labels = ["north", "south", "east", "west"]
rng = random.Random(7)
keys = [f"ex{i:09d}" for i in range(0, n, 5)]
truth = [rng.randrange(4) for _ in keys]
for number, run in enumerate(runs):
    wrong = 0.2 - 0.05 * number
    predicted = [(t + 1) % 4 if rng.random() < wrong else t for t in truth]
    table = pa.table({"eval_set": ["eval"] * len(keys), "key": keys, "label": truth, "predicted": predicted})
    buf = io.BytesIO(); pq.write_table(table, buf)
    accuracy = sum(p == t for p, t in zip(predicted, truth)) / len(keys)
    metrics = {"eval": {"accuracy": accuracy, "macro_f1": accuracy, "loss": 1 - accuracy, "per_class": {}, "confusion_matrix": None, "count": len(keys)}}
    result = TrainResult(weights=b"w%d" % run, spec={"template": "synthetic"}, spec_hash=f"{run:064x}", metrics=metrics,
                         curves={}, predictions=buf.getvalue(), device="cpu", epochs_run=1, duration_s=1.0, labels=labels)
    print(register_model(run, result, default_blob_store()))
"""


def synthetic_lists(srv: Server, n: int) -> None:
    """200 users, 200 queued runs, and two model versions whose predictions cover a fifth of the keys."""
    for i in range(200):
        srv.call("POST", "/users", json={"name": f"user{i:04d}", "role": "labeler", "datasets": []})
    runs = [srv.call("POST", "/datasets/big/runs", json={}).json()["id"] for _ in range(200)]
    subprocess.run(
        [str(S2.parent / "python"), "-c", MODELS, str(n), str(runs[0]), str(runs[1])], env=srv.env, check=True, capture_output=True
    )


def interleaved(fns: list, samples: int) -> list[tuple[float, float]]:
    """p50 and p99 in milliseconds of each fn over samples calls, the sizes taking turns call by call.

    Taking turns puts the sizes side by side in time: whatever else the shared machine runs slows
    every size alike, so the ratios hold even when the absolute figures move."""
    for fn in fns:  # two warm-up calls each
        fn()
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(samples):
        for fn, into in zip(fns, times):
            into.append(timed(fn) * 1000)
    out = []
    for t in times:
        t.sort()
        out.append((statistics.median(t), t[min(len(t) - 1, int(len(t) * 0.99))]))
    return out


class Size:
    """One dataset size, set up and served: its server stays up until every size is measured."""

    def __init__(self, n: int, args, root: Path):
        self.n = n
        workdir = root / f"n{n}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(args.seed)
        csv_path = write_rows(workdir / "rows.csv", n, args.seed)
        log(f"[n={n:,}] wrote {csv_path.stat().st_size / 2**20:.0f} MiB of rows")
        self.srv = Server(workdir)
        try:
            self.srv.call("POST", "/datasets", json={"name": "big", "modality": "text", "labels": LABELS})
            self.imported = import_rows(self.srv, csv_path)
            log(
                f"[n={n:,}] import {self.imported['seconds']:.1f} s (+checkpoint: {self.imported['with_checkpoint']:.1f} s), "
                f"peak private {self.imported['private_mb']} MiB, total {self.imported['total_mb']} MiB"
            )
            csv_path.unlink()
            self.touched = small_commits(self.srv, n, args.commits, self.rng)
            synthetic_lists(self.srv, n)
            self.paths = paths_of(self.srv, n, self.touched, self.rng)
        except BaseException:
            self.srv.close()
            raise
        self.result: dict = {"n": n, "import": self.imported}

    def close(self) -> None:
        self.srv.close()


def paths_of(srv: Server, n: int, touched: list[str], rng: random.Random) -> dict:
    """Each sampled path as a call of its own, with what it needs made first (a staging branch, a deep cursor)."""
    get = srv.call
    deep = get("GET", "/datasets/big/commits", params={"rev": "work", "limit": min(300, len(touched) // 2)}).json()["next_cursor"]
    get("POST", "/datasets/big/branches", json={"name": "staging"})
    stage_batch(srv, "staging", [key_of(i) for i in rng.sample(range(n), min(n, 2000))], lambda k: "north")
    staged = sorted(e["key"] for e in get("GET", "/datasets/big/edits", params={"branch": "staging", "limit": 1000}).json()["items"])
    return {
        "example": lambda: get("GET", f"/datasets/big/examples/{key_of(rng.randrange(n))}"),
        "example_after": lambda: get("GET", f"/datasets/big/examples/{key_of(rng.randrange(n))}", params={"rev": "work"}),
        "page_examples": lambda: get(
            "GET", "/datasets/big/examples", params={"rev": "work", "limit": 100, "cursor": encode_cursor(key_of(rng.randrange(n)))}
        ),
        "page_commits": lambda: get("GET", "/datasets/big/commits", params={"rev": "work", "limit": 100}),
        "page_commits_deep": lambda: get("GET", "/datasets/big/commits", params={"rev": "work", "limit": 100, "cursor": deep}),
        "page_staged": lambda: get(
            "GET", "/datasets/big/edits", params={"branch": "staging", "limit": 100, "cursor": encode_cursor(rng.choice(staged))}
        ),
        "page_runs": lambda: get("GET", "/runs", params={"dataset": "big", "limit": 100}),
        "page_models": lambda: get("GET", "/datasets/big/models"),
        "page_users": lambda: get("GET", "/users", params={"limit": 100, "cursor": encode_cursor(f"user{rng.randrange(100):04d}")}),
        "page_diff": lambda: get("GET", "/datasets/big/diff", params={"a": "main", "b": "work", "limit": 100}),
        "page_compare": lambda: get(
            "GET", "/compare", params={"a": "big@1", "b": "big@2", "limit": 100, "cursor": encode_cursor(key_of(rng.randrange(n)))}
        ),
        "blame": lambda: get("GET", f"/datasets/big/blame/{rng.choice(touched)}", params={"rev": "work"}),
    }


def relabel_commit(size: Size, tag: str) -> None:
    """Once: a commit of 1,000 relabels (tag fixed) or of 1% of N (pct), with its whole diff (pages of 1,000)."""
    srv, n, rng, get = size.srv, size.n, size.rng, size.srv.call
    count = 1000 if tag == "fixed" else max(1, n // 100)
    branch = f"relabel-{tag}"
    get("POST", "/datasets/big/branches", json={"name": branch})
    stage_batch(srv, branch, [key_of(i) for i in sorted(rng.sample(range(n), count))], lambda k: "south")
    made = {}
    size.result[f"commit_{tag}"] = timed(
        lambda: made.update(get("POST", "/datasets/big/commits", json={"branch": branch, "message": tag}).json())
    )
    head = made["commit"]["id"]

    def whole_diff() -> None:
        cursor = None
        while True:
            page = get("GET", "/datasets/big/diff", params={"a": f"{head}~1", "b": head, "limit": 1000, "cursor": cursor}).json()
            cursor = page["next_cursor"]
            if not cursor:
                return

    size.result[f"diff_{tag}"] = timed(whole_diff)
    log(f"[n={n:,}] commit of {count:,} relabels {size.result[f'commit_{tag}']:.2f} s, its diff {size.result[f'diff_{tag}']:.2f} s")


def bench(args, root: Path, sizes: list[int]) -> list[dict]:
    """Set every size up (servers kept running), then sample each path on all sizes in turn."""
    ready: list[Size] = []
    try:
        for n in sizes:
            ready.append(Size(n, args, root))
        for name, _ in PATHS:
            for size, figures in zip(ready, interleaved([s.paths[name] for s in ready], args.samples)):
                size.result[name] = figures
                log(f"[n={size.n:,}] {name}: p50 {figures[0]:.1f} ms, p99 {figures[1]:.1f} ms")
        for tag in ("fixed", "pct"):  # the sizes one after the other, for each kind of commit
            for size in ready:
                relabel_commit(size, tag)
        return [s.result for s in ready]
    finally:
        for size in ready:
            size.close()


def report(results: list[dict], args) -> bool:
    small, large = results[0], results[-1]
    sizes = " | ".join(f"{r['n']:,} p50 / p99 ms" for r in results)
    print(f"\n| path | {sizes} | {large['n']:,} / {small['n']:,} (p50) | goal | result |")
    print("|---|" + "---:|" * len(results) + "---:|---|---|")
    passed = True
    for name, label in PATHS:
        ratio = large[name][0] / small[name][0]
        ok = ratio <= RATIO_GOAL or len(results) == 1
        passed &= ok
        cells = " | ".join(f"{r[name][0]:.1f} / {r[name][1]:.1f}" for r in results)
        print(f"| {label} | {cells} | {ratio:.2f}x | ≤ {RATIO_GOAL:g}x | {'PASS' if ok else 'FAIL'} |")
    for name, label in ONCE:
        cells = " | ".join(f"{r[name]:.2f} s" for r in results)
        ratio = large[name] / small[name]
        fixed = name.endswith("fixed")
        ok = not fixed or ratio <= RATIO_GOAL or len(results) == 1
        passed &= ok
        verdict = ("PASS" if ok else "FAIL") if fixed else "—"
        print(f"| {label} | {cells} | {ratio:.2f}x | {'≤ 1.5x' if fixed else 'O(changes)'} | {verdict} |")
    print("\n| N | import s | with checkpoint s | server peak private MiB | server peak total MiB | goal | result |")
    print("|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        imp = r["import"]
        ok = imp["private_mb"] < MEMORY_GOAL_MB
        passed &= ok
        print(
            f"| {r['n']:,} | {imp['seconds']:.1f} | {imp['with_checkpoint']:.1f} | {imp['private_mb']} | {imp['total_mb']} "
            f"| private < {MEMORY_GOAL_MB} MB | {'PASS' if ok else 'FAIL'} |"
        )
    per_row = ", ".join(f"{r['commit_pct'] / max(1, r['n'] // 100) * 1e6:.0f} µs" for r in results)
    print(
        f"\n(seed {args.seed}, {args.samples} samples per path, {args.commits} commits on the branch; the 1% commit is "
        f"O(changes) by design: its per-row time is {per_row})"
    )
    return passed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, action="append", help="dataset size; repeat (default 100000, 1000000, 10000000)")
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--commits", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path)
    args = p.parse_args()
    sizes = sorted(args.n or [100_000, 1_000_000, 10_000_000])
    root = args.workdir or Path(tempfile.mkdtemp(prefix="s2-scale-"))
    results = bench(args, root, sizes)
    (root / "results.json").write_text(json.dumps(results, indent=1))
    return 0 if report(results, args) else 1


if __name__ == "__main__":
    sys.exit(main())
