"""Celery tasks: ids in, one call, a small dict out. torch is imported inside the call, never at import."""

from sqlalchemy.exc import OperationalError

from server.runs.broker import TRAIN_TASK
from workers import identity
from workers.app import celery_app


@celery_app.task(
    name=TRAIN_TASK, acks_late=True, reject_on_worker_lost=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5
)
def train_run(run_id: int, attempt: int) -> dict:
    """Train run_id (if it is still queued at `attempt`) and register its model."""
    from workers.execute import execute_run

    return execute_run(run_id, attempt, worker=identity.name())
