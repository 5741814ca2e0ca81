"""ORM tables of training: watch rules, pinned evaluation sets, runs, and the workers that run them."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.datasets.models import utcnow
from server.db import Base


class WatchRule(Base):
    """Every commit on this branch is trained with this spec."""

    __tablename__ = "watch_rules"
    __table_args__ = (UniqueConstraint("dataset_id", "branch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    branch: Mapped[str] = mapped_column(String(128))
    spec: Mapped[dict] = mapped_column(JSON)
    folds: Mapped[int | None] = mapped_column(Integer)  # the data engine's cross-fitting: K folds, 0 off, None the default
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EvalPin(Base):
    """An evaluation set every model of a dataset is scored on: a fixed revision of some dataset."""

    __tablename__ = "eval_pins"
    __table_args__ = (UniqueConstraint("dataset_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    source_dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    commit_id: Mapped[str] = mapped_column(String(64))
    only_eval_split: Mapped[bool] = mapped_column(Boolean)  # the revision's eval split, or all of it


class TrainingRun(Base):
    """One training of one dataset commit with one spec, from queued to a terminal state."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    commit_id: Mapped[str] = mapped_column(String(64))
    branch: Mapped[str | None] = mapped_column(String(128))  # set when a watch rule started it
    covers: Mapped[list[str]] = mapped_column(JSON)  # commits this run stands for (coalesced)
    spec: Mapped[dict] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)  # queued running succeeded failed cancelled
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    log_tail: Mapped[str | None] = mapped_column(Text)
    worker_host: Mapped[str | None] = mapped_column(String(256))
    device: Mapped[str | None] = mapped_column(String(64))
    model_version_id: Mapped[int | None] = mapped_column(Integer)  # its model (another run's when this one reused a build)
    parent_model_id: Mapped[int | None] = mapped_column(Integer)  # warm start: the model it starts from (see 0012)
    scratch_reason: Mapped[str | None] = mapped_column(Text)  # warm start asked, but trained from scratch: why
    folds: Mapped[int | None] = mapped_column(Integer)  # the data engine's cross-fitting after training: K, 0 off, None the default
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str | None] = mapped_column(String(256))  # who asked (None: a watch rule)


class WorkerHeartbeat(Base):
    """A live `s2 worker`: which queues it serves and whether it has a GPU."""

    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)  # host:pid
    queues: Mapped[list[str]] = mapped_column(JSON)
    gpus: Mapped[int] = mapped_column(Integer)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelVersion(Base):
    """A trained model: the 'binary' of one dataset commit, with its metrics and predictions."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per dataset
    run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id"))
    commit_id: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(64))
    code_version: Mapped[str] = mapped_column(String(64))
    weights_blob: Mapped[str] = mapped_column(String(64))
    predictions_blob: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict] = mapped_column(JSON)  # eval set name -> metrics
    curves: Mapped[dict] = mapped_column(JSON)
    device: Mapped[str] = mapped_column(String(64))
    duration_s: Mapped[float] = mapped_column(Float)
    parent_model_id: Mapped[int | None] = mapped_column(Integer)  # the model it was fine-tuned from (None: from scratch)
    stage: Mapped[str | None] = mapped_column(String(32))  # production, staging, archived
    promoted_by: Mapped[str | None] = mapped_column(String(256))  # who last moved its stage
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
