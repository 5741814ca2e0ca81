"""The training benchmark's private world: a temp S2_HOME, its own PostgreSQL database and Redis
database, the digits ImageFolder, the s2 CLI, and the worker processes it starts (always stopped)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
S2_EXE = ROOT / ".venv" / "bin" / "s2"
PYTHON = ROOT / ".venv" / "bin" / "python"
DEFAULT_PG = os.environ.get("S2_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432")
REDIS_HOST = "redis://127.0.0.1:6379"
REDIS_DBS = range(8, 16)  # 7 is the test suite's
LOCK_KEY = "s2bench:training:owner"


class CommandFailed(RuntimeError):
    """An s2 command or a worker failed; the message carries its output."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the benchmark dies, so no worker outlives it even on SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the finally blocks still stop the workers
        pass


def write_digits_folder(root: Path) -> Path:
    """scikit-learn's bundled digits as an ImageFolder of 8x8 grayscale PNGs, root/<digit>/dNNNN.png
    (the same layout as tests/factories.py)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (pixels, target) in enumerate(zip(digits.images, digits.target)):
        folder = root / str(target)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels * 15).astype(np.uint8)).save(folder / f"d{i:04d}.png")
    return root


def busy_cpu_seconds() -> float:
    """CPU-seconds the whole machine has spent busy since boot (all cores), from /proc/stat; 0 elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU-seconds of this process and of its children that have been waited for (the CLI runs, the workers)."""
    import resource

    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


class Process:
    """A background process of ours, logging to a file; stop() always ends it."""

    def __init__(self, name: str, cmd: list, env: dict, log_path: Path, threads: int):
        self.name, self.log_path = name, log_path
        self._log = open(log_path, "ab")
        env = {**env, "S2_TORCH_THREADS": str(threads), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        self.proc = subprocess.Popen(
            [str(c) for c in cmd],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 120) -> None:
        """Block until text shows in the log; CommandFailed if the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None:
                raise CommandFailed(f"{self.name} exited {self.proc.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise CommandFailed(f"{self.name} not ready after {timeout:.0f}s:\n{self.tail()}")
            time.sleep(0.05)

    def tail(self, lines: int = 30) -> str:
        return "\n".join("  " + line for line in self.output().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (Celery's warm shutdown), then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class World:
    """Context manager: private store + database + broker, set in os.environ for this process and the CLI."""

    def __init__(self, pg: str = DEFAULT_PG, keep: bool = False, threads: int = 1):
        self.pg, self.keep, self.threads = pg, keep, threads
        self.processes: list[Process] = []
        self.db_name = f"s2bench_train_{uuid.uuid4().hex[:10]}"
        self.redis_db: int | None = None
        self.token = uuid.uuid4().hex
        self.tmp = Path(tempfile.mkdtemp(prefix="s2-bench-training-"))
        self.home = self.tmp / "home"
        self.env: dict[str, str] = {}

    # -- set up / tear down -------------------------------------------------------------
    def __enter__(self) -> World:
        from sqlalchemy import create_engine, text

        try:
            try:
                with create_engine(
                    f"{self.pg}/postgres", isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
                ).connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{self.db_name}"'))
            except Exception as e:  # any driver error: one line
                raise CommandFailed(f"cannot create a database on {self.pg}: {str(e).splitlines()[0]}") from None
            self.created_db = True
            self.redis_db = self._claim_redis_db()
        except BaseException:
            self._teardown()
            raise
        for name in [k for k in os.environ if k.startswith("S2_")]:  # nothing of the caller's store leaks in
            del os.environ[name]
        self.env = {
            **os.environ,
            "S2_HOME": str(self.home),
            "S2_DATABASE_URL": f"{self.pg}/{self.db_name}",
            "S2_BROKER_URL": self.broker_url,
            "S2_AUTHOR": "bench@example.com",
            "PYTHONUNBUFFERED": "1",
        }
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("S2_")})
        from server.config import get_settings

        get_settings.cache_clear()
        return self

    @property
    def broker_url(self) -> str:
        return f"{REDIS_HOST}/{self.redis_db}"

    def _redis(self, db: int):
        import redis

        return redis.Redis.from_url(f"{REDIS_HOST}/{db}")

    def _claim_redis_db(self) -> int:
        """An empty Redis database, marked as ours so a second benchmark run picks another."""
        import redis

        for db in REDIS_DBS:
            client = self._redis(db)
            try:
                if client.dbsize() == 0 and client.set(LOCK_KEY, self.token, nx=True):
                    return db
            except redis.RedisError as e:
                raise CommandFailed(f"Redis at {REDIS_HOST}: {e}") from None
        raise CommandFailed(f"no empty Redis database among {REDIS_DBS.start}..{REDIS_DBS.stop - 1} on {REDIS_HOST}")

    def __exit__(self, *exc) -> None:
        self._teardown()

    def _teardown(self) -> None:
        for p in reversed(self.processes):
            try:
                p.stop()
            except Exception as e:  # keep tearing down
                log(f"warning: could not stop {p.name}: {e}")
        self.processes.clear()
        if getattr(self, "created_db", False):
            from sqlalchemy import create_engine, text

            try:
                from server.db import get_engine

                get_engine.cache_clear()  # drop pooled connections of this process first
            except Exception:
                pass
            with create_engine(f"{self.pg}/postgres", isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
            self.created_db = False
        if self.redis_db is not None:
            client = self._redis(self.redis_db)
            if client.get(LOCK_KEY) == self.token.encode():
                client.flushdb()
            self.redis_db = None
        if self.keep:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- commands and processes -----------------------------------------------------------
    def s2(self, *args: object, timeout: float = 600) -> str:
        """Run the real s2 CLI; return stdout, CommandFailed on a non-zero exit."""
        env = {**self.env, "OMP_NUM_THREADS": str(self.threads)}
        proc = subprocess.run(
            [str(S2_EXE), *map(str, args)], env=env, cwd=self.tmp, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        if proc.returncode != 0:
            raise CommandFailed(f"`s2 {' '.join(map(str, args))}` exited {proc.returncode}:\n{proc.stderr.strip()}")
        return proc.stdout

    def start(self, name: str, cmd: list, ready: str, timeout: float = 120) -> Process:
        proc = Process(name, cmd, self.env, self.tmp / f"{name}.log", self.threads)
        self.processes.append(proc)
        proc.wait_for(ready, timeout)
        return proc

    def start_s2_worker(self) -> Process:
        return self.start("s2-worker", [S2_EXE, "worker", "--queue", "cpu"], ready=" ready.")

    def start_peer_worker(self) -> Process:
        return self.start("celery-peer", [PYTHON, Path(__file__).with_name("_training_peer.py")], ready=" ready.")
