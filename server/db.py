"""Engine, sessions and schema migration: one transaction per unit of work."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql import sqltypes

from server.config import get_settings
from server.errors import DatabaseUnavailable  # noqa: F401  (defined apart so the CLI can catch it without SQLAlchemy)

# The newest Alembic revision; the app compares it with the database's before deciding
# to run `alembic upgrade head`, so light commands skip loading Alembic at all.
HEAD_REVISION = "0016_labelstudio"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class Base(DeclarativeBase):
    """Declarative base of every ORM model."""


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    """Work that must only happen once the data it announces is committed (e.g. sending a task)."""
    import logging

    for callback in session.info.pop("after_commit", []):
        try:
            callback()
        except Exception:  # the commit stands; a failed follow-up is logged and retried elsewhere
            logging.getLogger(__name__).exception("after-commit callback failed")


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_commit(session: Session, previous_transaction) -> None:  # noqa: ANN001
    session.info.pop("after_commit", None)


@lru_cache(maxsize=1)
def _sqlite_utc_datetime() -> type:
    """The type of a timestamp on SQLite, which keeps no zone: s2 stores UTC, so one read back is UTC again,
    aware as PostgreSQL's timestamptz gives it (JSON then carries the zone; aware and naive never meet).
    Made on first use: PostgreSQL users do not load the SQLite dialect."""
    from sqlalchemy.dialects.sqlite import DATETIME

    class UTCDateTime(DATETIME):
        def bind_processor(self, dialect):  # noqa: ANN001, ANN202
            inner = super().bind_processor(dialect)

            def process(value):  # noqa: ANN001, ANN202
                if isinstance(value, datetime) and value.tzinfo is not None:
                    value = value.astimezone(UTC)
                return inner(value) if inner else value

            return process

        def result_processor(self, dialect, coltype):  # noqa: ANN001, ANN202
            inner = super().result_processor(dialect, coltype)
            if not self.timezone:
                return inner

            def process(value):  # noqa: ANN001, ANN202
                value = inner(value) if inner else value
                return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value

            return process

    return UTCDateTime


def _make_engine(url: str, begin: str = "BEGIN IMMEDIATE") -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})
        # Before the first statement: the dialect caches each type's processors on first use.
        engine.dialect.colspecs = {**engine.dialect.colspecs, sqltypes.DateTime: _sqlite_utc_datetime()}

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps it atomic
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            # Writers: IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout
            # instead of one failing with "database is locked" on lock upgrade. Readers (read_scope):
            # a deferred BEGIN reads a snapshot and never holds the writers up, in WAL mode.
            conn.exec_driver_sql(begin)

        return engine
    # No pre-ping: it costs a round trip per transaction. A connection the server dropped
    # fails its first statement instead, the pool is invalidated, and run_in_transaction
    # runs the unit again on a fresh connection.
    return create_engine(url, pool_size=10, max_overflow=10, pool_recycle=1800, pool_use_lifo=True)


_ENGINES: list[Engine] = []


def _forget_parent_connections() -> None:
    # A forked child (Celery prefork, a DDP rank) must not reuse its parent's pooled connections.
    for engine in _ENGINES:
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_parent_connections)


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    """The engine for url (default: the settings' database), migrated to head."""
    from server.wiring import install

    install()  # domain reactions (e.g. training a watched branch's new head) before any unit of work
    url = url or get_settings().resolved_database_url
    engine = _make_engine(url)
    ensure_schema(engine)
    _ENGINES.append(engine)
    return engine


def ensure_schema(engine: Engine) -> None:
    """Run `alembic upgrade head` unless the database is already there."""
    try:
        with engine.connect() as conn:
            has_table = engine.dialect.has_table(conn, "alembic_version")
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar() if has_table else None
    except Exception as exc:  # any driver error here means the database is not usable
        raise DatabaseUnavailable(
            f"cannot open database {engine.url.render_as_string(hide_password=True)}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"
        ) from exc
    if current == HEAD_REVISION:
        return
    upgrade_to_head(engine)


def upgrade_to_head(engine: Engine) -> None:
    """Apply every pending Alembic revision to engine's database."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two processes starting at once: the second waits here, then finds nothing to do.
            conn.execute(text("SELECT pg_advisory_xact_lock(2207)"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@lru_cache(maxsize=8)
def get_read_engine(url: str | None = None) -> Engine:
    """The engine for read-only units of work: on SQLite, transactions that take no write lock."""
    engine = get_engine(url)
    if engine.dialect.name != "sqlite":
        return engine
    reader = _make_engine(engine.url.render_as_string(hide_password=False), begin="BEGIN")
    _ENGINES.append(reader)
    return reader


@contextmanager
def read_scope(url: str | None = None) -> Iterator[Session]:
    """A session for reading only (a long read, an export, a checkpoint's snapshot): it never blocks writers."""
    session = _session_factory(get_read_engine(url))()
    try:
        yield session
    finally:
        session.close()  # ends the transaction without expiring what was read: objects stay usable, detached


def run_read(work, *, url: str | None = None, retries: int = 3):
    """Run work(session) in a read-only transaction, again on a fresh connection if the pooled one was dropped."""
    from sqlalchemy.exc import DBAPIError

    for attempt in range(retries):
        try:
            with read_scope(url) as db:
                return work(db)
        except DBAPIError as exc:
            if not exc.connection_invalidated or attempt == retries - 1:
                raise


@lru_cache(maxsize=8)
def _session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)  # built once: building one costs ~0.3 ms


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    session = _session_factory(get_engine(url))()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def _unit_of_work(url: str | None) -> Iterator[Session]:
    """session_scope for run_in_transaction: a connection lost during COMMIT raises CommitOutcomeUnknown."""
    from sqlalchemy.exc import DBAPIError

    from server.errors import CommitOutcomeUnknown

    session = _session_factory(get_engine(url))()
    try:
        yield session
        session.flush()  # the unit's last writes go out now: up to here a failure is before COMMIT and saved nothing
        try:
            session.commit()
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise  # the database answered (a deferred constraint, a serialization failure): it rolled back
            # COMMIT was sent and no answer came: the database may have committed before the connection went.
            first_line = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
            raise CommitOutcomeUnknown(
                f"the connection to the database was lost while it committed this change ({first_line}), so whether "
                "it was saved is unknown; it was not retried, so as not to apply it twice: check whether it is there "
                "before trying again"
            ) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def run_in_transaction(work, *, url: str | None = None, retries: int = 8):
    """Run work(session) in its own transaction, rerunning it when it lost a branch compare-and-swap or its
    connection before COMMIT was sent; a connection lost during COMMIT raises CommitOutcomeUnknown instead."""
    import random
    import time

    from sqlalchemy.exc import DBAPIError

    from server.errors import BranchMoved

    for attempt in range(retries):
        try:
            with _unit_of_work(url) as db:
                return work(db)
        except BranchMoved:
            if attempt == retries - 1:
                raise
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # let the winner finish first
        except DBAPIError as exc:
            # Only failures before COMMIT reach here (_unit_of_work turns one during COMMIT into CommitOutcomeUnknown),
            # so the transaction was rolled back and running the unit again cannot apply it twice.
            if not exc.connection_invalidated or attempt == retries - 1:
                raise  # a pooled connection the database dropped (restart, idle timeout): once more, fresh


ANALYZE_AFTER_ROWS = 10_000  # a write this large may leave the planner's statistics far behind the tables


def refresh_statistics(changed_rows: int) -> None:
    """After a bulk write on PostgreSQL, bring the planner's statistics up to date at once.

    Autovacuum analyzes on its own schedule; until it does, a freshly imported table can be planned
    from stale statistics, and a lookup of a thousand keys through the (dataset, key) index ran as a
    scan of every row: a diff page took 0.9 s at 1M examples and 6 s at 10M instead of 0.1 s.
    ANALYZE samples a fixed number of rows, so this costs about a second whatever the size.
    """
    if changed_rows < ANALYZE_AFTER_ROWS:
        return
    engine = get_engine()
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        for table in ("changes", "commits", "dataset_inputs"):
            conn.execute(text(f"ANALYZE {table}"))
        conn.commit()
