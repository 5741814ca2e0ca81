"""`s2 serve`, `s2 up`: the web service, alone or with a worker and a demo on the embedded store."""

import os
import signal
import socket
import subprocess
import sys

import click

from server.cli.common import fail
from server.cli.main import cli


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc} (choose another with --port)")


def _serve(host: str, port: int, workers: int, log_level: str) -> None:
    import uvicorn

    uvicorn.run(
        "server.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=5,
    )


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", "-p", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", "-w", default=1, show_default=True, type=click.IntRange(1, 64), help="Server processes.")
@click.option("--log-level", default="warning", show_default=True, type=click.Choice(["debug", "info", "warning", "error"]))
def serve(host: str, port: int, workers: int, log_level: str) -> None:
    """Run the API server only (production: point it at PostgreSQL, Redis and S3 with S2_* settings).

    The database is migrated to the newest schema (`alembic upgrade head`) before it listens.
    """
    from server.db import get_engine

    _check_port(host, port)
    get_engine()
    click.echo(f"s2 API on http://{host}:{port} (docs: http://{host}:{port}/docs)", err=True)
    if workers == 1:
        _serve(host, port, workers, log_level)
        return
    import shutil
    import tempfile

    # Several processes: prometheus_client keeps each one's counts in files here, summed at scrape.
    folder = tempfile.mkdtemp(prefix="s2-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # read by prometheus_client in the worker processes
    try:
        _serve(host, port, workers, log_level)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _admin_token() -> tuple[str, bool]:
    """The embedded store's admin token: kept in S2_HOME/admin-token (mode 600), made on first use."""
    from server.auth.service import authenticate, ensure_admin, issue_token
    from server.config import get_settings
    from server.db import run_in_transaction
    from server.errors import Unauthorized

    path = get_settings().home / "admin-token"
    if path.exists():
        token = path.read_text().strip()
        try:
            if run_in_transaction(lambda db: authenticate(db, token)).role == "admin":
                return token, False
        except Unauthorized:
            pass
    issued = run_in_transaction(ensure_admin) or run_in_transaction(lambda db: issue_token(db, user="admin", label="s2 up"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(issued.token + "\n")
    return issued.token, True


def _admin_password() -> str | None:
    """The admin's first password for the browser, made on a store whose admin has none and kept in
    S2_HOME/admin-password (mode 600); None once the admin chose their own (the file no longer matches)."""
    import secrets

    from server.auth.signin import set_password, verifies
    from server.config import get_settings
    from server.db import run_in_transaction

    path = get_settings().home / "admin-password"
    kept = path.read_text().strip() if path.exists() else None
    state = run_in_transaction(lambda db: verifies(db, "admin", kept))
    if state == "matches":
        return kept
    if state != "no-password":
        return None  # the admin set their own with `s2 user passwd admin`
    password = secrets.token_urlsafe(12)
    run_in_transaction(lambda db: set_password(db, name="admin", password=password))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


def _die_with_parent() -> None:
    """In a child before exec: get SIGTERM when the process that started it dies, however it dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _stop_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`, which stops the worker


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", "-p", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--demo/--no-demo", default=True, show_default=True, help="On an empty store, build and train the digits demo.")
def up(host: str, port: int, demo: bool) -> None:
    """Run the whole platform on the embedded store: API server, a training worker, and a demo dataset.

    State lives in S2_HOME (default ./.s2). Prints the URL to open, how to sign in, and an admin API
    token; the worker's output goes to S2_HOME/logs/worker.log. Ctrl-C (or SIGTERM) stops everything.
    """
    from server.cli.common import author
    from server.config import get_settings
    from server.db import get_engine

    _check_port(host, port)
    get_engine()
    token, fresh = _admin_token()
    password = _admin_password()
    logs = get_settings().home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    worker_log = open(logs / "worker.log", "ab")
    # SIGTERM (a service manager, docker stop) must unwind like Ctrl-C: uvicorn re-raises it after its shutdown.
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    worker = subprocess.Popen(
        [sys.executable, "-c", "from server.cli.main import main; main()", "worker", "--log-level", "WARNING"],
        start_new_session=True,  # Ctrl-C reaches us only; we stop it in order
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    try:
        from server.demo import DEMO, build_demo, needs_demo

        if demo and needs_demo():  # a store with datasets (the demo's or its own) is left as it is, and nothing said
            click.echo("building the demo dataset (scikit-learn digits) ...", err=True)
            run_id = build_demo(author())
            if run_id is not None:
                click.echo(f"demo: dataset '{DEMO}' imported; training run {run_id} queued", err=True)
        home = get_settings().home
        click.echo(f"s2 is up: http://{host}:{port}")
        if password:
            click.echo(f"sign in as: admin  password: {password}")
            click.echo(f"  (kept in {home / 'admin-password'}; choose your own with: s2 user passwd admin)", err=True)
        else:
            click.echo("sign in as: admin, with the password you set (s2 user passwd admin to change it)")
        click.echo(f"admin token{' (new)' if fresh else ''}: {token}")
        click.echo(
            f"  scripts: s2 --server http://{host}:{port} --token TOKEN dataset list; API docs: http://{host}:{port}/docs\n"
            f"  worker log: {logs / 'worker.log'}; Ctrl-C stops everything",
            err=True,
        )
        _serve(host, port, 1, "warning")
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        worker_log.close()
