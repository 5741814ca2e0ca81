"""ORM tables of users, their API tokens, dataset assignments and the audit trail of writes."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.datasets.models import utcnow
from server.db import Base


class User(Base):
    """Someone who uses the API: an admin, an engineer or a labeler."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # admin | engineer | labeler
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    password_hash: Mapped[str | None] = mapped_column(String(255))  # argon2id; None: API tokens only
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # failed sign-ins in a row
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # no sign-in attempt before this


class ApiToken(Base):
    """A bearer token, stored as its sha256 only: shown once when issued, revocable."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the token
    prefix: Mapped[str] = mapped_column(String(16))  # the token's first characters, to recognise it
    label: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A signed-in browser: the session cookie's secret, stored as its sha256 only."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class DatasetMember(Base):
    """A labeler assigned to a dataset: they may read it and edit its unprotected branches."""

    __tablename__ = "dataset_members"
    __table_args__ = (UniqueConstraint("dataset_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class AuditEvent(Base):
    """One write and who made it, recorded in the same transaction as the write."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))  # e.g. dataset.create, edits.stage, model.promote
    target: Mapped[str] = mapped_column(Text)  # what it acted on, e.g. "pets/main"
    detail: Mapped[dict | None] = mapped_column(JSON)
    dataset_id: Mapped[int | None] = mapped_column(Integer, index=True)
