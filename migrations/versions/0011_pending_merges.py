"""Pending merges: a conflicted merge in progress per (dataset, target branch), like git's MERGE_HEAD.

Holds the source revision (as named and as a commit id), the target head the conflicts were
computed against, and the per-key resolutions recorded so far ({key: {take|label}}).

Revision ID: 0011_pending_merges
Revises: 0010_merge_requests
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_pending_merges"
down_revision = "0010_merge_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_merges",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("source_commit", sa.String(64), nullable=False),
        sa.Column("target_head", sa.String(64), nullable=False),
        sa.Column("resolutions", sa.JSON, nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("dataset_id", "target", name="uq_pending_merges_target"),
    )


def downgrade() -> None:
    op.drop_table("pending_merges")
