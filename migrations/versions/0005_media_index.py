"""Index the deltas by (dataset, input): the media endpoint serves a blob only to readers of a
dataset that has it as an input, and needs to ask that cheaply.

Revision ID: 0005_media_index
Revises: 0004_label_counts
"""
from alembic import op

revision = "0005_media_index"
down_revision = "0004_label_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_changes_dataset_input", "changes", ["dataset_id", "input"])


def downgrade() -> None:
    op.drop_index("ix_changes_dataset_input", table_name="changes")
