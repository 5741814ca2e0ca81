"""The schema only changes through Alembic: head matches the app's, and every revision goes down and up."""

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

import server.models  # noqa: F401
from server.db import HEAD_REVISION, MIGRATIONS_DIR, Base, upgrade_to_head


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


def test_dataset_inputs_are_backfilled_from_the_deltas(blobs):
    """0005 fills dataset_inputs from what was committed before it; commits after it keep the table up to date."""
    from sqlalchemy import text

    from server.db import get_engine
    from tests.factories import make_dataset, relabel, text_rows, upsert

    make_dataset()
    upsert(blobs, "ds", text_rows(blobs, {f"k{i}": (f"text {i}", "a") for i in range(5)}))
    relabel(blobs, "ds", {"k0": "b"})  # a relabel adds no input
    engine = get_engine()

    def inputs() -> set[str]:
        with engine.connect() as conn:
            return set(conn.scalars(text("SELECT blob_id FROM dataset_inputs")))

    expected = {blobs.put(f"text {i}".encode()) for i in range(5)}
    assert inputs() == expected
    with engine.begin() as conn:
        command.downgrade(_config(conn), "0004_label_counts")
    assert "dataset_inputs" not in inspect(engine).get_table_names()
    upgrade_to_head(engine)
    assert inputs() == expected
    upsert(blobs, "ds", text_rows(blobs, {"k9": ("text 9", "a"), "k1": ("text 1 rewritten", "a")}))
    assert inputs() == expected | {blobs.put(b"text 9"), blobs.put(b"text 1 rewritten")}


def test_downgrade_below_inline_inputs_refuses_rather_than_lose_examples(blobs):
    """0007 stores short texts inline; the older schema has no place for them, so going below it is refused, whole."""
    import pytest
    from sqlalchemy import text

    from server.blobs import blob_id_of
    from server.datasets.rows import Row
    from server.db import HEAD_REVISION, get_engine
    from tests.factories import make_dataset, upsert

    make_dataset()
    upsert(blobs, "ds", [Row("k1", blob_id_of(b"hello"), "a", inline="hello")])
    engine = get_engine()
    with pytest.raises(RuntimeError, match="1 committed and 0 staged example"), engine.begin() as conn:
        command.downgrade(_config(conn), "0006_model_version_unique")
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == HEAD_REVISION
        assert conn.scalar(text("SELECT inline FROM changes")) == "hello"
