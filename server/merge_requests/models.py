"""ORM tables of merge requests: the request, its comments, and the side taken for each conflicting key."""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.datasets.models import KEY, utcnow
from server.db import Base


class MergeRequest(Base):
    """A request to merge branch `source` into branch `target` of one dataset, numbered per dataset."""

    __tablename__ = "merge_requests"
    __table_args__ = (
        UniqueConstraint("dataset_id", "number", name="uq_merge_requests_number"),
        Index("ix_merge_requests_state", "dataset_id", "state", "number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(128))
    target: Mapped[str] = mapped_column(String(128))
    author: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))  # open, merged, closed
    approved_by: Mapped[list[str]] = mapped_column(JSON, default=list)
    merged_by: Mapped[str | None] = mapped_column(String(128))
    merge_commit: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MergeRequestComment(Base):
    __tablename__ = "merge_request_comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("merge_requests.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MergeRequestResolution(Base):
    """For one key both sides changed differently: take the target's row (ours) or the source's (theirs)."""

    __tablename__ = "merge_request_resolutions"
    __table_args__ = (UniqueConstraint("request_id", "key", name="uq_merge_request_resolutions_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("merge_requests.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(KEY)
    take: Mapped[str] = mapped_column(String(8))  # ours | theirs
    by: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
