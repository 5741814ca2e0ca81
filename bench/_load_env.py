"""The API load benchmark's world: private PostgreSQL databases, the two servers under test (`s2 serve` and
Label Studio), their users and data, the load-generator processes, and a CPU monitor that tells our work from
other work on the machine. Everything it starts is stopped, and every database it makes is dropped."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

from _training_env import CommandFailed, Process, log

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
S2_EXE = ROOT / ".venv" / "bin" / "s2"
PYTHON = ROOT / ".venv" / "bin" / "python"
LS_BIN = BENCH / ".venv-ls" / "bin"
DEFAULT_PG = os.environ.get("S2_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432")
DATASET, BRANCH = "loadtest", "labeling"
LABELS = [f"c{i}" for i in range(10)]
WORDS = (
    "the quick brown fox jumps over a lazy dog while labelers read every sentence of this corpus and pick "
    "one class for each short text before moving on to the next example in their queue"
).split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_examples(path: Path, n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """n seeded text examples (key, label, text of 12-30 words), written as CSV key,label,text."""
    rng = random.Random(seed)
    rows = [(f"ex{i:05d}", rng.choice(LABELS), " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 30)))) for i in range(n)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "label", "text"])
        w.writerows(rows)
    return rows


def _http():
    import httpx

    return httpx.Client(timeout=120, trust_env=False)


def wait_http(url: str, proc: Process, timeout: float, ok=lambda r: r.status_code == 200) -> None:
    """Block until url answers as ok says; CommandFailed if the process ends or time runs out."""
    import httpx

    deadline = time.monotonic() + timeout
    with _http() as client:
        while True:
            if proc.proc.poll() is not None:
                raise CommandFailed(f"{proc.name} exited {proc.proc.returncode}:\n{proc.tail()}")
            try:
                if ok(client.get(url, timeout=5)):
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise CommandFailed(f"{proc.name} not answering {url} after {timeout:.0f}s:\n{proc.tail()}")
            time.sleep(0.25)


def check(resp, what: str):
    if resp.status_code >= 300:
        raise CommandFailed(f"{what}: HTTP {resp.status_code}: {resp.text[:500]}")
    return resp.json() if resp.content else None


class Databases:
    """Private PostgreSQL databases on one server, dropped (WITH FORCE) when the benchmark ends."""

    def __init__(self, pg: str):
        self.pg, self.names = pg, []

    def _admin(self):
        from sqlalchemy import create_engine

        return create_engine(f"{self.pg}/postgres", isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})

    def create(self, prefix: str) -> str:
        from sqlalchemy import text

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        try:
            with self._admin().connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as e:  # any driver error: one line
            raise CommandFailed(f"cannot create a database on {self.pg}: {str(e).splitlines()[0]}") from None
        self.names.append(name)
        return name

    def stats(self, name: str) -> dict:
        """PostgreSQL's counters of a database: sessions opened, transactions committed and rolled back."""
        from sqlalchemy import text

        with self._admin().connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            row = conn.execute(
                text("SELECT sessions, xact_commit, xact_rollback FROM pg_stat_database WHERE datname = :d"), {"d": name}
            ).one()
        return {"sessions": row[0], "commits": row[1], "rollbacks": row[2]}

    def max_connections(self) -> int:
        from sqlalchemy import text

        with self._admin().connect() as conn:
            return int(conn.execute(text("SHOW max_connections")).scalar())

    def drop_all(self) -> None:
        from sqlalchemy import text

        engine = self._admin()
        for name in self.names:
            try:
                with engine.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            except Exception as e:
                log(f"warning: could not drop database {name}: {e}")
        self.names.clear()
        engine.dispose()


# -- CPU accounting --------------------------------------------------------------------------------
def _proc_table() -> dict[int, tuple[int, str, float, str]]:
    """pid -> (ppid, comm, cpu seconds, cmdline) of every process (kernel threads left out)."""
    tick = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        comm_end = stat.rfind(")")
        fields = stat[comm_end + 2 :].split()
        ppid = int(fields[1])
        if ppid == 2 or int(entry) == 2 or not cmdline:  # kernel threads
            continue
        table[int(entry)] = (ppid, stat[stat.find("(") + 1 : comm_end], (int(fields[11]) + int(fields[12])) / tick, cmdline)
    return table


class CpuMonitor:
    """Samples every process's CPU time once a second while a measurement runs, and splits the CPU used into
    groups: the server under test, the load generators, PostgreSQL (backends of our databases and its shared
    background processes), the rest of this benchmark, and other work. A process that both starts and ends
    between two samples is missed (LS opens a database connection per request: those backends' CPU is lost,
    which can only make "other" look smaller, never larger)."""

    def __init__(self, our_dbs: list[str]):
        self.our_dbs, self.me = our_dbs, os.getpid()
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self.groups: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.server_pids: set[int] = set()
        self.generator_pids: set[int] = set()

    def _group(self, pid: int, table: dict) -> str:
        ppid, comm, _, cmd = table[pid]
        if cmd.startswith("postgres: ") or comm == "postgres":
            words = cmd.split()[1:]  # "postgres: [15/main:] USER DB HOST(PORT) STATE" or "postgres: [15/main:] walwriter"
            if words and words[0].endswith(":"):
                words = words[1:]  # the cluster name
            is_backend = len(words) >= 3 and ("(" in words[2] or words[2] == "[local]")
            return "postgres" if not is_backend or words[1] in self.our_dbs else "other"
        seen, p = set(), pid
        while p in table and p not in seen:
            seen.add(p)
            if p in self.server_pids:
                return "server"
            if p in self.generator_pids:
                return "generator"
            if p == self.me:
                return "bench"
            p = table[p][0]
        return "other"

    def _sample(self) -> None:
        table = _proc_table()
        for pid, (_, _, cpu, _) in table.items():
            if pid not in self.first:
                self.first[pid] = 0.0 if self._started else cpu  # new since the start: all of its CPU
            self.last[pid] = (self._group(pid, table), cpu)

    def start(self) -> None:
        from _training_env import busy_cpu_seconds

        self.first.clear()
        self.last.clear()
        self._started = False
        self._sample()
        self._started = True
        self.t0, self.busy0 = time.monotonic(), busy_cpu_seconds()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self._sample()

    def stop(self) -> dict:
        """{group: cores on average} over the window, plus 'machine' (all CPU busy) and 'wall' seconds."""
        from _training_env import busy_cpu_seconds

        self._stop.set()
        self._thread.join()
        self._sample()
        wall = time.monotonic() - self.t0
        used: dict[str, float] = {}
        for pid, (group, cpu) in self.last.items():
            used[group] = used.get(group, 0.0) + max(0.0, cpu - self.first.get(pid, 0.0))
        out = {g: s / wall for g, s in used.items()}
        out["machine"] = (busy_cpu_seconds() - self.busy0) / wall
        out["wall"] = wall
        return out


# -- the systems under test ------------------------------------------------------------------------
class System:
    """What both sides share: a temp dir, processes, the generator plan and the verification."""

    name = ""
    key = ""

    def __init__(self, tmp: Path, dbs: Databases, examples: list, max_labelers: int):
        self.tmp, self.dbs, self.examples, self.max_labelers = tmp, dbs, examples, max_labelers
        self.processes: list[Process] = []
        self.server: Process | None = None
        self.env: dict[str, str] = {}
        self.tokens: list[str] = []

    def start_process(self, name: str, cmd: list, env: dict) -> Process:
        proc = Process(name, cmd, env, self.tmp / f"{name}.log", threads=1)
        self.processes.append(proc)
        return proc

    def stop(self) -> None:
        for p in reversed(self.processes):
            try:
                p.stop()
            except Exception as e:
                log(f"warning: could not stop {p.name}: {e}")
        self.processes.clear()

    def server_pids(self) -> set[int]:
        return {self.server.proc.pid} if self.server else set()

    def plan(self, n: int, keys: list, args, start_at: float) -> dict:
        """The generator plan for n labelers: labeler i takes keys i, i+n, i+2n, ... with its own token."""
        return {
            "system": self.key,
            "base": self.base,
            "duration": args.duration,
            "warmup": args.warmup,
            "think_ms": args.think_ms,
            "timeout": args.timeout,
            "start_at": start_at,
            "labels": LABELS,
            "dataset": DATASET,
            "branch": BRANCH,
            "labelers": [{"index": i, "token": self.tokens[i], "name": f"labeler{i:03d}", "keys": keys[i::n]} for i in range(n)],
        }


class S2System(System):
    name, key = "s2", "s2"

    def __init__(self, *a, workers: int = 1, **kw):
        super().__init__(*a, **kw)
        self.workers = workers

    def s2(self, *args, timeout: float = 600) -> str:
        proc = subprocess.run(
            [str(S2_EXE), *map(str, args)],
            env=self.env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise CommandFailed(f"`s2 {' '.join(map(str, args))}` exited {proc.returncode}:\n{proc.stderr.strip()}")
        return proc.stdout

    def setup(self, csv_path: Path) -> None:
        db = self.dbs.create("s2bench_api")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("S2_")}
        self.env.update(
            {
                "S2_HOME": str(self.tmp / "s2home"),
                "S2_DATABASE_URL": f"{self.dbs.pg}/{db}",
                "S2_AUTHOR": "bench@example.com",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.db = db
        self.s2("dataset", "create", DATASET, "--modality", "text", "--labels", ",".join(LABELS))
        self.s2("import", DATASET, csv_path, "-m", "load benchmark examples")
        self.s2("branch", DATASET, BRANCH)
        self.admin = self.s2("user", "add", "bench-admin", "--role", "admin").strip().splitlines()[-1]
        self.keys = [key for key, _, _ in self.examples]

    def start(self) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.server = self.start_process(
            f"s2-serve-w{self.workers}", [S2_EXE, "serve", "--host", "127.0.0.1", "--port", port, "--workers", self.workers], self.env
        )
        wait_http(f"{self.base}/healthz", self.server, 120)
        if not self.tokens:  # labelers are added by the admin over the API: one per simulated labeler
            with _http() as client:
                for i in range(self.max_labelers):
                    made = check(
                        client.post(
                            f"{self.base}/api/v1/users",
                            headers={"Authorization": f"Bearer {self.admin}"},
                            json={"name": f"labeler{i:03d}", "role": "labeler", "datasets": [DATASET]},
                        ),
                        f"adding labeler {i}",
                    )
                    self.tokens.append(made["token"]["token"])
            # a labeler may not edit main (protected over the API): make sure the branch is what they edit
            r = _http().put(
                f"{self.base}/api/v1/datasets/{DATASET}/edits/{self.keys[0]}",
                headers={"Authorization": f"Bearer {self.tokens[0]}"},
                json={"label": LABELS[0], "version": "any"},
            )
            if r.status_code != 403:
                raise CommandFailed(f"a labeler's edit of main answered {r.status_code}, expected 403: {r.text[:300]}")

    def server_pids(self) -> set[int]:
        return super().server_pids()  # uvicorn's worker processes are its children

    def reset(self) -> None:
        """Drop every staged edit of the branch: each run starts from the same state."""
        self.s2("unstage", DATASET, "--all", "--branch", BRANCH)

    def task_keys(self) -> list:
        return self.keys

    def verify(self, acks: list) -> dict:
        """Every acknowledged edit must be staged with the last label its labeler got acknowledged, by that labeler,
        at a version no lower than the number of acknowledgements of the key (each staged edit bumps it)."""
        staged = {s["key"]: s for s in json.loads(self.s2("status", DATASET, "--branch", BRANCH, "--json"))}
        last: dict[str, tuple[str, str]] = {}
        count: dict[str, int] = {}
        for key, label, who in acks:
            last[key] = (label, who)
            count[key] = count.get(key, 0) + 1
        lost = [
            k
            for k, (label, who) in last.items()
            if k not in staged
            or staged[k]["label"] != label
            or staged[k]["author"] != who
            or staged[k]["remove"]
            or staged[k]["version"] < count[k]
        ]
        return {
            "acked": len(acks),
            "keys": len(last),
            "lost": len(lost),
            "lost_sample": lost[:5],
            "unacked_applied": sum(max(0, staged[k]["version"] - count[k]) for k in last if k in staged)
            + sum(s["version"] for k, s in staged.items() if k not in last),
            "in_db": len(staged),
        }


def cleanup_tmp(tmp: Path, keep: bool) -> None:
    if keep:
        log(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
