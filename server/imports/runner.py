"""Running an import job: read and validate the source, commit it, and report progress as it goes.

Progress goes to the job row from a reporter thread every half second (it doubles as the job's
heartbeat), so the import itself never waits on those writes: on SQLite the commit's own
transaction holds the write lock, and a progress write simply waits for it.
"""

import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from server.blobs import BlobStore
from server.datasets.compaction import compact_after
from server.datasets.importing import iter_source_rows
from server.datasets.ingest import ingest
from server.datasets.models import Dataset, utcnow
from server.db import refresh_statistics, run_in_transaction, session_scope
from server.errors import S2Error
from server.imports.schemas import ImportJobRead
from server.imports.service import get_job, host_name, job_read, record

log = logging.getLogger(__name__)
REPORT_EVERY_S = 0.5
_executor: list[ThreadPoolExecutor] = []
_executor_lock = threading.Lock()


class JobReporter:
    """Writes a job's phase and row count to its row, off the import's thread."""

    def __init__(self, job_id: int, tick: Callable[[int], None] | None = None):
        self.job_id, self.outer_tick = job_id, tick
        self.phase, self.rows, self.stopped = "reading", 0, threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name=f"s2-import-{job_id}")

    def tick(self, n: int) -> None:
        """Count n more rows done in the current phase."""
        self.rows += n
        if self.outer_tick:
            self.outer_tick(n)

    def enter(self, phase: str) -> None:
        """Start a new phase (its rows count from zero)."""
        self.phase, self.rows = phase, 0

    def __enter__(self) -> "JobReporter":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)

    def _loop(self) -> None:
        while not self.stopped.wait(REPORT_EVERY_S):
            try:
                with session_scope() as db:
                    record(db, self.job_id, phase=self.phase, rows_done=self.rows, heartbeat_at=utcnow())
            except Exception:  # the database blinked, or SQLite's writer lock is held: the next report may pass
                log.debug("import %s: progress not recorded", self.job_id, exc_info=True)


def run_import(
    job_id: int,
    source: Path,
    blobs: BlobStore,
    *,
    confine: Path | None = None,
    members: Mapping[str, Callable[[], bytes]] | None = None,
    describe_error: Callable[[str], str] = lambda message: message,
    tick: Callable[[int], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> ImportJobRead:
    """Run a queued job to its end; returns the finished job (failed jobs too: read its error)."""
    with session_scope() as db:
        job = get_job(db, job_id)
        ds = db.get(Dataset, job.dataset_id)
        dataset, modality, labels = ds.name, ds.modality, list(ds.labels)
        branch, message, author = job.branch, job.message, job.author
        record(db, job_id, state="running", phase="reading", started_at=utcnow(), heartbeat_at=utcnow(), host=host_name())
    try:
        with JobReporter(job_id, tick) as reporter:

            def committing(n: int) -> None:
                if reporter.phase != "committing":
                    reporter.enter("committing")
                    if on_phase:
                        on_phase("committing")
                reporter.tick(n)

            def committed(db, commit, changes: int, examples: int) -> None:  # noqa: ANN001
                # The job succeeds in the commit's own transaction: a commit is never left behind a job
                # that says it failed (nor a job that died between the two).
                now = utcnow()
                values = dict(
                    state="succeeded",
                    phase=None,
                    rows_done=examples,
                    examples=examples,
                    changes=changes,
                    commit_id=commit.id,
                    head_rows=commit.row_count,
                    finished_at=now,
                    heartbeat_at=now,
                )
                if not record(db, job_id, **values):
                    raise S2Error("this import was given up as failed while it committed (its process looked dead); nothing was committed")

            rows = iter_source_rows(source, modality, labels, blobs, confine=confine, members=members)
            done = ingest(
                run_in_transaction,
                blobs,
                dataset=dataset,
                branch=branch,
                rows=rows,
                message=message,
                author=author,
                on_read=reporter.tick,
                on_commit=committing,
                source_name=f"import source '{source}'",
                on_committed=committed,
            )
        if not done.changes:  # nothing to commit: no transaction recorded the job's end
            _finish(
                job_id,
                state="succeeded",
                phase=None,
                rows_done=done.examples,
                examples=done.examples,
                changes=0,
                commit_id=done.commit,
                head_rows=done.rows,
            )
        else:
            compact_after(blobs, done.commit)  # after the job ends: its commit is visible, the checkpoint can follow
            refresh_statistics(done.changes)
    except S2Error as exc:
        _finish(job_id, state="failed", error=describe_error(str(exc)))
    except Exception as exc:  # a bug or an outage: the job says so instead of staying "running"
        log.exception("import job %s failed", job_id)
        _finish(
            job_id,
            state="failed",
            error=describe_error(f"the import failed unexpectedly ({exc.__class__.__name__}: {exc}); nothing was committed"),
        )
    with session_scope() as db:
        return job_read(db, get_job(db, job_id))


def _finish(job_id: int, **values) -> None:
    run_in_transaction(lambda db: record(db, job_id, finished_at=utcnow(), heartbeat_at=utcnow(), **values))


_waiting: set[int] = set()  # jobs this process has queued and not started yet


def _beat_waiting(every: float) -> None:
    """Keep the heartbeat of this process's queued jobs fresh, so only a dead process's jobs go stale."""
    from sqlalchemy import update

    from server.imports.models import ImportJob

    while True:
        time.sleep(every)
        with _executor_lock:
            waiting = sorted(_waiting)
        if not waiting:
            continue
        try:
            with session_scope() as db:
                db.execute(
                    update(ImportJob)
                    .where(ImportJob.id.in_(waiting), ImportJob.state == "queued")
                    .values(heartbeat_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
        except Exception:  # the next beat may pass; staleness is minutes away
            log.debug("queued imports: heartbeat not recorded", exc_info=True)


def run_in_background(job_id: int, work: Callable[[], object], cleanup: Callable[[], None]) -> None:
    """Run an import on the server's import threads (S2_IMPORT_WORKERS at a time), then clean up after it."""
    from server.config import get_settings

    settings = get_settings()
    with _executor_lock:
        if not _executor:
            _executor.append(ThreadPoolExecutor(max_workers=settings.import_workers, thread_name_prefix="s2-import"))
            every = min(settings.worker_beat_s, settings.run_stale_after_s / 3)
            threading.Thread(target=_beat_waiting, args=(every,), daemon=True, name="s2-import-beat").start()
        _waiting.add(job_id)

    def task() -> None:
        with _executor_lock:
            _waiting.discard(job_id)
        try:
            work()
        finally:
            cleanup()

    _executor[0].submit(task)


def remove_folder(path: Path) -> Callable[[], None]:
    """A cleanup that removes an upload's folder."""
    return lambda: shutil.rmtree(path, ignore_errors=True)
