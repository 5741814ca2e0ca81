"""ORM tables of the Label Studio bridge: a dataset's link to a project, and each pushed example's task."""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.datasets.models import KEY, utcnow
from server.db import Base


class LabelStudioLink(Base):
    """A dataset's branch linked to one Label Studio project (one link per dataset)."""

    __tablename__ = "ls_links"

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    url: Mapped[str] = mapped_column(String(1024))
    token: Mapped[str] = mapped_column(Text)  # the Label Studio API token s2 acts with; never shown back
    project: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(256))
    branch: Mapped[str] = mapped_column(String(256))
    webhook_id: Mapped[int | None] = mapped_column(Integer)
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_push_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_pull_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_pull: Mapped[dict | None] = mapped_column(JSON)  # the last pull's report: commit, counts, conflicts


class LabelStudioTask(Base):
    """One example pushed as a task: its task id (None while its batch is in flight) and what s2 held then.

    version is the example's edit version when it was pushed, or when s2 last took the task's annotations:
    an example whose version moved since was relabeled in s2, and its annotation is a conflict, never applied.
    seen lists the task's annotations (id and update time) already taken: a second pull skips the task.
    """

    __tablename__ = "ls_tasks"
    __table_args__ = (Index("ix_ls_tasks_task", "dataset_id", "task"),)

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(KEY, primary_key=True)
    task: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # sending, pushed, applied, agreed, conflict, invalid, disputed
    note: Mapped[str | None] = mapped_column(Text)  # why: the conflict, the invalid choice, each annotator's choice
    seen: Mapped[str | None] = mapped_column(Text)
    pushed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SigningKey(Base):
    """A server-wide secret, made once: signs the expiring media URLs handed to Label Studio."""

    __tablename__ = "signing_keys"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
