"""ORM tables of the data engine: model analyses and kept labels."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.datasets.models import KEY, utcnow
from server.db import Base


class ModelAnalysis(Base):
    """What the workers learned of a model's data after training it: out-of-sample probabilities and embeddings."""

    __tablename__ = "model_analyses"

    model_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16))  # running, done, failed
    folds: Mapped[int] = mapped_column(Integer)
    blob: Mapped[str | None] = mapped_column(String(64))  # Parquet: key, label, oos, probabilities, embedding
    labeled: Mapped[int | None] = mapped_column(Integer)
    examples: Mapped[int | None] = mapped_column(Integer)
    crossfit_s: Mapped[float | None] = mapped_column(Float)  # the K fold models' training and scoring
    analysis_s: Mapped[float | None] = mapped_column(Float)  # the model over every example, and the queues' ranking
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class KeptLabel(Base):
    """A label a labeler kept after the data engine suggested another: not suggested again while it stays."""

    __tablename__ = "kept_labels"

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(KEY, primary_key=True)
    label: Mapped[str] = mapped_column(String(256), primary_key=True)
    kept_by: Mapped[str] = mapped_column(String(256))
    kept_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ConsensusQueue(Base):
    """A review queue that asks for `required` independent labels per example before one is staged."""

    __tablename__ = "consensus_queues"

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    required: Mapped[int] = mapped_column(Integer)
    branch: Mapped[str] = mapped_column(String(128))  # where an agreed label is staged
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Vote(Base):
    """One labeler's label for one example of a consensus queue (their later vote replaces it)."""

    __tablename__ = "votes"

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(KEY, primary_key=True)
    labeler: Mapped[str] = mapped_column(String(256), primary_key=True)
    label: Mapped[str] = mapped_column(String(256))
    voted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Slice(Base):
    """A data unit test: a named part of the dataset (keys, or a query), optionally at a pinned revision, and its minimum."""

    __tablename__ = "slices"

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    keys: Mapped[list | None] = mapped_column(JSON)
    query: Mapped[str | None] = mapped_column(Text)
    rev: Mapped[str | None] = mapped_column(String(64))  # a pinned commit id (None: each model's own commit)
    minimum: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SliceScore(Base):
    """A model's accuracy on a slice, and whether it reached the slice's minimum."""

    __tablename__ = "slice_scores"

    model_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    slice: Mapped[str] = mapped_column(String(64), primary_key=True)
    score: Mapped[float | None] = mapped_column(Float)
    examples: Mapped[int] = mapped_column(Integer)
    minimum: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(Boolean)
    failing: Mapped[list] = mapped_column(JSON)  # the first misclassified keys
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
