"""ORM tables of the versioning engine: datasets, commits, their row deltas, refs, staged edits."""

from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base

# Example keys compare byte by byte everywhere (PostgreSQL: COLLATE "C"; SQLite's BINARY is the
# same): SQL ranges over keys are merged with key-sorted Parquet checkpoints in Python order.
KEY = String(512).with_variant(String(512, collation="C"), "postgresql")


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


class Dataset(Base):
    """A labeled dataset: a repository of examples with a fixed modality and label set."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    modality: Mapped[str] = mapped_column(String(16))  # image | text | tabular
    task: Mapped[str] = mapped_column(String(32), default="classification")
    labels: Mapped[list[str]] = mapped_column(JSON)
    default_branch: Mapped[str] = mapped_column(String(128), default="main")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Commit(Base):
    """An immutable version of a dataset: its parents, its row delta, maybe a checkpoint."""

    __tablename__ = "commits"

    pk: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of content and parents
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    first_parent_pk: Mapped[int | None] = mapped_column(ForeignKey("commits.pk"))
    generation: Mapped[int] = mapped_column(Integer)  # 1 + max(parents' generation); root is 0
    author: Mapped[str] = mapped_column(String(256))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    change_count: Mapped[int] = mapped_column(Integer)  # rows in this commit's delta
    row_count: Mapped[int] = mapped_column(Integer)  # examples in the snapshot
    # Full key-sorted Parquet snapshot of this commit, written when the delta chain grew long.
    checkpoint_blob: Mapped[str | None] = mapped_column(String(64))
    chain_rows: Mapped[int] = mapped_column(Integer)  # delta rows since the nearest checkpoint
    chain_length: Mapped[int] = mapped_column(Integer)  # commits since the nearest checkpoint
    # Examples per label in the snapshot (unlabeled ones not counted); None for commits made
    # before migration 0004 until something asks (label_counts() fills it in).
    label_counts: Mapped[dict[str, int] | None] = mapped_column(JSON)


class CommitParent(Base):
    """One parent link of a commit; position 0 is the first parent (the branch it was made on)."""

    __tablename__ = "commit_parents"
    __table_args__ = {"sqlite_with_rowid": False}

    commit_pk: Mapped[int] = mapped_column(ForeignKey("commits.pk", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_pk: Mapped[int] = mapped_column(ForeignKey("commits.pk"), index=True)


class DatasetInput(Base):
    """A blob that is (or was, at some revision) the input of one of the dataset's examples."""

    __tablename__ = "dataset_inputs"
    __table_args__ = (Index("ix_dataset_inputs_blob", "blob_id"), {"sqlite_with_rowid": False})

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    blob_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class Change(Base):
    """One row of a commit's delta against its first parent: the example's new state, or a removal."""

    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_dataset_key", "dataset_id", "key"),)

    commit_pk: Mapped[int] = mapped_column(ForeignKey("commits.pk", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(KEY, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(Integer)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    input: Mapped[str | None] = mapped_column(String(64))  # sha256 of the input bytes (a blob id unless inline)
    label: Mapped[str | None] = mapped_column(String(256))
    split: Mapped[str | None] = mapped_column(String(64))
    meta: Mapped[str | None] = mapped_column(Text)  # canonical JSON object, or NULL
    inline: Mapped[str | None] = mapped_column(Text)  # the input itself when small (text, tabular row); else in the blob store
    author: Mapped[str | None] = mapped_column(String(256))  # who made this edit, when not the commit's author
    source: Mapped[str | None] = mapped_column(Text)  # where the edit came from, when suggested ("suggested by digits@7, ...")


class Branch(Base):
    """A movable named pointer to a commit; moved only by compare-and-swap."""

    __tablename__ = "branches"
    __table_args__ = (UniqueConstraint("dataset_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    head_pk: Mapped[int] = mapped_column(ForeignKey("commits.pk"))
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Tag(Base):
    """A fixed named pointer to a commit."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("dataset_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    commit_pk: Mapped[int] = mapped_column(ForeignKey("commits.pk"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StagedEdit(Base):
    """An uncommitted edit of one example on one branch (git's index, per example)."""

    __tablename__ = "staged_edits"
    __table_args__ = (UniqueConstraint("branch_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(KEY)
    remove: Mapped[bool] = mapped_column(Boolean, default=False)
    label: Mapped[str | None] = mapped_column(String(256))
    author: Mapped[str] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumps on every re-stage: optimistic lock
    input: Mapped[str | None] = mapped_column(String(64))  # the input the editor saw: a label never lands on another
    source: Mapped[str | None] = mapped_column(Text)  # where the edit came from, when suggested ("suggested by digits@7, ...")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
