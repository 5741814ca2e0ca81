"""Dataset-versioning benchmark: s2 against DVC, side by side in one run.

    python bench/versioning.py [--n 100000 ...] [--seed 0] [--skip-dvc] [--skip-s2] [--served]
                               [--workdir DIR] [--keep]

For each N it generates a seeded image dataset (data/images/*.png of ~1 KB, data/labels.csv
with key,label,image), then times, through each tool's CLI: the initial import, a 1% relabel
+ commit, adding 1% new examples + commit, the diffs of those two commits, and an export of
the first version. It prints a markdown table (seconds, peak RSS, store growth, dvc/s2
ratios and PASS/FAIL against the goals) ready to paste into bench/README.md.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _checkout as checkouts
from _harness import CommandFailed, Dataset, Measured
from _tools import DvcTool, S2ServedTool, S2Tool

BENCH = Path(__file__).resolve().parent
S2_EXE = BENCH.parent / ".venv" / "bin" / "s2"
DVC_BIN = BENCH / ".venv-dvc" / "bin"
MARKER = ".s2-versioning-bench"
FRACTION = 0.01
STORE_SLACK = 64 * 1024  # the "small constant" allowed on top of 2x the changed rows' bytes
FAST_S, FAST_RATIO, SCALE_RATIO = 1.0, 20.0, 1.5
FIXED_ROWS = 1000  # the scaling goal compares the same change (this many relabels) at each N
GOAL_MIN_N = 100_000  # the goals are stated for N = 100,000 and 1,000,000; smaller N: n/a

STEPS = {  # step id -> label in the table
    "import": "1 import",
    "relabel": "2 relabel 1% + commit",
    "add": "3 add 1% + commit",
    "diff12": "4a diff v1..v2 (relabel)",
    "diff23": "4b diff v2..v3 (add)",
    "export": "5 export v1",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def prepare_dir(path: Path) -> None:
    """Create an empty run directory; wipe a previous run's only if it carries our marker."""
    if path.exists():
        if not (path / MARKER).exists():
            sys.exit(f"error: {path} exists and was not made by this benchmark; pick another --workdir")
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MARKER).touch()


def bench_one(n: int, args, root: Path) -> dict:
    """Run every step at size n; returns {step: {tool: (Measured, store growth)}, ...}."""
    wd = root / f"n{n}"
    prepare_dir(wd)
    data = Dataset(args.seed, wd / "repo" / "data")
    t0 = time.perf_counter()
    data.generate(n)
    log(f"[n={n}] generated {n} images + labels.csv in {time.perf_counter() - t0:.1f} s under {wd}")
    tools = [] if args.skip_s2 else [(S2ServedTool if args.served else S2Tool)(S2_EXE, wd)]
    if not args.skip_dvc:
        tools.append(DvcTool(DVC_BIN, wd, wd / "repo"))
    for tool in tools:
        tool.setup()
    res: dict = {"n": n, "tools": tools, "checks": [], "steps": {}}

    def measure(step: str, fn) -> dict:
        infos = {}
        for tool in tools:
            tool.step = step
            before = tool.store_bytes()
            out = fn(tool)
            m, infos[tool.name] = out if isinstance(out, tuple) else (out, None)
            res["steps"].setdefault(step, {})[tool.name] = (m, tool.store_bytes() - before)
            log(f"[n={n}] {tool.name:3} {STEPS[step]}: {m.seconds:.3f} s, peak {m.peak_kib / 1024:.0f} MiB")
        return infos

    def check(what: str, ok: bool, got) -> None:
        res["checks"].append(f"{'ok' if ok else 'CHECK FAILED'}: n={n} {what} (got {got})")

    measure("import", lambda t: t.import_(data.labels_csv))
    res["edited"], res["changed_bytes"] = data.relabel(FRACTION, wd / "edits.csv")
    measure("relabel", lambda t: t.relabel(wd / "edits.csv"))
    if not args.skip_s2:
        res["relabel_commit"] = _commit_seconds(tools[0], "relabel")
    added = data.add(FRACTION, wd / "new.csv")
    measure("add", lambda t: t.add(wd / "new.csv"))
    d12 = measure("diff12", lambda t: t.diff(t.revs[0], t.revs[1]))
    d23 = measure("diff23", lambda t: t.diff(t.revs[1], t.revs[2]))
    ex = measure("export", lambda t: t.export(t.revs[0], wd / f"export-{t.name}"))
    for tool in tools:
        shutil.rmtree(wd / f"export-{tool.name}", ignore_errors=True)  # free the disk early
    s2 = next((t for t in tools if t.name == "s2"), None)
    if s2 is not None:  # the same change at every N: a fixed number of relabels, for the scaling goal
        data.relabel(FIXED_ROWS / n, wd / "fixed.csv")
        s2.step = "fixed"
        s2.relabel(wd / "fixed.csv")
        res["fixed_commit"] = _commit_seconds(s2, "fixed")
        log(f"[n={n}] s2  relabel {FIXED_ROWS} rows: commit {res['fixed_commit']:.3f} s")
        if not args.skip_checkout:
            peers = n <= args.checkout_peers_max_n
            res["checkout"] = checkouts.compare(s2, s2.revs[:4], wd, lfs=not args.skip_lfs, peers=peers)
            for tool, m in res["checkout"].items():
                if isinstance(m, dict):
                    log(f"[n={n}] {tool} checkout v1->v3 {m['forth'].seconds:.3f} s, v3->v1 {m['back'].seconds:.3f} s")
            if "fixed_forth" in res["checkout"]["s2"]:
                m = res["checkout"]["s2"]
                log(
                    f"[n={n}] s2 checkout of {FIXED_ROWS} relabels and back {m['fixed_forth'].seconds:.3f} + {m['fixed_back'].seconds:.3f} s"
                )
            if peers:
                check("s2 checkout holds the same files as git's", res["checkout"]["same_files"], res["checkout"]["same_files"])
    if "s2" in d12:
        want = {"added": 0, "removed": 0, "relabeled": res["edited"], "modified": 0}
        check(f"s2 diff v1..v2 == {want}", d12["s2"] == want, d12["s2"])
        want = {"added": added, "removed": 0, "relabeled": 0, "modified": 0}
        check(f"s2 diff v2..v3 == {want}", d23["s2"] == want, d23["s2"])
        check(f"s2 export v1 has {n} files", ex["s2"][0] == n, ex["s2"][0])
        check("s2 export v1 files are *.png (torchvision's ImageFolder skips other names)", ex["s2"][1] == n, ex["s2"][1])
    if "DVC" in d12:
        check("dvc diff v1..v2 lists data/labels.csv modified", d12["DVC"]["labels.csv modified"], d12["DVC"])
        check(f"dvc diff v2..v3 adds {added} files", d23["DVC"].get("added") == added, d23["DVC"])
        check(f"dvc get v1 has {n} PNGs", ex["DVC"] == (n, n), ex["DVC"])
    res["dvc_side"] = next((t.side_bytes() for t in tools if t.name == "DVC"), None)
    for tool in tools:
        if isinstance(tool, S2ServedTool):
            res["server_peak_kib"] = tool.server_peak_kib()
            tool.close()
    if not args.keep:
        shutil.rmtree(wd)
    return res


def fmt_s(m: Measured | None) -> str:
    return "—" if m is None else f"{m.seconds:.3f}" if m.seconds < 10 else f"{m.seconds:.1f}"


def fmt_b(b: int | None) -> str:
    if b is None:
        return "—"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(b) >= size:
            return f"{b / size:.1f} {unit}"
    return f"{b} B"


def goal(step: str, res: dict, s2, dvc) -> tuple[str, str]:
    """The goal text of a step and PASS/FAIL (checking only what was measured)."""
    s2m, s2d = s2 or (None, None)
    dvcm = dvc[0] if dvc else None
    ratio = dvcm.seconds / s2m.seconds if s2m and dvcm else None
    limit = 2 * res.get("changed_bytes", 0) + STORE_SLACK
    if step == "import":
        text, ok = "s2 ≤ DVC add+commit", [] if ratio is None else [ratio >= 1]
    elif step not in ("relabel", "diff12"):
        return "", ""
    else:
        commit_s = res.get("relabel_commit") if step == "relabel" else None
        text, ok = relabel_goal(step, s2m, s2d, ratio, limit, commit_s)
    if res["n"] < GOAL_MIN_N:
        return text, "n/a"
    return text, "—" if not ok else "PASS" if all(ok) else "FAIL"


def _commit_seconds(tool, step: str) -> float:
    """Seconds of the `s2 commit` command of a step (staging with `s2 label` excluded)."""
    return next(m.seconds for st, cmd, m in tool.commands if st == step and cmd.split()[1:2] == ["commit"])


def relabel_goal(step: str, s2m, s2d, ratio, limit, commit_s: float | None = None) -> tuple[str, list[bool]]:
    """Goal text and verdicts of the relabel commit (the `s2 commit` command) and of its diff."""
    seconds = commit_s if commit_s is not None else s2m.seconds if s2m else None
    text = f"{'commit ' if commit_s is not None else ''}< {FAST_S:g} s, ≥ {FAST_RATIO:g}x DVC"
    ratio = ratio * s2m.seconds / seconds if ratio is not None and commit_s is not None else ratio
    ok = [] if seconds is None else [seconds < FAST_S] + ([] if ratio is None else [ratio >= FAST_RATIO])
    if step == "relabel":
        text += f", Δ ≤ {fmt_b(limit)}"
        ok += [] if s2d is None else [s2d <= limit]
    return text, ok


def report(results: list[dict], args, wall: float) -> bool:
    """Print the markdown tables and notes; return whether every goal and check passed."""
    print("\n| N | step | s2 s | DVC s | DVC/s2 | DVC push s | s2 peak MiB | DVC peak MiB | s2 store Δ | DVC store Δ | goal | result |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    passed = True
    for res in results:
        for step, label in STEPS.items():
            s2, dvc = res["steps"][step].get("s2"), res["steps"][step].get("DVC")
            ratio = f"{dvc[0].seconds / s2[0].seconds:.1f}x" if s2 and dvc else "—"
            push = next((t.push_seconds.get(step) for t in res["tools"] if t.name == "DVC"), None)
            text, verdict = goal(step, res, s2, dvc)
            passed &= verdict != "FAIL"
            peak = lambda x: "—" if x is None else f"{x[0].peak_kib / 1024:.0f}"  # noqa: E731
            print(
                f"| {res['n']:,} | {label} | {fmt_s(s2 and s2[0])} | {fmt_s(dvc and dvc[0])} | {ratio} "
                f"| {'—' if push is None else f'{push:.2f}'} | {peak(s2)} | {peak(dvc)} "
                f"| {fmt_b(s2 and s2[1])} | {fmt_b(dvc and dvc[1])} | {text} | {verdict} |"
            )
    with_s2 = [r for r in results if "fixed_commit" in r]
    for res in with_s2:
        print(
            f"\ns2 commit of {FIXED_ROWS:,} relabels at N={res['n']:,}: {res['fixed_commit']:.3f} s; "
            f"of the 1% relabel: {res['relabel_commit']:.3f} s"
        )
    if len(with_s2) > 1:
        base = with_s2[0]
        for res in with_s2[1:]:
            r = res["fixed_commit"] / base["fixed_commit"]
            passed &= r <= SCALE_RATIO
            print(
                f"s2 commit of the same {FIXED_ROWS:,} relabels, N={res['n']:,} vs N={base['n']:,}: {r:.2f}x "
                f"(goal ≤ {SCALE_RATIO:g}x): {'PASS' if r <= SCALE_RATIO else 'FAIL'}"
            )
    print(f"""
Notes ({args.versions}, {platform.platform()}, {platform.processor() or platform.machine()}, Python {platform.python_version()},
seed {args.seed}, whole run {wall:.0f} s):
- s2 mode: {
        "served: every s2 command is `s2 --server URL --token T ...` against `s2 serve` on this machine "
        "(SQLite store), started before the run; the default branch takes no direct edits over the API, so the relabel is "
        "`s2 branch` + `s2 label --branch` + `s2 commit --branch` + `s2 merge --into main` (fast-forward); the server's own peak RSS: "
        + ", ".join(f"N={r['n']:,}: {r.get('server_peak_kib', 0) / 1024:.0f} MiB" for r in results)
        + " (not in s2 peak)"
        if args.served
        else "embedded: the CLI works on the store itself (no server)"
    }.
- Seconds: wall clock of each CLI command end to end (a subprocess, interpreter start-up included),
  summed over the step's commands. Peak: the largest `ru_maxrss` of the command's process tree
  (`os.wait4`), max over the step's commands. Store Δ: growth of `S2_HOME` (SQLite + blobs) for s2;
  of `.dvc/cache` + `.git` + the local remote (after `dvc push`) for DVC. Apparent file sizes,
  but an SQLite database counts its live pages (WAL content included; -wal/-shm files not).
- s2 steps: `s2 dataset create` + `s2 import data/labels.csv`; `s2 label --file edits.csv` +
  `s2 commit`; `s2 import new.csv` (upsert); `s2 diff --json`; `s2 export --format imagefolder`.
- DVC steps: `dvc add data` + `git commit` (core.autostage stages data.dvc); `dvc push` to a local
  remote follows each commit, timed in its own column and not in DVC s or the ratio (conservative
  for s2), but counted in DVC store Δ. Edits of data/ (rewriting labels.csv, new images) are made
  by the harness, untimed; s2's relabel time includes staging with `s2 label --file`.
- DVC diff is `dvc diff --json A B`: file level only (it says data/labels.csv changed, not which
  labels); a label-level diff would also need both labels.csv versions fetched and compared.
- DVC export is `dvc get REPO data --rev V1 -o OUT` (flat files + labels.csv); s2 writes OUT/<label>/<file>.
- Not in DVC store Δ: DVC's hash and data-index databases (site cache + .dvc/tmp), at the end
  {", ".join(f"N={r['n']:,}: {fmt_b(r['dvc_side'])}" for r in results if r["dvc_side"] is not None) or "n/a"}.
- Changed rows' bytes (relabel goal) = Σ len(key) + len(label) + 64 over relabeled rows,
  {", ".join(f"N={r['n']:,}: {r['edited']} rows, {fmt_b(r['changed_bytes'])}" for r in results)};
  slack {fmt_b(STORE_SLACK)}. Goals are judged at N ≥ {GOAL_MIN_N:,} only (n/a below).""")
    with_checkout = [r for r in results if "checkout" in r]
    if with_checkout:
        print("\nWorking folder: from v1 to v3 (1% relabeled, then 1% added) and back, on a tree already at v1:\n")
        print(
            "| N | tool | v1 -> v3 s | v3 -> v1 s | both s | s2 full checkout s | goal | result |\n|---:|---|---:|---:|---:|---:|---|---|"
        )
        for res in with_checkout:
            c = res["checkout"]
            s2_both = c["s2"]["forth"].seconds + c["s2"]["back"].seconds
            for tool in ("s2", "git", "git-lfs"):
                if tool not in c:
                    continue
                both = c[tool]["forth"].seconds + c[tool]["back"].seconds
                text, verdict = "", ""
                if tool == "git":
                    text, ok = "s2 ≤ git", s2_both <= both
                    verdict = "n/a" if res["n"] < GOAL_MIN_N else "PASS" if ok else "FAIL"
                    passed &= verdict != "FAIL"
                full = f"{c['s2']['full'].seconds:.1f}" if tool == "s2" else "—"
                print(
                    f"| {res['n']:,} | {tool} | {c[tool]['forth'].seconds:.3f} | {c[tool]['back'].seconds:.3f} | {both:.3f} | {full} | {text} | {verdict} |"
                )
        if len(with_checkout) > 1:
            base = with_checkout[0]["checkout"]["s2"]
            for res in with_checkout[1:]:
                c = res["checkout"]["s2"]
                r = (c["forth"].seconds + c["back"].seconds) / (base["forth"].seconds + base["back"].seconds)
                print(f"s2 checkout v1 -> v3 -> v1 (2% of N files change), N={res['n']:,} vs N={with_checkout[0]['n']:,}: {r:.2f}x")
                r = (c["fixed_forth"].seconds + c["fixed_back"].seconds) / (base["fixed_forth"].seconds + base["fixed_back"].seconds)
                passed &= r <= SCALE_RATIO
                print(
                    f"s2 checkout of the same change ({FIXED_ROWS} relabels) and back, N={res['n']:,} vs N={with_checkout[0]['n']:,}: "
                    f"{r:.2f}x (goal ≤ {SCALE_RATIO:g}x): {'PASS' if r <= SCALE_RATIO else 'FAIL'}"
                )
    print("\nPer command (seconds, peak MiB):\n\n| N | tool | step | command | s | peak MiB |\n|---:|---|---|---|---:|---:|")
    for res in results:
        for tool in res["tools"]:
            for step, cmd, m in tool.commands:
                print(f"| {res['n']:,} | {tool.name} | {STEPS.get(step, step)} | `{cmd}` | {m.seconds:.3f} | {m.peak_kib / 1024:.0f} |")
    for res in results:
        for line in res["checks"]:
            passed &= line.startswith("ok")
            print(line)
    return passed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, action="append", help="dataset size; repeat for several (default 100000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-dvc", action="store_true", help="time s2 only")
    p.add_argument("--skip-s2", action="store_true", help="time DVC only")
    p.add_argument(
        "--served", action="store_true", help="run s2's CLI against `s2 serve` (started on the same store) instead of on the store directly"
    )
    p.add_argument("--skip-checkout", action="store_true", help="skip the working-folder step (s2 checkout vs git, git-lfs)")
    p.add_argument(
        "--skip-lfs", action="store_true", help="leave git-lfs out of the working-folder step (its migration of 1M files takes long)"
    )
    p.add_argument(
        "--checkout-peers-max-n",
        type=int,
        default=100_000,
        help="time git and git-lfs in the working-folder step only up to this N (above it, s2's moves alone, for the scaling goal)",
    )
    p.add_argument("--workdir", type=Path, help="where the runs live (default: a new temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work directories")
    args = p.parse_args()
    sizes = args.n or [100_000]
    if args.skip_s2 and args.skip_dvc:
        sys.exit("error: --skip-s2 and --skip-dvc leave nothing to run")
    if not args.skip_s2 and not S2_EXE.exists():
        sys.exit(f"error: s2 not found at {S2_EXE}; install the project into .venv, or pass --skip-s2")
    if not args.skip_dvc and not (DVC_BIN / "dvc").exists():
        log("creating bench/.venv-dvc with bench/setup_dvc.sh ...")
        subprocess.run(["bash", str(BENCH / "setup_dvc.sh")], check=True)
    if not args.skip_checkout and not args.skip_lfs and not args.skip_s2 and not checkouts.has_git_lfs():
        log("installing git-lfs with bench/setup_git_lfs.sh ...")
        subprocess.run(["bash", str(BENCH / "setup_git_lfs.sh")], check=True)
    args.versions = "s2" if not args.skip_s2 else ""
    if not args.skip_dvc:
        dvc_version = subprocess.run([DVC_BIN / "dvc", "--version"], capture_output=True, text=True).stdout.strip()
        args.versions = " vs ".join(filter(None, [args.versions, f"DVC {dvc_version}"]))
    root = args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="s2-bench-"))
    start, results = time.perf_counter(), []
    try:
        for n in sizes:
            results.append(bench_one(n, args, root))
    except CommandFailed as e:
        log(f"error: {e}\n(work directory kept: {root})")
        return 2
    if not args.keep and not args.workdir:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if report(results, args, time.perf_counter() - start) else 1


if __name__ == "__main__":
    sys.exit(main())
