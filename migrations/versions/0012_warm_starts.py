"""Incremental compile: what a run and its model started from.

training_runs.parent_model_id: the model version whose weights the run started from (a warm start): the one
asked for with --from-model from submission on, else the one a warm-start run chose when it began;
training_runs.scratch_reason: why a run asked to warm-start trained from scratch instead;
model_versions.parent_model_id: the model version a model was fine-tuned from (null: trained from scratch).
No foreign keys, as for training_runs.model_version_id: a parent may be another dataset's model, and deleting
that dataset must not reach into this one's history.

Revision ID: 0012_warm_starts
Revises: 0011_pending_merges
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_warm_starts"
down_revision = "0011_pending_merges"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("training_runs", sa.Column("parent_model_id", sa.Integer, nullable=True))
    op.add_column("training_runs", sa.Column("scratch_reason", sa.Text, nullable=True))
    op.add_column("model_versions", sa.Column("parent_model_id", sa.Integer, nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+ has it): a batch "recreate" would drop training_runs,
    # which model_versions references (a foreign key SQLite enforces here), as 0007 found for commits.
    op.drop_column("model_versions", "parent_model_id")
    op.drop_column("training_runs", "scratch_reason")
    op.drop_column("training_runs", "parent_model_id")
