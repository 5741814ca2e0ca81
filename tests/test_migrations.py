"""The schema only changes through Alembic: head matches the app's, and every revision goes down and up."""
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from server.db import HEAD_REVISION, MIGRATIONS_DIR, upgrade_to_head
from server.db import Base
import server.models  # noqa: F401


def _config(conn) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    return cfg


def test_app_head_is_alembic_head():
    assert ScriptDirectory.from_config(_config(None)).get_current_head() == HEAD_REVISION


def test_migrations_create_every_model_table_and_downgrade_cleanly(db_url):
    engine = create_engine(db_url)
    with engine.begin() as conn:
        command.downgrade(_config(conn), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade_to_head(engine)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    for name, table in Base.metadata.tables.items():  # every ORM column exists in the migrated schema
        assert {c.name for c in table.columns} <= {c["name"] for c in inspect(engine).get_columns(name)}, name
    engine.dispose()
