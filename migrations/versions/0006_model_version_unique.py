"""At most one production model per dataset: a partial unique index on model_versions(dataset_id).

promote() serializes on the dataset row; the index is the database's own guarantee behind it.
(dataset_id, version) has been unique since 0002_training. Datasets that a concurrent promotion
already left with two production models keep the highest version, the one `DATASET@production`
resolves to; the others become archived, as a later promotion would have made them.

Revision ID: 0006_model_version_unique
Revises: 0005_dataset_inputs
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_model_version_unique"
down_revision = "0005_dataset_inputs"
branch_labels = None
depends_on = None

PRODUCTION = sa.text("stage = 'production'")


def upgrade() -> None:
    op.execute(
        "UPDATE model_versions SET stage = 'archived' WHERE stage = 'production' AND version < "
        "(SELECT max(p.version) FROM model_versions p WHERE p.dataset_id = model_versions.dataset_id AND p.stage = 'production')"
    )
    op.create_index(
        "uq_model_versions_production",
        "model_versions",
        ["dataset_id"],
        unique=True,
        postgresql_where=PRODUCTION,
        sqlite_where=PRODUCTION,
    )


def downgrade() -> None:
    op.drop_index("uq_model_versions_production", table_name="model_versions")
