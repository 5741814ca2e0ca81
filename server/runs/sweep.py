"""Workers' housekeeping: heartbeats, runs lost with their worker, runs never sent to the broker."""

from datetime import timedelta

from sqlalchemy import select

from server.config import get_settings
from server.datasets.models import utcnow
from server.db import session_scope
from server.runs.models import TrainingRun, WorkerHeartbeat
from server.runs.service import dispatch, dispatch_after_commit

UNSENT_GRACE_S = 5.0  # a queued run not sent by then lost its send (broker was down)


def beat(worker: str, queues: list[str], gpus: int) -> None:
    """Record that worker is alive (each run's own heartbeat comes from the process training it)."""
    now = utcnow()
    with session_scope() as db:
        row = db.scalar(select(WorkerHeartbeat).where(WorkerHeartbeat.name == worker))
        if row is None:
            db.add(WorkerHeartbeat(name=worker, queues=queues, gpus=gpus, seen_at=now))
        else:
            row.queues, row.gpus, row.seen_at = queues, gpus, now


def leave(worker: str) -> None:
    """Forget a worker that shuts down cleanly."""
    with session_scope() as db:
        row = db.scalar(select(WorkerHeartbeat).where(WorkerHeartbeat.name == worker))
        if row is not None:
            db.delete(row)


def sweep() -> dict:
    """Retry or fail runs whose worker stopped beating; re-send queued runs that never reached the broker."""
    settings = get_settings()
    now = utcnow()
    retried, failed = [], []
    with session_scope() as db:
        stale = db.scalars(
            select(TrainingRun)
            .where(TrainingRun.state == "running", TrainingRun.heartbeat_at < now - timedelta(seconds=settings.run_stale_after_s))
            .with_for_update(skip_locked=True)
        ).all()
        for run in stale:
            lost = f"worker {run.worker_host} stopped during attempt {run.attempt} (no heartbeat since {run.heartbeat_at:%H:%M:%S} UTC)"
            if run.attempt < settings.run_max_attempts and not run.cancel_requested:
                run.state, run.worker_host, run.progress, run.error = "queued", None, None, f"{lost}; retrying"
                dispatch_after_commit(db, run.id)
                retried.append(run.id)
            else:
                run.state, run.finished_at = "failed", now
                run.error = f"{lost}; gave up after {run.attempt} attempt(s)"
                failed.append(run.id)
        unsent = db.scalars(
            select(TrainingRun.id).where(
                TrainingRun.state == "queued",
                TrainingRun.dispatched_at.is_(None),
                TrainingRun.created_at < now - timedelta(seconds=UNSENT_GRACE_S),
            )
        ).all()
    for run_id in unsent:
        dispatch(run_id)
    return {"retried": retried, "failed": failed, "resent": list(unsent)}
