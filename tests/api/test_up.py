"""`s2 up`: the whole platform on the embedded store (SQLite, filesystem broker), with the demo trained once."""

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import free_port
from tests.conftest import S2_BIN


def processes_using(home: Path) -> list[int]:
    """Pids of live processes whose environment points S2_HOME at home."""
    wanted = f"S2_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if wanted in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


PRINTED: dict[str, str] = {}


def start_up(env: dict[str, str], port: int, log: Path) -> tuple[subprocess.Popen, str, str]:
    """Start `s2 up` and return it with the URL and admin token it printed (the sign-in line in PRINTED)."""
    proc = subprocess.Popen([str(S2_BIN), "up", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=open(log, "ab"), text=True)
    url = token = None
    deadline = time.monotonic() + 120
    while token is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, f"s2 up ended early: {log.read_text()}"
        if line.startswith("s2 is up: "):
            url = line.split()[3]
        if line.startswith("sign in as: "):
            PRINTED["sign_in"] = line.strip()
        if line.startswith("admin token"):
            token = line.rsplit(" ", 1)[1].strip()
    assert url == f"http://127.0.0.1:{port}" and token, log.read_text()
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url, token
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"s2 up never answered: {log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    """Ctrl-C, as a user would."""
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)


@pytest.mark.slow(minutes=1.5)
def test_up_runs_server_worker_and_a_trained_demo_then_stops_cleanly(tmp_path):
    """First start: the digits demo is imported and trained; the printed password signs in and the token works;
    only what a person needs is printed; SIGTERM (a service manager) stops the worker too, as Ctrl-C does."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("S2_")} | {"S2_HOME": str(home)}
    proc, url, token = start_up(env, free_port(), tmp_path / "up.log")
    try:
        password = PRINTED["sign_in"].split("password: ")[1]
        assert PRINTED["sign_in"].startswith("sign in as: admin")
        with httpx.Client(base_url=url, headers={"Origin": url}) as browser:
            assert browser.get("/", headers={"Accept": "text/html"}).headers["location"].startswith("/login")
            assert browser.post("/login", data={"name": "admin", "password": password}).status_code == 303
            assert "digits" in browser.get("/").text
        assert (home / "admin-password").stat().st_mode & 0o777 == 0o600
        api = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert [d["name"] for d in api.get("/datasets").json()["items"]] == ["digits"]
        assert api.get("/datasets/digits/commits/main").json()["rows"] == 1797
        deadline = time.monotonic() + 300
        while not (models := api.get("/datasets/digits/models").json()["items"]) and time.monotonic() < deadline:
            run = api.get("/runs").json()["items"][0]
            assert run["state"] in ("queued", "running"), run
            time.sleep(1)
        assert models and models[0]["id"] == "digits@1" and models[0]["metrics"]["accuracy"] > 0.8
        assert httpx.get(f"{url}/docs").status_code == 200
        assert (home / "admin-token").stat().st_mode & 0o777 == 0o600
        # The worker's and the libraries' chatter goes to a log file, not to the person who ran `s2 up`.
        printed = (tmp_path / "up.log").read_text()
        assert "celery@" not in printed and "[tasks]" not in printed and "Lightning" not in printed, printed
        assert len(printed.splitlines()) <= 6, printed
        assert "Trainer.fit" in (home / "logs" / "worker.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while processes_using(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_using(home) == [], "s2 up left processes behind"

    # A second start keeps the store: same token and password, no second demo, no second training.
    proc, url, again = start_up(env, free_port(), tmp_path / "up2.log")
    try:
        assert again == token and PRINTED["sign_in"].endswith(password)
        api = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"})
        assert len(api.get("/runs").json()["items"]) == 1
        assert len(api.get("/datasets/digits/commits").json()["items"]) == 2
    finally:
        stop(proc)
    deadline = time.monotonic() + 30
    while processes_using(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_using(home) == [], "Ctrl-C left processes behind"

    # Killed outright (no chance to clean up), `s2 up` still takes its worker with it.
    proc, url, _ = start_up(env, free_port(), tmp_path / "up3.log")
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 30
    while processes_using(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_using(home) == [], "the worker outlived a killed `s2 up`"


def test_up_on_a_store_with_datasets_says_nothing_of_a_demo_and_starts_its_worker_with_log_level(tmp_path):
    """A store that has datasets already (its demo, or its own) is served as it is: no word about building the demo."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("S2_")} | {"S2_HOME": str(home)}
    made = subprocess.run([str(S2_BIN), "dataset", "create", "pets", "--modality", "text", "--labels", "a,b"], env=env, capture_output=True)
    assert made.returncode == 0, made.stderr
    proc, url, token = start_up(env, free_port(), tmp_path / "up.log")
    try:
        api = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"})
        assert [d["name"] for d in api.get("/datasets").json()["items"]] == ["pets"]
        assert api.get("/runs").json()["items"] == []
    finally:
        stop(proc)
    printed = (tmp_path / "up.log").read_text()
    assert "demo" not in printed and "building" not in printed, printed
    assert "s2: error" not in (home / "logs" / "worker.log").read_text()  # `s2 worker --log-level WARNING`, as `s2 up` starts it
