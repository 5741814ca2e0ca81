"""Which blobs are inputs of which dataset: the media endpoint serves a blob only to readers of a
dataset that has it as an input (the blob store is shared by every dataset, checkpoints and
model weights). One row per (dataset, input) ever committed; a relabel adds none.

Revision ID: 0005_dataset_inputs
Revises: 0004_label_counts
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_dataset_inputs"
down_revision = "0004_label_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_inputs",
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("blob_id", sa.String(64), primary_key=True),
        sqlite_with_rowid=False,  # the primary key is the table: one B-tree, not a table plus an index
    )
    op.execute("INSERT INTO dataset_inputs (dataset_id, blob_id) SELECT DISTINCT dataset_id, input FROM changes WHERE input IS NOT NULL")


def downgrade() -> None:
    op.drop_table("dataset_inputs")
