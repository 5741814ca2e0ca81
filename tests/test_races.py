"""Units of work that lose their connection to PostgreSQL before or during COMMIT, with real backends terminated."""

import threading
import time

import pytest
from sqlalchemy import create_engine, text

from server.api.problems import status_of
from server.db import get_engine, run_in_transaction
from server.errors import CommitOutcomeUnknown

postgres = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


def _marks_table(url: str, *, slow_commit: bool) -> None:
    """race_marks, one row per attempt; with slow_commit, COMMIT sleeps (a deferred constraint trigger) long enough to be killed there."""
    with get_engine(url).begin() as conn:
        conn.execute(text("CREATE TABLE race_marks (attempt int NOT NULL)"))
        if not slow_commit:
            return
        conn.execute(
            text("CREATE FUNCTION race_sleep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(5); RETURN NULL; END $$")
        )
        conn.execute(
            text(
                "CREATE CONSTRAINT TRIGGER race_slow_commit AFTER INSERT ON race_marks "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION race_sleep()"
            )
        )


def _terminate(url: str, where: str) -> int | None:
    """Terminate the first backend of this database that matches `where` (SQL on pg_stat_activity), once it shows up."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with admin.connect() as conn:
                pid = conn.execute(text(f"SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND {where}")).scalar()
                if pid is not None:
                    conn.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})  # waits until it is gone
                    return pid
            time.sleep(0.02)
        return None
    finally:
        admin.dispose()


@postgres
def test_a_unit_whose_commit_loses_its_connection_runs_once_and_says_the_outcome_is_unknown(s2env, db_url):
    """The connection dies while COMMIT runs: the change may have been saved, so the unit is not run again."""
    _marks_table(db_url, slow_commit=True)
    calls, killed = [], []

    def mark(db) -> int:
        calls.append(db.execute(text("SELECT pg_backend_pid()")).scalar())
        db.execute(text("INSERT INTO race_marks VALUES (:n)"), {"n": len(calls)})
        return len(calls)

    killer = threading.Thread(target=lambda: killed.append(_terminate(db_url, "query = 'COMMIT' AND wait_event = 'PgSleep'")))
    killer.start()
    with pytest.raises(CommitOutcomeUnknown, match="unknown") as raised:
        run_in_transaction(mark)
    killer.join()
    assert status_of(raised.value) == (503, "commit-outcome-unknown")
    assert killed == calls[:1], "the backend killed at COMMIT was not the unit's"
    assert len(calls) == 1, f"the unit ran {len(calls)} times after its COMMIT lost the connection"


@postgres
def test_a_unit_whose_connection_drops_before_commit_is_run_again(s2env, db_url):
    """The connection dies between two statements, before COMMIT: nothing was saved, so the unit runs again, fresh."""
    _marks_table(db_url, slow_commit=False)
    calls = []

    def mark(db) -> int:
        calls.append(db.execute(text("SELECT pg_backend_pid()")).scalar())
        if len(calls) == 1:
            assert _terminate(db_url, f"pid = {calls[0]}") == calls[0]
        db.execute(text("INSERT INTO race_marks VALUES (:n)"), {"n": len(calls)})
        return len(calls)

    assert run_in_transaction(mark) == 2
    assert calls[0] != calls[1], "the second attempt reused the dead connection"
    assert run_in_transaction(lambda db: db.execute(text("SELECT attempt FROM race_marks")).scalars().all()) == [2]
