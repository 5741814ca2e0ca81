"""Training: watch rules, pinned evaluation sets, runs, workers, model versions.

Revision ID: 0002_training
Revises: 0001_versioning
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_training"
down_revision = "0001_versioning"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "watch_rules",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("branch", sa.String(128), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("dataset_id", "branch"),
    )
    op.create_table(
        "eval_pins",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("source_dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("commit_id", sa.String(64), nullable=False),
        sa.Column("only_eval_split", sa.Boolean, nullable=False),
        sa.UniqueConstraint("dataset_id", "name"),
    )
    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("commit_id", sa.String(64), nullable=False),
        sa.Column("branch", sa.String(128)),
        sa.Column("covers", sa.JSON, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("progress", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("log_tail", sa.Text),
        sa.Column("worker_host", sa.String(256)),
        sa.Column("device", sa.String(64)),
        sa.Column("model_version_id", sa.Integer),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("dispatched_at", TZ),
        sa.Column("started_at", TZ),
        sa.Column("heartbeat_at", TZ),
        sa.Column("finished_at", TZ),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(256), nullable=False, unique=True),
        sa.Column("queues", sa.JSON, nullable=False),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("seen_at", TZ, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("training_runs.id"), nullable=False),
        sa.Column("commit_id", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("code_version", sa.String(64), nullable=False),
        sa.Column("weights_blob", sa.String(64), nullable=False),
        sa.Column("predictions_blob", sa.String(64), nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("curves", sa.JSON, nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("stage", sa.String(32)),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("dataset_id", "version"),
    )


def downgrade() -> None:
    for table in ("model_versions", "workers", "training_runs", "eval_pins", "watch_rules"):
        op.drop_table(table)
