"""Data unit tests: named slices of a dataset with a minimum accuracy, and every model's score on each.

slices: a list of keys or a query on labels and metadata, optionally read at a pinned revision, and the
accuracy a model must reach on it. slice_scores: one row per model and slice (the score, how many
examples it covered, whether it passed, and the failing keys, the first of them).

Revision ID: 0015_slices
Revises: 0014_consensus
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_slices"
down_revision = "0014_consensus"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slices",
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("keys", sa.JSON, nullable=True),
        sa.Column("query", sa.Text, nullable=True),
        sa.Column("rev", sa.String(64), nullable=True),
        sa.Column("minimum", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "slice_scores",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("slice", sa.String(64), primary_key=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("examples", sa.Integer, nullable=False),
        sa.Column("minimum", sa.Float, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("failing", sa.JSON, nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("slice_scores")
    op.drop_table("slices")
