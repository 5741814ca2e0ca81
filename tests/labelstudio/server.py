"""A real Label Studio server for the tests: `label-studio start` from bench/.venv-ls, on loopback, SQLite in its data dir.

A fresh data dir takes about a minute to migrate, so a migrated one (with the admin and its token) is made once per
Label Studio version under .pytest-ls/ in the repository and copied for each session: a session starts in seconds.
Independent of pytest: conftest.py turns LabelStudioMissing and LabelStudioError into one-line failures.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
LS_VENV = ROOT / "bench" / ".venv-ls"
LS_BIN = LS_VENV / "bin"
CACHE = ROOT / ".pytest-ls"
TEMPLATE_FORMAT = 2  # bump when what a template holds changes: older templates are then left unused
ADMIN_EMAIL = "admin@example.com"
ANNOTATOR_EMAIL = "annotator{}@example.com"
TEMPLATE_ANNOTATORS = 4  # made with the template: annotators(n <= 4) costs no Django start (~4 s)
# Variables Label Studio reads without a prefix that a developer's shell may hold (LABEL_STUDIO_* ones are stripped).
_LEAKY = {"HOST", "PORT", "DEBUG", "LOG_LEVEL", "DATABASE_NAME", "SECRET_KEY", "REDIS_LOCATION", "SENTRY_DSN", "FRONTEND_SENTRY_DSN"}
_STARTED = re.compile(r"Starting development server at https?://[^\s/]+:(\d+)/")

# Run by Label Studio's own interpreter with the server's environment: add annotators to the admin's organization as
# LS's sign-up does (user, membership, active organization; the token comes from LS's post_save signal) and print
# [[email, token], ...] as the last line. Idempotent: an existing user keeps its token. No password: tokens only.
_ANNOTATORS_SCRIPT = """
import json, os, pathlib, sys
import label_studio
sys.path.insert(0, str(pathlib.Path(label_studio.__file__).parent))  # LS's apps import as top-level modules
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings.label_studio")
import django
django.setup()
from rest_framework.authtoken.models import Token
from users.models import User
org = User.objects.get(email=os.environ["LABEL_STUDIO_USERNAME"]).active_organization
out = []
for i in range(1, int(sys.argv[1]) + 1):
    email = sys.argv[2].format(i)
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=None)
        user.username = email.split("@")[0]
        org.add_user(user)
        user.active_organization = org
        user.save(update_fields=["username", "active_organization"])
    out.append([email, Token.objects.get_or_create(user=user)[0].key])
print(json.dumps(out))
"""


class LabelStudioError(Exception):
    """Label Studio could not be prepared or started; the message says why (with the log's tail where there is one)."""


class LabelStudioMissing(LabelStudioError):
    """bench/.venv-ls has no Label Studio."""


def installed_version() -> str:
    """The version of Label Studio in bench/.venv-ls, from its dist-info (no interpreter start)."""
    found = sorted(LS_VENV.glob("lib/python3*/site-packages/label_studio-*.dist-info"))
    if not (LS_BIN / "label-studio").exists() or not found:
        raise LabelStudioMissing(f"Label Studio is not installed in {LS_VENV.relative_to(ROOT)}: run scripts/setup-label-studio.sh")
    return found[-1].name.removeprefix("label_studio-").removesuffix(".dist-info")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ls_env(home: Path, data_dir: Path, creds: dict) -> dict[str, str]:
    """The environment of every Label Studio process: nothing of s2's or a developer's LS settings leaks in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("S2_", "DJANGO_", "LABEL_STUDIO_", "HEARTEX_", "POSTGRE_")) and k not in _LEAKY
    }
    env.update(
        {
            "HOME": str(home),
            "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
            "LABEL_STUDIO_USERNAME": creds["email"],
            "LABEL_STUDIO_PASSWORD": creds["password"],
            "LABEL_STUDIO_USER_TOKEN": creds["token"],
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",  # the SDK sends a non-JWT key as `Authorization: Token <key>`
            "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
            "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
            "SSRF_PROTECTION_ENABLED": "false",  # webhooks to s2 on 127.0.0.1
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "PYTHONUNBUFFERED": "1",  # the log shows the port line as soon as it is printed
            "PATH": f"{LS_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


def _tail(path: Path, lines: int = 40, start: int = 0) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def add_annotators(env: dict[str, str], cwd: Path, n: int) -> list[tuple[str, str]]:
    """Run _ANNOTATORS_SCRIPT with LS's interpreter on env's data dir (the server may be up or down)."""
    proc = subprocess.run(
        [LS_BIN / "python", "-c", _ANNOTATORS_SCRIPT, str(n), ANNOTATOR_EMAIL],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise LabelStudioError(f"adding {n} Label Studio annotators failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return [(email, token) for email, token in json.loads(proc.stdout.strip().splitlines()[-1])]


def ensure_template(version: str) -> Path:
    """A migrated data dir with the admin, its token and a few annotators, made once per LS version (~1 min):
    CACHE/template-<version>-v<format>/ holds data/ and creds.json. A second pytest process waits on the lock for the
    first's build; a build is renamed into place only when complete, so a killed one never leaves a half template."""
    final = CACHE / f"template-{version}-v{TEMPLATE_FORMAT}"
    if (final / "creds.json").exists():
        return final
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / f"template-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "creds.json").exists():  # another process built it while this one waited
            return final
        for stale in CACHE.glob(f".build-{version}-*"):  # left by a killed build: its builder held this lock
            shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        build = Path(tempfile.mkdtemp(prefix=f".build-{version}-", dir=CACHE))
        try:
            creds = {"email": ADMIN_EMAIL, "password": secrets.token_hex(16), "token": secrets.token_hex(20)}
            (build / "home").mkdir()
            log = build / "init.log"
            with open(log, "wb") as out:
                proc = subprocess.run(
                    [LS_BIN / "label-studio", "init", "-q", "--data-dir", build / "data"],
                    env=ls_env(build / "home", build / "data", creds),
                    cwd=build,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=900,
                )
            if proc.returncode != 0 or not (build / "data" / "label_studio.sqlite3").exists():
                raise LabelStudioError(f"`label-studio init` failed ({proc.returncode}) making the template data dir:\n{_tail(log)}")
            creds["annotators"] = add_annotators(ls_env(build / "home", build / "data", creds), build, TEMPLATE_ANNOTATORS)
            shutil.rmtree(build / "home")
            (build / "creds.json").write_text(json.dumps(creds))
            os.rename(build, final)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
    return final


class LabelStudioServer:
    """One Label Studio server: start() / stop() keep its port and data dir, so its data survives a restart."""

    def __init__(self, workdir: Path):
        self.version = installed_version()
        template = ensure_template(self.version)
        creds = json.loads((template / "creds.json").read_text())
        self.email, self.password, self.token = creds["email"], creds["password"], creds["token"]
        self.workdir = workdir
        self.data_dir = workdir / "data"
        shutil.copytree(template / "data", self.data_dir)  # the SQLite path is derived from the data dir, not stored
        (workdir / "home").mkdir(exist_ok=True)
        self.log_path = workdir / "label-studio.log"
        self.env = ls_env(workdir / "home", self.data_dir, creds)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self._annotators: list[tuple[str, str]] = [(email, token) for email, token in creds["annotators"]]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 180) -> None:
        """Start the server on self.port (the same one every time) and wait until /health answers there."""
        if self.running:
            return
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [LS_BIN / "label-studio", "start", "--internal-host", "127.0.0.1", "--port", str(self.port), "--no-browser"]
                + ["--data-dir", str(self.data_dir)],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # stop() ends its whole process group
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise LabelStudioError(
                    f"Label Studio exited ({self.proc.returncode}) before answering on {self.url}; "
                    f"{self.log_path}:\n{_tail(self.log_path, start=offset)}"
                )
            # LS silently moves to port+1 when its port is busy: only our process's own line says where it listens
            started = _STARTED.search(_tail(self.log_path, 10_000, start=offset))
            if started and int(started[1]) != self.port:
                self.stop()
                raise LabelStudioError(
                    f"Label Studio started on port {started[1]}, not {self.port}: port {self.port} was taken by another process"
                )
            if started and self._health():
                break
            if time.monotonic() > deadline:
                self.stop()
                raise LabelStudioError(
                    f"Label Studio did not answer on {self.url}/health in {timeout:.0f} s; {self.log_path}:\n{_tail(self.log_path, start=offset)}"
                )
            time.sleep(0.2)
        r = httpx.get(f"{self.url}/api/current-user/whoami", headers={"Authorization": f"Token {self.token}"}, timeout=10)
        if r.status_code != 200 or r.json().get("email") != self.email:
            self.stop()
            raise LabelStudioError(
                f"Label Studio on {self.url} refuses the admin's token ({r.status_code}): delete {CACHE.relative_to(ROOT)}/ to remake the template"
            )

    def _health(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 15) -> None:
        """Terminate the server's process group and wait for it to end (SIGKILL after timeout)."""
        if not self.running:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            self.proc.wait()

    def annotators(self, n: int) -> list[tuple[str, str]]:
        """(email, token) of n annotators in the admin's organization: annotator1@example.com, ... (made once, cached)."""
        if n > len(self._annotators):
            self._annotators = add_annotators(self.env, self.workdir, n)
        return self._annotators[:n]

    def log(self) -> str:
        """Everything the server logged so far (all its starts)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
