"""Per-commit label counts: examples per label in each commit's snapshot.

Kept up to date from the delta as commits are written, so checks like "at least two labeled
classes" and class-balance views need no snapshot read. NULL for commits made before this
revision; they are filled in the first time they are asked for.

Revision ID: 0004_label_counts
Revises: 0003_web
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_label_counts"
down_revision = "0003_web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("commits") as batch:
        batch.add_column(sa.Column("label_counts", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("commits") as batch:
        batch.drop_column("label_counts")
