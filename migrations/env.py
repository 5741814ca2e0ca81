"""Alembic environment: migrate the connection the app hands over, or the configured database."""

from alembic import context

import server.models  # noqa: F401  (registers every table on Base.metadata)
from server.db import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run the revisions on the app's connection, or on one opened from S2_ settings."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    from sqlalchemy import create_engine

    from server.config import get_settings

    engine = create_engine(get_settings().resolved_database_url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
