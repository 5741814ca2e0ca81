"""Merge requests: pull requests for data, with comments, approvals and per-key conflict resolutions.

`merge_requests` numbers requests per dataset (like a forge: digits!3) from a source branch into a
target branch; `merge_request_comments` holds the discussion; `merge_request_resolutions` the side
taken for each conflicting key (ours: the target's, theirs: the source's), applied when it merges.

Revision ID: 0010_merge_requests
Revises: 0009_review_queue
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_merge_requests"
down_revision = "0009_review_queue"
branch_labels = None
depends_on = None

KEY = sa.String(512).with_variant(sa.String(512, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "merge_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("approved_by", sa.JSON, nullable=False),
        sa.Column("merged_by", sa.String(128), nullable=True),
        sa.Column("merge_commit", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("dataset_id", "number", name="uq_merge_requests_number"),
    )
    op.create_index("ix_merge_requests_state", "merge_requests", ["dataset_id", "state", "number"])
    op.create_table(
        "merge_request_comments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.Integer, sa.ForeignKey("merge_requests.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "merge_request_resolutions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.Integer, sa.ForeignKey("merge_requests.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("take", sa.String(8), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("request_id", "key", name="uq_merge_request_resolutions_key"),
    )


def downgrade() -> None:
    op.drop_table("merge_request_resolutions")
    op.drop_table("merge_request_comments")
    op.drop_index("ix_merge_requests_state", "merge_requests")
    op.drop_table("merge_requests")
