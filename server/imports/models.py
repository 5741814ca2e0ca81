"""ORM table of import jobs: an import runs in the background and reports its progress here."""

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.datasets.models import utcnow
from server.db import Base


class ImportJob(Base):
    """One import of a source (an upload, a file, a folder) into a branch, from queued to done."""

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    branch: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(Text)  # what is imported, as the user named it (file names)
    message: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(256))
    state: Mapped[str] = mapped_column(String(16), index=True)  # queued running succeeded failed
    phase: Mapped[str | None] = mapped_column(String(32))  # reading | committing
    rows_done: Mapped[int] = mapped_column(Integer, default=0)  # rows read (phase reading) or written (committing)
    examples: Mapped[int | None] = mapped_column(Integer)  # rows the source held
    changes: Mapped[int | None] = mapped_column(Integer)  # of which changed something (0: nothing to commit)
    head_rows: Mapped[int | None] = mapped_column(Integer)  # examples on the branch afterwards
    commit_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(256))  # the process running it (host:pid)
    work_dir: Mapped[str | None] = mapped_column(Text)  # the upload's files, removed when the job ends
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
