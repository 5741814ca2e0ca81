"""What a worker does with a run: claim it, train it, record the model, or record why not."""

import logging
import socket
import threading
import time
import traceback
from collections import deque

from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from server.blobs import default_blob_store
from server.config import get_settings
from server.datasets.models import utcnow
from server.db import session_scope
from server.runs.models import TrainingRun

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 0.5  # database writes of progress, at most this often
LOG_LINES = 60


class RunLog(logging.Handler):
    """Keeps the last lines logged while a run trains, for `s2 runs` to show on failure."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: deque[str] = deque(maxlen=LOG_LINES)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def tail(self) -> str:
        """The kept lines, oldest first."""
        return "\n".join(self.lines)


def claim(run_id: int, attempt: int, worker: str) -> bool:
    """Move the run from queued to running for this worker; False if it is not ours to run (anymore)."""
    with session_scope() as db:
        now = utcnow()
        return (
            db.execute(
                update(TrainingRun)
                .where(
                    TrainingRun.id == run_id,
                    TrainingRun.state == "queued",
                    TrainingRun.attempt == attempt,
                    TrainingRun.cancel_requested.is_(False),
                )
                .values(
                    state="running", attempt=attempt + 1, worker_host=worker, started_at=now, heartbeat_at=now, progress=None
                )  # error keeps why an earlier attempt was lost
                .execution_options(synchronize_session=False)
            ).rowcount
            == 1
        )


def _finish(run_id: int, **values) -> None:
    with session_scope() as db:
        db.execute(
            update(TrainingRun)
            .where(TrainingRun.id == run_id, TrainingRun.state == "running")
            .values(finished_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )


class RunHeartbeat:
    """Beats for one run from the process that trains it, so a run outlives its beats only by dying with them.

    The worker's own heartbeat cannot stand in: with a fresh child per run (--isolate), the child may
    die while the parent lives on, and the run must then go stale for the sweep to retry it.
    """

    def __init__(self, run_id: int):
        self.run_id, self.stopped = run_id, threading.Event()
        settings = get_settings()
        self.every = min(settings.worker_beat_s, settings.run_stale_after_s / 3)  # never stale while alive
        self.thread = threading.Thread(target=self._loop, daemon=True, name=f"s2-run-{run_id}-beat")

    def __enter__(self) -> "RunHeartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                with session_scope() as db:
                    db.execute(
                        update(TrainingRun)
                        .where(TrainingRun.id == self.run_id, TrainingRun.state == "running")
                        .values(heartbeat_at=utcnow())
                        .execution_options(synchronize_session=False)
                    )
            except Exception:  # the database blinked: the next beat may pass; going stale is the sweep's business
                log.warning("run %s: heartbeat not recorded", self.run_id, exc_info=True)


class RunReporter:
    """Progress and cancellation for one running run, through the database, throttled."""

    def __init__(self, run_id: int):
        self.run_id, self.last_write, self.cancelled = run_id, 0.0, False

    def progress(self, info: dict) -> None:
        """Record the trainer's progress (epoch, step, loss, ETA); doubles as the run's heartbeat."""
        now = time.monotonic()
        if now - self.last_write < PROGRESS_EVERY_S and info.get("step") != info.get("total_steps"):
            return
        self.last_write = now
        try:
            with session_scope() as db:
                run = db.get(TrainingRun, self.run_id)
                run.progress, run.heartbeat_at = info, utcnow()
                self.cancelled = run.cancel_requested
        except OperationalError:  # progress is best effort: a database blink must not end hours of training
            log.warning("run %s: progress not recorded (database unreachable)", self.run_id, exc_info=True)

    def should_stop(self) -> bool:
        """Whether someone cancelled the run (read at the last progress write)."""
        return self.cancelled


def execute_run(run_id: int, attempt: int, worker: str | None = None) -> dict:
    """Train run_id if it is still queued at `attempt`; returns a small summary for the task."""
    from server.registry.service import register_model, training_inputs
    from trainer.train import Cancelled, check_trainable, train

    worker = worker or f"{socket.gethostname()}:{threading.get_native_id()}"
    threads = get_settings().torch_threads
    if threads:
        import torch

        torch.set_num_threads(threads)
    if not claim(run_id, attempt, worker):
        return {"run": run_id, "skipped": "not queued at this attempt"}
    handler = RunLog()
    logging.getLogger().addHandler(handler)
    blobs = default_blob_store()
    reporter = RunReporter(run_id)
    try:
        with RunHeartbeat(run_id):
            snapshot, eval_sets, spec = training_inputs(run_id, blobs)
            check_trainable(snapshot, spec)
            log.info(
                "run %s: training %s@%s (%d examples) with %s",
                run_id,
                snapshot.dataset,
                snapshot.commit[:12],
                len(snapshot.keys),
                spec.template,
            )
            result = train(snapshot, spec, eval_sets=eval_sets, progress=reporter.progress, should_stop=reporter.should_stop)
            model = register_model(run_id, result, blobs)
        log.info("run %s: model %s", run_id, model)
        return {"run": run_id, "state": "succeeded", "model": model}
    except OperationalError:
        # The database went away (a transient fault, not the training's): the run is left running
        # without beats, so the sweep retries it once it goes stale, up to S2_RUN_MAX_ATTEMPTS.
        log.warning("run %s: database unreachable; left for the sweep to retry", run_id, exc_info=True)
        return {"run": run_id, "state": "interrupted"}
    except Cancelled:
        _finish(run_id, state="cancelled", log_tail=handler.tail())
        return {"run": run_id, "state": "cancelled"}
    except Exception as exc:  # a failing training is recorded, never crashes the worker
        log.error("run %s failed:\n%s", run_id, traceback.format_exc())
        _finish(run_id, state="failed", error=f"{type(exc).__name__}: {exc}"[:2000], log_tail=handler.tail())
        return {"run": run_id, "state": "failed"}
    finally:
        logging.getLogger().removeHandler(handler)
