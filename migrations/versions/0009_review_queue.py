"""Review queues: examples queued for a labeler's second look (suspected label errors, uncertain ones).

`review_items` holds, per dataset and named queue, the keys to review with a score (higher first)
and the reason. The platform fills it (the data engine), or an engineer from a file or the API;
the workbench pages it by (score, key) through an index, so a page costs the same at any size.

Revision ID: 0009_review_queue
Revises: 0008_sign_in
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_review_queue"
down_revision = "0008_sign_in"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("key", sa.String(512).with_variant(sa.String(512, collation="C"), "postgresql"), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("added_by", sa.String(128), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("dataset_id", "queue", "key", name="uq_review_items_key"),
    )
    op.create_index("ix_review_items_page", "review_items", ["dataset_id", "queue", sa.text("score DESC"), "key"])


def downgrade() -> None:
    op.drop_index("ix_review_items_page", "review_items")
    op.drop_table("review_items")
