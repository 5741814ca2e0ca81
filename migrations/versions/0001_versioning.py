"""Versioning engine: datasets, commits, row deltas, branches, tags, staged edits.

Revision ID: 0001_versioning
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_versioning"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("modality", sa.String(16), nullable=False),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("default_branch", sa.String(128), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "commits",
        sa.Column("pk", sa.Integer, primary_key=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("parent_ids", sa.JSON, nullable=False),
        sa.Column("first_parent_pk", sa.Integer, sa.ForeignKey("commits.pk")),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("author", sa.String(256), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("change_count", sa.Integer, nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("checkpoint_blob", sa.String(64)),
        sa.Column("chain_rows", sa.Integer, nullable=False),
        sa.Column("chain_length", sa.Integer, nullable=False),
    )
    op.create_table(
        "changes",
        sa.Column("commit_pk", sa.Integer, sa.ForeignKey("commits.pk", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("dataset_id", sa.Integer, nullable=False),
        sa.Column("removed", sa.Boolean, nullable=False),
        sa.Column("input", sa.String(64)),
        sa.Column("label", sa.String(256)),
        sa.Column("split", sa.String(64)),
        sa.Column("meta", sa.Text),
    )
    op.create_index("ix_changes_dataset_key", "changes", ["dataset_id", "key"])
    op.create_table(
        "branches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("head_pk", sa.Integer, sa.ForeignKey("commits.pk"), nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("dataset_id", "name"),
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("commit_pk", sa.Integer, sa.ForeignKey("commits.pk"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("dataset_id", "name"),
    )
    op.create_table(
        "staged_edits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("branch_id", sa.Integer, sa.ForeignKey("branches.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("remove", sa.Boolean, nullable=False),
        sa.Column("label", sa.String(256)),
        sa.Column("author", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("branch_id", "key"),
    )


def downgrade() -> None:
    for table in ("staged_edits", "tags", "branches", "changes", "commits", "datasets"):
        op.drop_table(table)
