"""The two tools under test, driven through their CLIs: s2 and DVC (+ git)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from _harness import CLASSES, Measured, count_files, dir_bytes, run

DATASET = "bench"


class Tool:
    """Common bookkeeping: revisions made, and every timed command for the detail table."""

    name = ""

    def __init__(self, workdir: Path, env: dict):
        self.workdir, self.env = workdir, env
        self.revs: list[str] = []  # v1 (import), v2 (relabel), v3 (add)
        self.commands: list[tuple[str, str, Measured]] = []  # (step, command, measured)
        self.push_seconds: dict[str, float] = {}
        self.step = ""

    def _short(self, arg: str) -> str:
        """An argument as the detail table shows it: paths below the work dir, short ids."""
        if arg.startswith(str(self.workdir)):
            return os.path.relpath(arg, self.workdir)
        return arg[:10] if len(arg) >= 32 and all(c in "0123456789abcdef" for c in arg) else arg

    def _run(self, cmd: list, cwd: Path) -> Measured:
        m = run(cmd, cwd=cwd, env=self.env)
        shown = [Path(c).name if i == 0 else self._short(str(c)) for i, c in enumerate(cmd)]
        self.commands.append((self.step, " ".join(shown), m))
        return m


class S2Tool(Tool):
    """s2 in embedded mode, with a private S2_HOME (SQLite file + blob folder)."""

    name = "s2"

    def __init__(self, exe: Path, workdir: Path):
        self.home = workdir / "s2home"
        super().__init__(workdir, dict(os.environ, S2_HOME=str(self.home)))
        self.exe = exe

    def s2(self, *args) -> Measured:
        return self._run([self.exe, *args], self.workdir)

    def setup(self) -> None:
        self.home.mkdir()

    def store_bytes(self) -> int:
        return dir_bytes(self.home)

    def _commit_id(self, m: Measured) -> str:
        lines = m.stdout.strip().splitlines()
        if not lines:
            raise RuntimeError("s2 printed no commit id (expected on the last stdout line)")
        self.revs.append(lines[-1].strip())
        return self.revs[-1]

    def import_(self, labels_csv: Path) -> Measured:
        m = self.s2("dataset", "create", DATASET, "--modality", "image", "--labels", ",".join(CLASSES))
        last = self.s2("import", DATASET, labels_csv, "-m", "initial import")
        self._commit_id(last)
        return m + last

    def relabel(self, edits_csv: Path) -> Measured:
        staged = self.s2("label", DATASET, "--file", edits_csv)
        last = self.s2("commit", DATASET, "-m", "relabel 1%")
        self._commit_id(last)
        return staged + last

    def add(self, new_csv: Path) -> Measured:
        last = self.s2("import", DATASET, new_csv, "-m", "add 1%")
        self._commit_id(last)
        return last

    def diff(self, a: str, b: str) -> tuple[Measured, dict]:
        m = self.s2("diff", DATASET, a, b, "--json")
        data = json.loads(m.stdout)
        return m, {k: len(data.get(k, [])) for k in ("added", "removed", "relabeled", "modified")}

    def export(self, rev: str, out: Path) -> tuple[Measured, tuple[int, int]]:
        m = self.s2("export", DATASET, rev, out, "--format", "imagefolder")
        return m, (count_files(out, ""), count_files(out, ".png"))  # (files, of which *.png)


class S2ServedTool(S2Tool):
    """s2's CLI against `s2 serve` on this machine (the same embedded SQLite store behind it): the
    client-server way engineers use a shared s2, where a command's cost is the thin client's
    start-up plus the server's work, not the start-up of the whole engine."""

    def setup(self) -> None:
        import socket
        import subprocess
        import time
        import urllib.request

        super().setup()
        token = run([self.exe, "user", "add", "bench", "--role", "engineer"], cwd=self.workdir, env=self.env)
        self.token = token.stdout.strip().splitlines()[-1].strip()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.server_log = open(self.workdir / "s2-serve.log", "wb")
        self.server = subprocess.Popen(
            [str(self.exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=self.workdir,
            env=self.env,
            stdout=self.server_log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2):
                    return
            except OSError:
                if self.server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"s2 serve did not come up; see {self.workdir / 's2-serve.log'}") from None
                time.sleep(0.2)

    def s2(self, *args) -> Measured:
        m = run([self.exe, "--server", self.url, "--token", self.token, *args], cwd=self.workdir, env=self.env)
        self.commands.append((self.step, " ".join(["s2", *(self._short(str(a)) for a in args)]), m))  # no token shown
        return m

    def relabel(self, edits_csv: Path) -> Measured:
        # Over the API the default branch takes no direct edits (reviewed work reaches it by merge):
        # stage and commit on a branch, then fast-forward main to it.
        branch = f"relabel-{len(self.revs)}"
        made = self.s2("branch", DATASET, branch, "--from", "main")
        staged = self.s2("label", DATASET, "--file", edits_csv, "--branch", branch)
        last = self.s2("commit", DATASET, "-m", "relabel 1%", "--branch", branch)
        self._commit_id(last)
        return made + staged + last + self.s2("merge", DATASET, branch, "--into", "main")

    def server_peak_kib(self) -> int:
        """The server process's peak resident memory so far (its own, not the clients')."""
        for line in Path(f"/proc/{self.server.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def close(self) -> None:
        self.server.terminate()
        self.server.wait(timeout=30)
        self.server_log.close()


class DvcTool(Tool):
    """DVC 3 in a git repo, `data/` tracked as one directory output, a local remote."""

    name = "DVC"

    def __init__(self, venv_bin: Path, workdir: Path, repo: Path):
        cfg = workdir / "dvc-config"
        super().__init__(
            workdir,
            dict(
                os.environ,
                PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
                DVC_NO_ANALYTICS="1",  # never phone home
                DVC_SITE_CACHE_DIR=str(workdir / "dvc-site-cache"),
                DVC_GLOBAL_CONFIG_DIR=str(cfg),
                DVC_SYSTEM_CONFIG_DIR=str(cfg / "system"),
                GIT_CONFIG_GLOBAL=os.devnull,
                GIT_CONFIG_NOSYSTEM="1",
            ),
        )
        self.repo, self.remote, self.cfg = repo, workdir / "dvc-remote", cfg

    def dvc(self, *args) -> Measured:
        return self._run(["dvc", *args], self.repo)

    def git(self, *args) -> Measured:
        return self._run(["git", *args], self.repo)

    def setup(self) -> None:
        (self.cfg / "system").mkdir(parents=True)
        (self.cfg / "config").write_text("[core]\n    analytics = false\n    check_update = false\n")
        self.repo.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        for k, v in (("user.name", "bench"), ("user.email", "bench@example.invalid"), ("commit.gpgsign", "false"), ("gc.auto", "0")):
            self.git("config", k, v)
        self.dvc("init", "-q")
        self.dvc("config", "core.autostage", "true")  # `dvc add` stages data.dvc/.gitignore itself
        self.dvc("remote", "add", "-d", "local", self.remote)
        self.git("commit", "-q", "-m", "dvc init")
        self.commands.clear()

    def store_bytes(self) -> int:
        return dir_bytes(self.repo / ".dvc" / "cache", self.repo / ".git", self.remote)

    def side_bytes(self) -> int:
        """DVC's own indexes (file hashes, data index) kept outside the store: not in store Δ."""
        return dir_bytes(self.workdir / "dvc-site-cache", self.repo / ".dvc" / "tmp")

    def _commit(self, msg: str) -> Measured:
        m = self.dvc("add", "data") + self.git("commit", "-q", "-m", msg)
        self.revs.append(run(["git", "rev-parse", "HEAD"], cwd=self.repo, env=self.env).stdout.strip())
        self.push_seconds[self.step] = self.dvc("push").seconds
        return m

    def import_(self, labels_csv: Path) -> Measured:
        return self._commit("initial import")

    def relabel(self, edits_csv: Path) -> Measured:
        return self._commit("relabel 1%")  # labels.csv was rewritten in place by the harness

    def add(self, new_csv: Path) -> Measured:
        return self._commit("add 1%")  # images + rows were added to data/ by the harness

    def diff(self, a: str, b: str) -> tuple[Measured, dict]:
        m = self.dvc("diff", "--json", a, b)
        data = json.loads(m.stdout or "{}")
        return m, {k: len(v) for k, v in data.items()} | {
            "labels.csv modified": any(e["path"].endswith("labels.csv") for e in data.get("modified", []))
        }

    def export(self, rev: str, out: Path) -> tuple[Measured, tuple[int, int]]:
        m = self.dvc("get", self.repo, "data", "--rev", rev, "-o", out)
        return m, (count_files(out / "images", ""), count_files(out / "images", ".png"))
