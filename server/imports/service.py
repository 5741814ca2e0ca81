"""Import jobs: created by an upload or the CLI, run in the background, read for their progress."""

import os
import socket
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.config import get_settings
from server.datasets.datasets import get_dataset
from server.datasets.models import Dataset, utcnow
from server.datasets.refs import get_branch
from server.errors import NotFound
from server.imports.models import ImportJob
from server.imports.schemas import ImportJobRead

TERMINAL = ("succeeded", "failed")
STOPPED = "the process running this import ({host}) stopped before it finished; nothing was committed (s2 gc reclaims what it stored)"


def host_name() -> str:
    """This process, as recorded on the jobs it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def create_job(
    db: Session, *, dataset: str, branch: str | None, source: str, message: str, author: str, work_dir: str | None = None
) -> ImportJobRead:
    """A queued import of source into branch (default: the default branch), which must exist now."""
    ds = get_dataset(db, dataset)
    br = get_branch(db, ds, branch)
    job = ImportJob(
        heartbeat_at=utcnow(),  # the process that queued it beats for it until it ends (runner.py)
        host=host_name(),
        dataset_id=ds.id,
        branch=br.name,
        source=source[:2000],
        message=message,
        author=author,
        state="queued",
        rows_done=0,
        work_dir=work_dir,
    )
    db.add(job)
    db.flush()
    return job_read(db, job, ds)


def get_job(db: Session, job_id: int) -> ImportJob:
    """The job with this id, or NotFound."""
    job = db.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"no import job {job_id}")
    return job


def job_dataset(db: Session, job_id: int) -> str:
    """The name of the dataset a job imports into (NotFound for no such job)."""
    return db.get(Dataset, get_job(db, job_id).dataset_id).name


def job_read(db: Session, job: ImportJob, ds: Dataset | None = None) -> ImportJobRead:
    """The public view of a job; a running one whose process stopped beating is failed on the way."""
    ds = ds or db.get(Dataset, job.dataset_id)
    if job.state not in TERMINAL and _stale(job):
        # Only if it is still as stale as we saw it: its process may have beaten, or finished, meanwhile.
        db.execute(
            update(ImportJob)
            .where(ImportJob.id == job.id, ImportJob.state.not_in(TERMINAL), ImportJob.heartbeat_at == job.heartbeat_at)
            .values(state="failed", finished_at=utcnow(), error=STOPPED.format(host=job.host))
            .execution_options(synchronize_session=False)
        )
        db.refresh(job)  # failed now, or as its process left it
    return ImportJobRead(
        id=job.id,
        dataset=ds.name,
        branch=job.branch,
        source=job.source,
        state=job.state,
        phase=job.phase,
        rows_done=job.rows_done,
        examples=job.examples,
        changes=job.changes,
        commit=job.commit_id,
        rows=job.head_rows,
        error=job.error,
        author=job.author,
        message=job.message,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def _stale(job: ImportJob) -> bool:
    beat = job.heartbeat_at or job.started_at or job.created_at
    return beat is not None and utcnow() - _aware(beat) > timedelta(seconds=get_settings().run_stale_after_s)


def _aware(when):  # noqa: ANN001, ANN202  (SQLite hands back naive datetimes)
    from datetime import UTC

    return when if when.tzinfo else when.replace(tzinfo=UTC)


def list_jobs(db: Session, *, dataset: str, before: int | None = None, limit: int = 50) -> list[ImportJobRead]:
    """A dataset's import jobs, newest first, with ids below the cursor."""
    ds = get_dataset(db, dataset)
    query = select(ImportJob).where(ImportJob.dataset_id == ds.id).order_by(ImportJob.id.desc()).limit(limit)
    if before is not None:
        query = query.where(ImportJob.id < before)
    return [job_read(db, job, ds) for job in db.scalars(query)]


def record(db: Session, job_id: int, **values) -> bool:
    """Update a job's columns (state, progress, result); a job that ended stays as it ended (False then)."""
    return (
        1
        == db.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id, ImportJob.state.not_in(TERMINAL))
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
    )
