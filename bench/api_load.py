"""API load benchmark: N simulated labelers against `s2 serve` and against Label Studio, side by side in one run.

    .venv/bin/python bench/api_load.py [--labelers 50,200] [--duration 60] [--workers 2] [--skip-peer] [--quick]
                                       [--think-ms 0,1000] [--generators 1] [--examples 5000] [--pg URL] [--keep]

Both servers run on PostgreSQL (a private database each, dropped after) with the same 5,000 text examples. Each
simulated labeler has its own user, token and keep-alive connection, and loops without pause for the duration
(after an unmeasured warm-up): fetch its next example, then label it: in s2 `GET /api/v1/datasets/D/examples/K?rev=
labeling` then `PUT /api/v1/datasets/D/edits/K?branch=labeling` with the example's `version`; in Label Studio
`GET /api/tasks/ID` then `POST /api/tasks/ID/annotations/` with a Choices result. Labeler i of N takes keys i, i+N,
i+2N, ... so labelers do not collide. The labelers run in separate load-generator processes (asyncio + aiohttp).
Afterwards every acknowledged edit is looked up in the database (s2: `s2 status --json`; Label Studio: the
project's JSON export). Prints a markdown table with PASS/FAIL for the goal (p99 < 50 ms at 50 labelers, no lost
edit, no error); exit 0 when it passed, 1 when not, 2 when a command failed, 3 when other work kept the machine
busy (the verdict, marked *, is then not conclusive).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _load_env import (
    BENCH,
    DEFAULT_PG,
    LS_BIN,
    PYTHON,
    S2_EXE,
    CommandFailed,
    CpuMonitor,
    Databases,
    Process,
    S2System,
    cleanup_tmp,
    free_port,
    log,
    write_examples,
)
from _load_ls import LabelStudioSystem

PY_SPY = PYTHON.parent / "py-spy"
GOAL_P99_MS, GOAL_N = 50.0, 50
BUSY_CORES = 0.25  # other work above this many cores on average during a measurement: not conclusive
GET, PUT, NETWORK_ERROR = 0, 1, 0
OK = {"s2": {GET: 200, PUT: 200}, "ls": {GET: 200, PUT: 201}, "echo": {GET: 200, PUT: 200}}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_load(system, n: int, args, tmp: Path, monitor: CpuMonitor | None) -> dict:
    """One measurement: n labelers in args.generators processes; returns the merged records and the CPU split."""
    keys = system.task_keys()
    start_at = time.time() + 3.0  # time for the generators to start and open their sessions
    plan = system.plan(n, keys, args, start_at)
    gens = []
    for g in range(args.generators):
        part = dict(plan, labelers=plan["labelers"][g :: args.generators])
        plan_file, out_file = tmp / f"plan-{system.key}-{n}-{g}.json", tmp / f"out-{system.key}-{n}-{g}.json"
        plan_file.write_text(json.dumps(part))
        gens.append(
            (
                subprocess.Popen([str(PYTHON), str(BENCH / "_load_gen.py"), str(plan_file), str(out_file)], stdin=subprocess.DEVNULL),
                out_file,
            )
        )
    spy = None
    if monitor is not None:
        monitor.server_pids = system.server_pids()
        monitor.generator_pids = {p.pid for p, _ in gens}
        time.sleep(max(0.0, start_at + args.warmup - time.time()))
        monitor.start()
        profile_file = tmp / f"profile-s2-{n}-{args.think_ms:g}.txt"
        if args.profile and system.key == "s2":  # sample the server's Python stacks over the measured window
            spy = subprocess.Popen(
                [
                    str(PY_SPY),
                    "record",
                    "-p",
                    str(system.server.proc.pid),
                    "--subprocesses",
                    "--gil",
                    "--nolineno",
                    "--full-filenames",
                    "--format",
                    "raw",
                    "--rate",
                    "100",
                    "--nonblocking",
                    "--duration",
                    str(int(args.duration)),
                    "--output",
                    str(profile_file),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
    limit = start_at + args.warmup + args.duration + args.timeout + 60
    for proc, _ in gens:
        try:
            proc.wait(timeout=max(1.0, limit - time.time()))
        except subprocess.TimeoutExpired:
            for p, _ in gens:
                p.kill()
            raise CommandFailed(f"load generator of {system.name} at N={n} did not finish in time") from None
        if proc.returncode != 0:
            raise CommandFailed(f"load generator of {system.name} at N={n} exited {proc.returncode}")
    cpu = monitor.stop() if monitor is not None else None
    profile = None
    if spy is not None:
        spy.wait(timeout=60)
        from _load_profile import summarize as profile_summary

        profile = profile_summary(str(profile_file)) if profile_file.exists() else "(py-spy wrote nothing)"
    outs = [json.loads(f.read_text()) for _, f in gens]
    records = [r for o in outs for r in o["records"]]
    acks = [a for o in outs for a in o["acks"]]
    return {"records": records, "acks": acks, "cpu": cpu, "gen_cpu_s": sum(o["cpu_s"] for o in outs), "profile": profile}


def summarize(system_key: str, res: dict, args) -> dict:
    """Throughput, latency percentiles and error counts of one measurement."""
    lo, hi = args.warmup, args.warmup + args.duration
    measured = [r for r in res["records"] if lo <= r[0] < hi]
    ok = OK[system_key]
    good = [r for r in measured if r[2] == ok[r[1]]]
    errors = [r for r in res["records"] if r[2] != ok[r[1]] and not (system_key == "s2" and r[2] == 409)]
    statuses: dict[str, int] = {}
    for r in errors:
        name = "no answer" if r[2] == NETWORK_ERROR else str(r[2])
        statuses[name] = statuses.get(name, 0) + 1
    lat = [r[3] for r in measured]
    by_kind = {kind: [r[3] for r in measured if r[1] == kind] for kind in (GET, PUT)}
    return {
        "rps": len(good) / args.duration,
        "edits_s": sum(1 for r in good if r[1] == PUT) / args.duration,
        "p50": pct(lat, 0.50),
        "p95": pct(lat, 0.95),
        "p99": pct(lat, 0.99),
        "max": max(lat, default=float("nan")),
        "get_p50": pct(by_kind[GET], 0.5),
        "get_p99": pct(by_kind[GET], 0.99),
        "put_p50": pct(by_kind[PUT], 0.5),
        "put_p99": pct(by_kind[PUT], 0.99),
        "errors": len(errors),
        "statuses": statuses,
        "conflicts": sum(1 for r in res["records"] if system_key == "s2" and r[2] == 409),
        "requests": len(res["records"]),
        "client_us": res["gen_cpu_s"] / max(1, len(res["records"])) * 1e6,
    }


def calibrate(args, tmp: Path, n: int) -> dict:
    """The load generator against a no-op HTTP server: its own ceiling and latency floor at n connections."""
    port = free_port()
    echo = Process("echo", [PYTHON, BENCH / "_load_gen.py", "--echo", port], dict(os.environ), tmp / "echo.log", threads=1)
    try:
        echo.wait_for("echo listening", 30)

        class Echo:
            name, key, base, tokens = "echo", "echo", f"http://127.0.0.1:{port}", ["-"] * n

            def task_keys(self):
                return [f"k{i}" for i in range(5000)]

            def server_pids(self):
                return {echo.proc.pid}

            plan = S2System.plan

        short = argparse.Namespace(**{**vars(args), "duration": min(args.duration, 5.0), "warmup": 1.0, "think_ms": 0})
        res = run_load(Echo(), n, short, tmp, None)
        return summarize("echo", res, short) | {"n": n}
    finally:
        echo.stop()


def bench_system(system, sizes: list[int], thinks: list[float], args, tmp: Path, results: list, label: str) -> None:
    for think in thinks:
        for n in sizes:
            run_args = argparse.Namespace(**{**vars(args), "think_ms": think})
            bench_one(system, n, run_args, tmp, results, label)


def bench_one(system, n: int, args, tmp: Path, results: list, label: str) -> None:
    """One row: reset the system, run the labelers, read PostgreSQL's counters, verify the acknowledged edits."""
    where = f"[{label}] N={n}, think {args.think_ms:g} ms"
    system.reset()
    log(f"{where}: {args.warmup:g} s warm-up + {args.duration:g} s measured ...")
    monitor = CpuMonitor([system.db])
    before = system.dbs.stats(system.db)
    res = run_load(system, n, args, tmp, monitor)
    time.sleep(1.0)  # PostgreSQL flushes its counters about once a second
    after = system.dbs.stats(system.db)
    summary = summarize(system.key, res, args)
    check = system.verify(res["acks"])
    results.append(
        {
            "system": label,
            "key": system.key,
            "n": n,
            "think": args.think_ms,
            **summary,
            "verify": check,
            "cpu": res["cpu"],
            "profile": res["profile"],
            "db": {k: after[k] - before[k] for k in after},
        }
    )
    log(
        f"{where}: {summary['rps']:.0f} req/s, p50 {summary['p50']:.1f} ms, p99 {summary['p99']:.1f} ms, "
        f"{summary['errors']} errors {summary['statuses'] or ''}, {summary['conflicts']} conflicts, "
        f"{check['acked']} acknowledged, {check['lost']} lost; CPU (cores): "
        + ", ".join(f"{k} {v:.2f}" for k, v in res["cpu"].items() if k != "wall")
    )


def fmt(v: float, digits: int = 1) -> str:
    return "—" if v != v else f"{v:,.{digits}f}"


def report(results: list[dict], args, calib: dict | None, versions: str, wall: float) -> str:
    """Print the table and notes; 'pass', 'fail', or 'busy' (other work made the timings unreliable)."""
    busy = [r for r in results if r["cpu"]["other"] > BUSY_CORES] if results else []
    star = "*" if busy else ""
    peers = {(r["n"], r["think"]): r for r in results if r["key"] == "ls"}
    print(
        f"\n## API load: s2 vs Label Studio, N labelers\n\n{versions}; {platform.machine()}, "
        f"{args.cores} cores, Python {platform.python_version()}; PostgreSQL on loopback for both. "
        f"{args.warmup:g} s warm-up + {args.duration:g} s measured per row, "
        f"{args.examples:,} text examples, {args.generators} load-generator process(es). Whole run {wall:.0f} s.\n"
    )
    print(
        "| system | N | think ms | requests/s | p50 ms | p95 ms | p99 ms | errors | conflicts | acknowledged | lost "
        "| s2/LS requests/s | s2/LS p99 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        peer = peers.get((r["n"], r["think"])) if r["key"] == "s2" else None
        ratio_t = f"{r['rps'] / peer['rps']:.2f}x" if peer and peer["rps"] else "—"
        ratio_p = f"{r['p99'] / peer['p99']:.2f}x" if peer else "—"
        print(
            f"| {r['system']} | {r['n']} | {r['think']:g} | {fmt(r['rps'], 0)} | {fmt(r['p50'])} | {fmt(r['p95'])} | {fmt(r['p99'])} "
            f"| {r['errors']} | {r['conflicts']} | {r['verify']['acked']:,} | {r['verify']['lost']} "
            f"| {ratio_t} | {ratio_p} |"
        )
    passed = True
    s2_rows = [r for r in results if r["key"] == "s2"]
    goal_rows = [r for r in s2_rows if r["n"] == GOAL_N]
    print()
    for r in s2_rows:
        ok = r["verify"]["lost"] == 0 and r["errors"] == 0
        checks = [f"{r['verify']['lost']} lost", f"{r['errors']} errors"]
        if r["n"] == GOAL_N:
            ok &= r["p99"] < GOAL_P99_MS
            checks.insert(0, f"p99 {r['p99']:.1f} ms {'<' if r['p99'] < GOAL_P99_MS else '≥'} {GOAL_P99_MS:g} ms")
        passed &= ok
        print(f"Goal, {r['system']} at N={r['n']}, think {r['think']:g} ms: {', '.join(checks)}: {('PASS' if ok else 'FAIL') + star}")
    if not goal_rows:
        print(f"Goal (p99 < {GOAL_P99_MS:g} ms at N={GOAL_N}): not measured (no s2 run at N={GOAL_N})")
    print("\nPer request kind (ms) and where the CPU went (cores on average over the measured window):\n")
    print(
        "| system | N | think ms | fetch p50 | fetch p99 | label p50 | label p99 | max | edits/s | DB xacts/req | DB sessions/req "
        "| server CPU ms/req | server | PostgreSQL | generator | client µs CPU/req | other work | machine busy |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        c = r["cpu"]
        print(
            f"| {r['system']} | {r['n']} | {r['think']:g} | {fmt(r['get_p50'])} | {fmt(r['get_p99'])} | {fmt(r['put_p50'])} "
            f"| {fmt(r['put_p99'])} | {fmt(r['max'])} | {fmt(r['edits_s'], 0)} "
            f"| {(r['db']['commits'] + r['db']['rollbacks']) / max(1, r['requests']):.2f} "
            f"| {r['db']['sessions'] / max(1, r['requests']):.3f} "
            f"| {fmt(1e3 * c.get('server', 0) / r['rps'] if r['rps'] else float('nan'))} | {c.get('server', 0):.2f} "
            f"| {c.get('postgres', 0):.2f} | {c.get('generator', 0):.2f} | {r['client_us']:.0f} "
            f"| {c.get('other', 0):.2f} | {c['machine']:.2f} |"
        )
    notes = []
    if calib:
        notes.append(
            f"Client ceiling: the same generator against a no-op HTTP server with {calib['n']} connections did "
            f"{calib['rps']:,.0f} requests/s at p50 {calib['p50']:.1f} / p99 {calib['p99']:.1f} ms, "
            f"{calib['client_us']:.0f} µs of client CPU per request (alone on the machine)."
        )
    notes += [
        "requests/s: answered requests that succeeded (fetch 200; label: s2 200, Label Studio 201) started in the "
        "measured window, per second; a cycle is one fetch + one label, so edits/s is about half of it. Latency: "
        "request written → whole body read, both kinds together. think ms 0: labelers loop without pause, so the "
        "server is saturated and every request waits behind the others: p50 ≈ N / requests/s (Little's law), "
        "whatever the server; think ms T > 0: each labeler pauses a seeded uniform 0.5-1.5 T after each label "
        "(starts staggered), a human-like pace at which latency is service time plus queueing.",
        "errors: any other status or no answer, over the whole run (warm-up included); conflicts: s2's 409 (the "
        "example changed since it was fetched), expected 0 since labelers never share a key. acknowledged: labels "
        "answered 200/201; lost: acknowledged but not in the database afterwards (s2: not staged with the last "
        "acknowledged label by that labeler at a version ≥ its acknowledgements, per `s2 status --json`; Label Studio: "
        "the annotation id missing from the project's JSON export or with another choice).",
        f"s2: `s2 serve --workers {args.workers}`, one labeler user and token each (added by an admin over the API), "
        "edits staged on branch `labeling` (main is protected over the API), every run from no staged edit. "
        "Label Studio: `label-studio start` (Django's threaded server, as the CLI runs it; its Docker image runs "
        "uwsgi instead), its default settings (a new database connection per request), legacy token auth, one user "
        "and token each, a new project with the same tasks for every run; it holds a PostgreSQL connection per "
        "request in flight, so beyond the server's max_connections its requests fail ('too many clients': 500s).",
        "DB xacts/req and sessions/req: PostgreSQL's counters for the system's database (pg_stat_database "
        "xact_commit + xact_rollback, sessions) over the whole run, warm-up included, per request sent.",
        "CPU columns come from /proc, sampled every second: server (the server process tree), PostgreSQL (backends of "
        "our databases + its background processes; Label Studio's per-request backends mostly escape the sampling), "
        "generator, other work (everything else: if above "
        f"{BUSY_CORES:g} cores the verdict is marked * and the run exits 3), machine busy (all CPU, /proc/stat).",
    ]
    if busy:
        busy_list = [f"{r['system']} N={r['n']} think {r['think']:g} ms: {r['cpu']['other']:.2f} cores" for r in busy]
        notes.append(
            f"**The machine was busy with other work during {len(busy)} measurement(s) "
            f"({', '.join(busy_list)}): "
            "timings are inflated, verdicts marked * are not conclusive; rerun on a quiet machine.**"
        )
    for r in results:
        if r["statuses"] or r["verify"]["lost"]:
            notes.append(
                f"{r['system']} N={r['n']} think {r['think']:g} ms: error statuses {r['statuses']}, lost sample {r['verify']['lost_sample']}"
            )
    print("\nNotes:\n\n" + "\n".join(f"- {n}" for n in notes))
    for r in results:
        if r.get("profile"):
            print(f"\n### Profile of the s2 server at N={r['n']}, think {r['think']:g} ms (py-spy, measured window)\n\n{r['profile']}")
    if not passed:
        return "fail"
    return "busy" if busy else "pass"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--labelers", default="50,200", help="comma-separated N (default 50,200)")
    p.add_argument("--duration", type=float, help="measured seconds per run (default 60; --quick 10)")
    p.add_argument("--warmup", type=float, help="unmeasured seconds before (default 5; --quick 2)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 10 s measured, 2 s warm-up")
    p.add_argument("--workers", type=int, default=2, help="`s2 serve --workers` (default 2)")
    p.add_argument(
        "--think-ms",
        default="0",
        help="comma-separated mean pauses of a labeler after each label, ms (default 0: back to back; e.g. 0,1000 for both)",
    )
    p.add_argument("--generators", type=int, default=1, help="load-generator processes (default 1)")
    p.add_argument("--timeout", type=float, default=30.0, help="a request unanswered this long is an error (s)")
    p.add_argument("--examples", type=int, default=5000)
    p.add_argument("--skip-peer", action="store_true", help="s2 only")
    p.add_argument("--skip-s2", action="store_true", help="Label Studio only")
    p.add_argument("--no-calibrate", action="store_true", help="skip the client-ceiling measurement")
    p.add_argument("--pg", default=DEFAULT_PG, help=f"PostgreSQL server URL, no database (default {DEFAULT_PG})")
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample the s2 server with py-spy (pip install py-spy into .venv) and print where its time goes",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir (server logs, generator output)")
    args = p.parse_args()
    args.duration = args.duration or (10.0 if args.quick else 60.0)
    args.warmup = args.warmup if args.warmup is not None else (2.0 if args.quick else 5.0)
    sizes = [int(x) for x in args.labelers.split(",") if x.strip()]
    thinks = [float(x) for x in args.think_ms.split(",") if x.strip()]
    args.cores = os.cpu_count()
    if args.skip_peer and args.skip_s2:
        sys.exit("error: --skip-peer and --skip-s2 leave nothing to run")
    if not S2_EXE.exists():
        sys.exit(f"error: s2 not found at {S2_EXE}; install the project into .venv")
    if args.profile and not PY_SPY.exists():
        sys.exit(f"error: --profile needs py-spy: {PY_SPY.parent / 'pip'} install py-spy")
    versions = subprocess.run([S2_EXE, "--version"], capture_output=True, text=True).stdout.strip()
    if not args.skip_peer:
        if not (LS_BIN / "label-studio").exists():
            log("creating bench/.venv-ls with bench/setup_label_studio.sh ...")
        subprocess.run(["bash", str(BENCH / "setup_label_studio.sh")], check=True)
        ls_version = subprocess.run(
            [LS_BIN / "python", "-c", "import label_studio; print(label_studio.__version__)"], capture_output=True, text=True
        ).stdout.strip()
        versions += f" vs Label Studio {ls_version}"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop the servers, drop the databases
    tmp = Path(tempfile.mkdtemp(prefix="s2-bench-api-"))
    dbs = Databases(args.pg)
    start, results, calib = time.perf_counter(), [], None
    systems = []
    try:
        csv_path = tmp / "examples.csv"
        examples = write_examples(csv_path, args.examples)
        if not args.no_calibrate:
            log(f"client ceiling: the generator against a no-op server, N={max(sizes)} ...")
            calib = calibrate(args, tmp, max(sizes))
        if not args.skip_s2:
            s2 = S2System(tmp, dbs, examples, max(sizes), workers=args.workers)
            systems.append(s2)
            log(f"s2: database, {args.examples} examples, branch, {max(sizes)} labelers; `s2 serve --workers {args.workers}` ...")
            s2.setup(csv_path)
            s2.start()
            bench_system(s2, sizes, thinks, args, tmp, results, "s2")
            s2.stop()
        if not args.skip_peer:
            limit = dbs.max_connections()
            if max(sizes) > limit - 20:
                log(
                    f"warning: Label Studio opens a PostgreSQL connection per request in flight: {max(sizes)} labelers can "
                    f"exhaust the server's max_connections ({limit}), and other users of {args.pg} may then be refused "
                    "('too many clients') while those runs last"
                )
            ls = LabelStudioSystem(tmp, dbs, examples, max(sizes))
            systems.append(ls)
            log("Label Studio: database, start (the first one migrates, ~35 s), users, a project per run ...")
            ls.setup(csv_path)
            ls.start()
            bench_system(ls, sizes, thinks, args, tmp, results, "Label Studio")
            ls.stop()
    except (CommandFailed, TimeoutError) as e:
        log(f"error: {e}")
        for system in systems:
            for proc in system.processes:
                log(f"--- {proc.name} log tail:\n{proc.tail()}")
        return 2
    finally:
        for system in systems:
            system.stop()
        dbs.drop_all()
        cleanup_tmp(tmp, args.keep)
    verdict = report(results, args, calib, versions, time.perf_counter() - start)
    return {"pass": 0, "fail": 1, "busy": 3}[verdict]


if __name__ == "__main__":
    sys.exit(main())
