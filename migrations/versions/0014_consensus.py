"""Consensus labeling: a review queue that asks for N independent labels per example, and the votes.

consensus_queues: which review queues of a dataset ask for how many labels, and the branch where an agreed
label is staged. votes: one label per labeler per queued example (a labeler's later vote replaces theirs).

Revision ID: 0014_consensus
Revises: 0013_data_engine
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_consensus"
down_revision = "0013_data_engine"
branch_labels = None
depends_on = None

KEY = sa.String(512).with_variant(sa.String(512, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "consensus_queues",
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("queue", sa.String(64), primary_key=True),
        sa.Column("required", sa.Integer, nullable=False),
        sa.Column("branch", sa.String(128), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "votes",
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("queue", sa.String(64), primary_key=True),
        sa.Column("key", KEY, primary_key=True),
        sa.Column("labeler", sa.String(256), primary_key=True),
        sa.Column("label", sa.String(256), nullable=False),
        sa.Column("voted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("votes")
    op.drop_table("consensus_queues")
