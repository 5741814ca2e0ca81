"""The scale benchmark's environment: a private PostgreSQL database, `s2 serve` on it, seeded data, memory sampling."""

from __future__ import annotations

import csv
import os
import random
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx

PG = os.environ.get("S2_BENCH_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432")
S2 = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "s2"
LABELS = ["north", "south", "east", "west"]
WORDS = (
    "river stone cloud market signal harbor forest engine lantern window garden bridge copper violet thunder meadow "
    "compass pepper silver orchard canyon falcon marble ember glacier tunnel velvet saddle beacon willow"
).split()


def key_of(i: int) -> str:
    return f"ex{i:09d}"


def write_rows(path: Path, n: int, seed: int) -> Path:
    """n short texts (8-14 words, ~75 bytes) with a label each: what ten million rows look like on this disk."""
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["key", "label", "text"])
        for i in range(n):
            writer.writerow([key_of(i), LABELS[rng.randrange(4)], " ".join(rng.choices(WORDS, k=rng.randint(8, 14)))])
    return path


class Memory:
    """Samples a process's private (anonymous) and total resident memory every 0.1 s; keeps the peaks."""

    def __init__(self, pid: int):
        self.pid, self.peak_private, self.peak_total = pid, 0, 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _read(self) -> tuple[int, int]:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.pid}/status").read_text().splitlines() if ":" in line)
        return int(fields["RssAnon"].split()[0]) // 1024, int(fields["VmRSS"].split()[0]) // 1024

    def __enter__(self) -> Memory:
        self.baseline = self._read()[0]
        self.thread.start()
        return self

    def _loop(self) -> None:
        while not self.stopped.wait(0.1):
            private, total = self._read()
            self.peak_private, self.peak_total = max(self.peak_private, private), max(self.peak_total, total)

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float, failure: str) -> None:
    """Poll url until it answers 200; RuntimeError(failure) if proc exits or timeout passes first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.2)


class Server:
    """`s2 serve` on a private PostgreSQL database and S2_HOME, with an admin client."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.db = f"s2bench_scale_{uuid.uuid4().hex[:10]}"
        self.url_db = f"{PG}/{self.db}"
        subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", f'CREATE DATABASE "{self.db}"'], check=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("S2_")},
            "S2_HOME": str(workdir / "home"),
            "S2_DATABASE_URL": self.url_db,
            "S2_UPLOAD_MAX_BYTES": str(8 << 30),
            "S2_AUTHOR": "bench",
        }
        out = subprocess.run([str(S2), "user", "add", "bench", "--role", "admin"], env=self.env, capture_output=True, text=True, check=True)
        self.token = out.stdout.strip().splitlines()[-1]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(workdir / "serve.log", "wb")
        self.proc = subprocess.Popen([str(S2), "serve", "--port", str(port)], env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until_up(f"{self.base}/healthz", self.proc, 60, f"s2 serve did not start; see {workdir / 'serve.log'}")
        self.client = httpx.Client(base_url=f"{self.base}/api/v1", headers={"Authorization": f"Bearer {self.token}"}, timeout=3600)

    def call(self, method: str, path: str, ok: tuple[int, ...] = (200, 201, 202), **kwargs) -> httpx.Response:
        r = self.client.request(method, path, **kwargs)
        if r.status_code not in ok:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r

    def sql(self, query: str) -> str:
        """One value from the server's database (for waiting on background work only)."""
        out = subprocess.run(
            ["psql", "-tA", "-h", "127.0.0.1", "-U", "postgres", "-d", self.db, "-c", query], capture_output=True, text=True
        )
        return out.stdout.strip()

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)'])
        shutil.rmtree(self.workdir / "home", ignore_errors=True)
