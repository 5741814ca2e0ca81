"""The peer of bench/dashboards.py: an MLflow tracking server holding the same models' runs, and what its
compare-runs page shows when it is drawn."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from _scale_env import wait_until_up

BENCH = Path(__file__).resolve().parent
MLFLOW_BIN = BENCH / ".venv-mlflow" / "bin"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def mlflow_marks(metrics: list[str]) -> dict:
    """Run table, the plot's axis, and a metrics grid row with two values for every metric (read without layout)."""
    names = json.dumps(metrics)
    return {
        "page": (
            "!!document.querySelector('table.mlflow-compare-run-table') && !!document.querySelector('.pcp-plot .parcoords .y-axis .tick')"
            " && (() => { const cells = [...document.querySelectorAll('.ReactVirtualized__Grid [role=rowgroup] > div')];"
            f" const text = cells.map(c => c.textContent.trim()); const names = {names};"
            " if (!names.every(n => text.includes(n))) return false;"
            " return text.filter(t => /^-?[0-9][0-9.e+-]*$/.test(t)).length >= 2 * names.length; })()"
        )
    }


LOG_RUNS = r"""
import json, sys, time
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
client = MlflowClient(sys.argv[1])
experiment = client.create_experiment("bench-compare")
runs = []
for r in range(2):
    run = client.create_run(experiment, run_name=f"model-{r + 1}")
    now, metrics = int(time.time() * 1000), []
    for epoch in range(10):
        accuracy = round(0.5 + 0.035 * epoch + 0.02 * r, 4)
        metrics += [Metric("accuracy", accuracy, now + epoch, epoch), Metric("macro_f1", round(accuracy - 0.012, 4), now + epoch, epoch),
                    Metric("loss", round(1.5 - 0.1 * epoch - 0.05 * r, 4), now + epoch, epoch)]
    metrics += [Metric(f"f1_c{k}", round(0.78 + 0.013 * k + 0.02 * r, 4), now + 10, 9) for k in range(10)]
    client.log_batch(run.info.run_id, metrics=metrics)
    client.set_terminated(run.info.run_id)
    runs.append(run.info.run_id)
print(json.dumps({"experiment": experiment, "runs": runs}))
"""
MLFLOW_METRICS = ["accuracy", "macro_f1", "loss"] + [f"f1_c{k}" for k in range(10)]


class MLflow:
    """`mlflow server` on its own SQLite store, with an experiment of two runs logging the same metrics."""

    def __init__(self, work: Path):
        if not (MLFLOW_BIN / "mlflow").exists():
            log("creating bench/.venv-mlflow with bench/setup_mlflow.sh (once) ...")
            subprocess.run(["bash", str(BENCH / "setup_mlflow.sh")], check=True)
        self.version = subprocess.run(
            [str(MLFLOW_BIN / "python"), "-c", "import mlflow; print(mlflow.__version__)"], capture_output=True, text=True, check=True
        ).stdout.strip()
        home = work / "mlflow"
        home.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        # no telemetry; no job runner (its ~8 huey consumers serve GenAI jobs, nothing the compare page uses)
        self.env.update(HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(home / "server.log", "wb")
        cmd = [
            str(MLFLOW_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}", "--default-artifact-root", str(home / "artifacts"),
        ]  # fmt: skip
        t = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, cwd=home, start_new_session=True)
        wait_until_up(f"{self.base}/health", self.proc, 180, f"mlflow server did not start on {self.base}; see {home / 'server.log'}")
        log(f"[mlflow] {self.version} up in {time.perf_counter() - t:.0f} s")
        out = subprocess.run(
            [str(MLFLOW_BIN / "python"), "-c", LOG_RUNS, self.base], env=self.env, capture_output=True, text=True, cwd=home
        )
        if out.returncode:
            raise RuntimeError(f"logging MLflow runs failed: {out.stderr[-2000:]}")
        made = json.loads(out.stdout.strip().splitlines()[-1])
        self.url = f"{self.base}/#/compare-runs?runs={json.dumps(made['runs'], separators=(',', ':'))}&experiments={json.dumps([made['experiment']])}"

    def close(self) -> None:
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: the server and the workers it started
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
