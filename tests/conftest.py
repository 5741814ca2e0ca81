"""Fixtures: a private store (SQLite file or a fresh PostgreSQL database) per test, and the real CLI."""

import os
import signal
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from server.config import get_settings
from server.db import get_engine, get_read_engine, upgrade_to_head

PG_HOST = os.environ.get("S2_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432")
S2_BIN = Path(sys.executable).parent / "s2"
_template: dict[str, str] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail the whole run at once, in one line, when PostgreSQL is not there."""
    try:
        with create_engine(f"{PG_HOST}/postgres", connect_args={"connect_timeout": 3}).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error: report it in one line
        pytest.exit(f"PostgreSQL is not reachable at {PG_HOST}: {str(exc).splitlines()[0]}", returncode=3)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files holding slow tests first, the slowest first (the minutes of their slow marks added up).

    scripts/test.sh spreads whole files over processes in this order: a nine-minute file started last would end
    the run alone, started first it overlaps the hundreds of short ones.
    """
    weight: dict[Path, float] = {}
    for item in items:
        for mark in item.iter_markers("slow"):
            weight[item.path] = weight.get(item.path, 0.0) + float(mark.kwargs.get("minutes", 1))
    items.sort(key=lambda item: -weight.get(item.path, 0.0))  # stable: collection order within a file and among the rest


def _admin():
    return create_engine(f"{PG_HOST}/postgres", isolation_level="AUTOCOMMIT")


def _pg_template() -> str:
    """A migrated database, made once per session, that test databases are copied from."""
    if "name" not in _template:
        name = f"s2t_tmpl_{uuid.uuid4().hex[:10]}"
        with _admin().connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = create_engine(f"{PG_HOST}/{name}")
        upgrade_to_head(engine)
        engine.dispose()
        _template["name"] = name
    return _template["name"]


def pytest_sessionfinish(session: pytest.Session) -> None:
    if "name" in _template:
        with _admin().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{_template["name"]}" WITH (FORCE)'))


@contextmanager
def private_pg_database():
    """A new PostgreSQL database copied from the migrated template, dropped afterwards."""
    name = f"s2t_{uuid.uuid4().hex[:12]}"
    with _admin().connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_pg_template()}"'))
    url = f"{PG_HOST}/{name}"
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with _admin().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path):
    """A private, migrated database: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 's2.db'}"
        return
    with private_pg_database() as url:
        yield url


@pytest.fixture
def s2env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point this process and the CLI subprocesses at the private store; returns their environment."""
    home = tmp_path / "home"
    # S2_ANALYSIS_FOLDS=0: the data engine's cross-fitting (5 more trainings after each run) only where a test asks for it
    env = {"S2_HOME": str(home), "S2_DATABASE_URL": db_url, "S2_AUTHOR": "tester@example.com", "S2_ANALYSIS_FOLDS": "0"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    yield {**os.environ, **env}
    get_settings.cache_clear()
    get_engine.cache_clear()
    get_read_engine.cache_clear()


@pytest.fixture
def blobs(s2env):
    """The private store's blob store."""
    from server.blobs import default_blob_store

    return default_blob_store()


def stop_process(proc: subprocess.Popen, timeout: float = 15, sig: int = signal.SIGTERM) -> None:
    """Send sig (default SIGTERM) and wait for proc to end; kill it if it takes longer than timeout."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class CLI:
    """Runs the real `s2` executable against the private store."""

    def __init__(self, env: dict[str, str], cwd: Path):
        self.env, self.cwd = env, cwd

    def run(self, *args: object, input: str | None = None) -> subprocess.CompletedProcess:
        """Run s2 with args; returns the finished process (any exit code)."""
        env = {**self.env, **{k: v for k, v in os.environ.items() if k.startswith("S2_")}}  # settings made later in the test
        return subprocess.run(
            [str(S2_BIN), *map(str, args)], env=env, cwd=self.cwd, input=input, capture_output=True, text=True, timeout=300
        )

    def ok(self, *args: object) -> str:
        """Run s2 with args, require exit 0, and return stdout."""
        proc = self.run(*args)
        assert proc.returncode == 0, f"s2 {' '.join(map(str, args))} failed ({proc.returncode}): {proc.stderr}"
        return proc.stdout

    def fails(self, *args: object) -> str:
        """Run s2 with args, require a non-zero exit and exactly one line on stderr; return that line."""
        proc = self.run(*args)
        assert proc.returncode != 0, f"s2 {' '.join(map(str, args))} should have failed: {proc.stdout}"
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one error line, got: {proc.stderr!r}"
        return lines[0]

    def last_line(self, *args: object) -> str:
        """Run s2 with args (must succeed) and return the last stdout line (e.g. a commit id)."""
        return self.ok(*args).strip().splitlines()[-1]


@pytest.fixture
def cli(s2env: dict[str, str], tmp_path: Path) -> CLI:
    """The real s2 CLI on the private store, run from tmp_path."""
    return CLI(s2env, tmp_path)


class Worker:
    """A real `s2 worker` process on the private store."""

    def __init__(self, env: dict[str, str], log_path: Path, queues: str = "cpu", args: tuple[str, ...] = ()):
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen([str(S2_BIN), "worker", "--queue", queues, *args], env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self, sig: int = 15) -> None:
        """Send sig (default SIGTERM) and wait for the process to end."""
        stop_process(self.proc, timeout=30, sig=sig)
        self.log.close()

    def output(self) -> str:
        """Everything the worker logged so far."""
        return self.log_path.read_text(errors="replace")


@pytest.fixture(params=["redis"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path):
    """A private broker: a Redis database no other test run holds (flushed), or the embedded filesystem broker.

    Test runs side by side on one machine (two checkouts, a benchmark) each lease their own
    Redis database, so no worker consumes another run's tasks and no flush empties another's queue.
    """
    if request.param == "filesystem":
        yield "filesystem://"
        return
    import redis

    leases = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        leases.ping()
    except redis.ConnectionError as exc:
        pytest.exit(f"Redis is not reachable at 127.0.0.1:6379: {exc}", returncode=3)
    lease = f"{os.getpid()}:{uuid.uuid4().hex}"
    number = next((n for n in range(1, 16) if leases.set(f"s2-test-db-lease:{n}", lease, nx=True, ex=3600)), None)
    assert number is not None, "every Redis database 1-15 is leased by another test run (keys s2-test-db-lease:N in db 0)"
    client = redis.Redis.from_url(f"redis://127.0.0.1:6379/{number}")
    client.flushdb()
    yield f"redis://127.0.0.1:6379/{number}"
    client.flushdb()
    if leases.get(f"s2-test-db-lease:{number}") == lease.encode():
        leases.delete(f"s2-test-db-lease:{number}")


@pytest.fixture
def workers(s2env: dict[str, str], broker_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Start real workers with start(); every one still running is stopped at the end."""
    monkeypatch.setenv("S2_BROKER_URL", broker_url)
    get_settings.cache_clear()
    env = {**s2env, "S2_BROKER_URL": broker_url}
    started: list[Worker] = []

    def start(queues: str = "cpu", args: tuple[str, ...] = (), **extra_env: str) -> Worker:
        w = Worker({**env, **extra_env}, tmp_path / f"worker{len(started)}.log", queues, args)
        started.append(w)
        return w

    start.env = env
    yield start
    for w in started:
        w.stop()
