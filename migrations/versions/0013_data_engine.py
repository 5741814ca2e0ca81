"""The data engine: each model's out-of-sample view of its data, suggestions in the review queues, provenance of edits.

model_analyses: per model version, the cross-fitting and analysis the workers ran after training (state,
folds, what it cost, the Parquet blob of out-of-sample probabilities and embeddings per example).
review_items gains what a suggestion needs: the model that made it, the label it suggests, its confidence,
the label and input the example had when it was ranked (accepting it after either changed is a conflict).
kept_labels: labels a labeler kept after seeing a suggestion; not suggested again while the label stays.
staged_edits.source / changes.source: where an edit came from when not typed by its author
("suggested by digits@7, label-error queue"), shown in history and blame.

Revision ID: 0013_data_engine
Revises: 0012_warm_starts
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_data_engine"
down_revision = "0012_warm_starts"
branch_labels = None
depends_on = None

KEY = sa.String(512).with_variant(sa.String(512, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "model_analyses",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("folds", sa.Integer, nullable=False),
        sa.Column("blob", sa.String(64), nullable=True),
        sa.Column("labeled", sa.Integer, nullable=True),
        sa.Column("examples", sa.Integer, nullable=True),
        sa.Column("crossfit_s", sa.Float, nullable=True),
        sa.Column("analysis_s", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    # plain ALTER TABLE ADD/DROP COLUMN (SQLite 3.35+ has both): a batch table copy on SQLite would have to drop
    # tables other tables reference (training_runs), which its foreign keys refuse
    op.add_column("review_items", sa.Column("model_id", sa.Integer, nullable=True))
    op.add_column("review_items", sa.Column("suggested", sa.String(256), nullable=True))
    op.add_column("review_items", sa.Column("confidence", sa.Float, nullable=True))
    op.add_column("review_items", sa.Column("given", sa.String(256), nullable=True))
    op.add_column("review_items", sa.Column("input", sa.String(64), nullable=True))
    op.create_table(
        "kept_labels",
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", KEY, primary_key=True),
        sa.Column("label", sa.String(256), primary_key=True),
        sa.Column("kept_by", sa.String(256), nullable=False),
        sa.Column("kept_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("staged_edits", sa.Column("source", sa.Text, nullable=True))
    op.add_column("changes", sa.Column("source", sa.Text, nullable=True))
    op.add_column("watch_rules", sa.Column("folds", sa.Integer, nullable=True))
    op.add_column("training_runs", sa.Column("folds", sa.Integer, nullable=True))


def downgrade() -> None:
    op.drop_column("training_runs", "folds")
    op.drop_column("watch_rules", "folds")
    op.drop_column("changes", "source")
    op.drop_column("staged_edits", "source")
    op.drop_table("kept_labels")
    for column in ("input", "given", "confidence", "suggested", "model_id"):
        op.drop_column("review_items", column)
    op.drop_table("model_analyses")
