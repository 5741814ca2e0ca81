"""Browser sign-in: user passwords, failed-attempt throttling, and session cookies.

- `users.password_hash`: an argon2id hash (NULL: the user signs in with API tokens only).
- `users.failed_logins`, `users.blocked_until`: failed sign-ins in a row, and until when the
  next attempt is refused; a successful sign-in resets both.
- `web_sessions`: one row per signed-in browser, stored as the sha256 of the cookie's secret.

Revision ID: 0008_sign_in
Revises: 0007_engine_scale
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_sign_in"
down_revision = "0007_engine_scale"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("password_hash", sa.String(255), nullable=True))
        batch.add_column(sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("blocked_until", TZ, nullable=True))
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("web_sessions")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("blocked_until")
        batch.drop_column("failed_logins")
        batch.drop_column("password_hash")
