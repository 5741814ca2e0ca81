"""A real `s2 serve` (uvicorn) on loopback over a private PostgreSQL database, and HTTP clients for it."""

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import S2_BIN, private_pg_database, stop_process


@pytest.fixture
def db_url():
    """API tests run on PostgreSQL only (the production database)."""
    with private_pg_database() as url:
        yield url


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """A running `s2 serve` and the admin who can act on it."""

    def __init__(self, url: str, admin_token: str, log_path: Path, proc: subprocess.Popen | None = None):
        self.url, self.admin_token, self.log_path, self.proc = url, admin_token, log_path, proc

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client on the API (/api/v1), authenticated with token when given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=120)

    @property
    def admin(self) -> httpx.Client:
        """A client authenticated as the admin."""
        return self.client(self.admin_token)

    def add_user(self, name: str, role: str, datasets: tuple[str, ...] = ()) -> str:
        """Add a user over the API; returns their token."""
        with self.admin as c:
            r = c.post("/users", json={"name": name, "role": role, "datasets": list(datasets)})
            assert r.status_code == 201, r.text
            return r.json()["token"]["token"]

    def log(self) -> str:
        """What the server wrote so far."""
        return self.log_path.read_text(errors="replace")


def start_server(env: dict[str, str], log_path: Path, port: int, *args: str) -> subprocess.Popen:
    """Start `s2 serve` and wait until /healthz answers."""
    log = open(log_path, "ab")
    proc = subprocess.Popen([str(S2_BIN), "serve", "--port", str(port), *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"s2 serve exited with {proc.returncode}: {log_path.read_text(errors='replace')}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"s2 serve did not answer /healthz within 60 s: {log_path.read_text(errors='replace')}")


@pytest.fixture
def api_factory(s2env: dict[str, str], broker_url: str, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """start(**S2_SETTINGS) starts a real `s2 serve` with extra settings (e.g. S2_UPLOAD_MAX_BYTES="1000"); all stop at the end."""
    from server.config import get_settings

    monkeypatch.setenv("S2_BROKER_URL", broker_url)
    get_settings.cache_clear()
    env = {**s2env, "S2_BROKER_URL": broker_url}
    admin_token = cli.last_line("user", "add", "root", "--role", "admin")
    procs: list[subprocess.Popen] = []

    def start(port: int | None = None, **settings: str) -> Api:
        port, log_path = port or free_port(), tmp_path / f"server{len(procs)}.log"
        procs.append(start_server({**env, **settings}, log_path, port))
        return Api(f"http://127.0.0.1:{port}", admin_token, log_path, procs[-1])

    yield start
    for proc in procs:
        stop_process(proc)


@pytest.fixture
def api(api_factory) -> Api:
    """A real uvicorn server (`s2 serve`) on loopback, its store on PostgreSQL, runs sent to Redis."""
    return api_factory()
