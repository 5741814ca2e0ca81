"""ORM tables of labeling: review queues."""

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from server.datasets.models import KEY, utcnow
from server.db import Base


class ReviewItem(Base):
    """One example queued for review in a dataset's named queue, with its score (higher first) and why."""

    __tablename__ = "review_items"
    __table_args__ = (
        UniqueConstraint("dataset_id", "queue", "key", name="uq_review_items_key"),
        Index("ix_review_items_page", "dataset_id", "queue", text("score DESC"), "key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    queue: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(KEY)
    score: Mapped[float] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
    added_by: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # a data-engine suggestion: the model that made it, the label it suggests and how sure it is, and
    # the example as it was ranked (its label and input): accepting after either changed is a conflict
    model_id: Mapped[int | None] = mapped_column(Integer)
    suggested: Mapped[str | None] = mapped_column(String(256))
    confidence: Mapped[float | None] = mapped_column(Float)
    given: Mapped[str | None] = mapped_column(String(256))
    input: Mapped[str | None] = mapped_column(String(64))
