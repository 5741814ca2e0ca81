"""A run's life as the server records it: claimed by a worker, beating, reporting progress, finished.

The worker that trains (workers/execute.py) calls these; the training itself never touches SQL.
"""

import logging
import threading
import time
from collections import deque

from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from server.config import get_settings
from server.datasets.models import utcnow
from server.db import session_scope
from server.runs.curves import CurveHistory
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


def record_start(run_id: int, parent_model_id: int | None, scratch_reason: str | None) -> None:
    """Record what a running warm-start run begins from: a parent model, or none and why (it trains from scratch)."""
    with session_scope() as db:
        db.execute(
            update(TrainingRun)
            .where(TrainingRun.id == run_id, TrainingRun.state == "running")
            .values(parent_model_id=parent_model_id, scratch_reason=scratch_reason)
            .execution_options(synchronize_session=False)
        )


def finish(run_id: int, **values) -> None:
    """Record a running run's end (state, error, log tail); a run that is no longer running is left as it is."""
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
        self.history = CurveHistory()

    def progress(self, info: dict) -> None:
        """Record the trainer's progress (epoch, step, loss, ETA, the curves so far); doubles as the run's heartbeat."""
        self.history.add(info)  # before the throttle: an epoch's end must not be lost to it
        now = time.monotonic()
        if now - self.last_write < PROGRESS_EVERY_S and info.get("step") != info.get("total_steps"):
            return
        self.last_write = now
        try:
            with session_scope() as db:
                run = db.get(TrainingRun, self.run_id)
                run.progress, run.heartbeat_at = self.history.record(info), utcnow()
                self.cancelled = run.cancel_requested
        except OperationalError:  # progress is best effort: a database blink must not end hours of training
            log.warning("run %s: progress not recorded (database unreachable)", self.run_id, exc_info=True)

    def should_stop(self) -> bool:
        """Whether someone cancelled the run (read at the last progress write)."""
        return self.cancelled
