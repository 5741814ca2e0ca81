"""The Label Studio bridge: a dataset's link to a project, its pushed tasks, and the key that signs media URLs.

ls_links: one per dataset (project, branch, token, webhook and its secret, last push and pull). ls_tasks: one per
pushed example (task id, the example's version when pushed or last synced, the outcome of the last pull).
signing_keys: server-wide secrets made on first use (HMAC of expiring media URLs).

Revision ID: 0016_labelstudio
Revises: 0015_slices
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_labelstudio"
down_revision = "0015_slices"
branch_labels = None
depends_on = None
KEY = sa.String(512).with_variant(sa.String(512, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "ls_links",
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("project", sa.Integer, nullable=False),
        sa.Column("title", sa.String(256), nullable=False),
        sa.Column("branch", sa.String(256), nullable=False),
        sa.Column("webhook_id", sa.Integer, nullable=True),
        sa.Column("webhook_secret", sa.String(128), nullable=True),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_push_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_pull_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_pull", sa.JSON, nullable=True),
    )
    op.create_table(
        "ls_tasks",
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", KEY, primary_key=True),
        sa.Column("task", sa.Integer, nullable=True),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("seen", sa.Text, nullable=True),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_ls_tasks_task", "ls_tasks", ["dataset_id", "task"])
    op.create_table(
        "signing_keys",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("signing_keys")
    op.drop_index("ix_ls_tasks_task", table_name="ls_tasks")
    op.drop_table("ls_tasks")
    op.drop_table("ls_links")
