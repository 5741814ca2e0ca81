"""Registry writes that race, and units of work that lose their connection, shown with real processes and connections.

The concurrent tests hold a gate (row locks on PostgreSQL, the write lock on SQLite) on a
connection of their own, start the processes, wait until every one is blocked behind it,
then open it: whatever each process read before blocking, they all go on at the same moment.
"""

import subprocess
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from server.api.problems import status_of
from server.db import get_engine, run_in_transaction
from server.errors import CommitOutcomeUnknown
from tests.factories import make_dataset, text_rows, upsert

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["a", "b", "c"]
TRUTH = {"k0": "a", "k1": "b", "k2": "c"}
postgres = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)

# Finish a run as a worker does once training returned: the real register_model with a TrainResult built as data.
REGISTER = textwrap.dedent(f"""
    import sys
    from server.blobs import default_blob_store
    from tests.api.factories import register_model
    print("ready", flush=True)
    print(register_model(default_blob_store(), int(sys.argv[1]), {LABELS!r}, {TRUTH!r}, {TRUTH!r}))
""")
PROMOTE = textwrap.dedent("""
    import sys
    from server.db import run_in_transaction
    from server.errors import Conflict
    from server.registry.compare import promote
    print("ready", flush=True)
    try:
        done = run_in_transaction(lambda db: promote(db, ref=sys.argv[1], stage="production", max_regression=0.0, by="racer"))
        print("promoted", done["replaced"])
    except Conflict as exc:  # refused: one of the two outcomes the test accepts
        print("refused", exc)
""")


def queue_runs(blobs, dataset: str, count: int) -> list[int]:
    """A dataset with a few labeled examples and `count` queued training runs of it (through the real services)."""
    from server.runs.service import submit_run

    make_dataset(dataset, labels=tuple(LABELS))
    upsert(blobs, dataset, text_rows(blobs, {k: (f"text {k}", label) for k, label in TRUTH.items()}))
    return [run_in_transaction(lambda db: submit_run(db, blobs, dataset=dataset, rev=None, spec=None)).id for _ in range(count)]


@contextmanager
def gate(url: str, lock_sql: str):
    """Hold lock_sql's row locks (PostgreSQL) or the write lock (SQLite, BEGIN IMMEDIATE) until the block ends."""
    with get_engine(url).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(lock_sql))
        yield


def start(script: str, args: list[str], env: dict[str, str]) -> list[subprocess.Popen]:
    """One Python process per argument running script, each told when it reached its unit of work."""
    procs = [
        subprocess.Popen([sys.executable, "-c", script, arg], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for arg in args
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready", proc.communicate()[1]
    return procs


def wait_until_blocked(url: str, procs: list[subprocess.Popen]) -> None:
    """Wait until every process waits on a lock; on SQLite, give each time to reach BEGIN IMMEDIATE."""
    if url.startswith("sqlite"):
        time.sleep(1.0)  # SQLite shows no lock waits; each process is one import away from its BEGIN
        return
    watcher = create_engine(url, isolation_level="AUTOCOMMIT")  # a fresh statistics snapshot per query
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    deadline = time.monotonic() + 120
    try:
        while True:
            with watcher.connect() as conn:
                if conn.execute(query).scalar() == len(procs):
                    return
            exited = [p.communicate() for p in procs if p.poll() is not None]
            assert not exited, f"a process finished before the gate opened: {exited}"
            assert time.monotonic() < deadline, "the processes never all blocked behind the gate"
            time.sleep(0.05)
    finally:
        watcher.dispose()


def finish(procs: list[subprocess.Popen]) -> list[str]:
    """Each process's last output line, after requiring that it exited 0."""
    lines = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        lines.append(out.strip().splitlines()[-1])
    return lines


def test_runs_of_one_dataset_finishing_together_all_register(s2env, blobs, db_url):
    """Three runs register at the same moment: three models, versions 1, 2, 3, none lost."""
    runs = queue_runs(blobs, "race", 3)
    dataset_id = run_in_transaction(lambda db: db.execute(text("SELECT id FROM datasets WHERE name = 'race'")).scalar())
    # Every registration stops at the dataset row: to lock it, or (unlocked) at the INSERT whose foreign key points at it.
    with gate(db_url, f"SELECT id FROM datasets WHERE id = {dataset_id} FOR UPDATE"):
        procs = start(REGISTER, [str(r) for r in runs], s2env)
        wait_until_blocked(db_url, procs)
    refs = finish(procs)
    assert sorted(refs) == ["race@1", "race@2", "race@3"]
    rows = run_in_transaction(lambda db: db.execute(text("SELECT run_id, version FROM model_versions ORDER BY version")).all())
    states = run_in_transaction(lambda db: dict(db.execute(text("SELECT id, state FROM training_runs")).all()))
    assert [v for _, v in rows] == [1, 2, 3] and sorted(r for r, _ in rows) == sorted(runs)
    assert set(states.values()) == {"succeeded"}


def test_two_first_promotions_to_production_leave_one_production_model(s2env, blobs, db_url):
    """No production model yet, two promoted at once: one is production, the other archived (or refused), never both."""
    from tests.api.factories import register_model

    for run in queue_runs(blobs, "promo", 2):
        register_model(blobs, run, LABELS, TRUTH, TRUTH)
    versions = [1, 2]
    with gate(db_url, "SELECT id FROM model_versions FOR UPDATE"):  # both candidates' rows: where a promotion writes
        procs = start(PROMOTE, [f"promo@{v}" for v in versions], s2env)
        wait_until_blocked(db_url, procs)
    outcomes = dict(zip(versions, finish(procs)))
    stages = run_in_transaction(lambda db: dict(db.execute(text("SELECT version, stage FROM model_versions")).all()))
    assert list(stages.values()).count("production") == 1, f"stages after the race: {stages}"
    (winner,) = [v for v, stage in stages.items() if stage == "production"]
    loser = 3 - winner
    if stages[loser] == "archived":  # promoted first, then replaced by the winner, who saw it
        assert (outcomes[loser], outcomes[winner]) == ("promoted None", f"promoted promo@{loser}")
    else:  # refused by the winner's production model
        assert stages[loser] is None and outcomes[loser].startswith("refused"), outcomes


def test_the_schema_holds_one_production_model_per_dataset(s2env, blobs, db_url):
    """0006 archives what an earlier race left (all but the newest production model), then refuses a second one."""
    from alembic import command
    from alembic.config import Config

    from server.db import MIGRATIONS_DIR, upgrade_to_head
    from tests.api.factories import register_model

    for run in queue_runs(blobs, "schema", 3):
        register_model(blobs, run, LABELS, TRUTH, TRUTH)
    engine = get_engine(db_url)
    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005_dataset_inputs")
        conn.execute(text("UPDATE model_versions SET stage = CASE version WHEN 2 THEN 'staging' ELSE 'production' END"))
    upgrade_to_head(engine)

    def stages(db) -> dict[int, str]:
        return dict(db.execute(text("SELECT version, stage FROM model_versions")).all())

    assert run_in_transaction(stages) == {1: "archived", 2: "staging", 3: "production"}
    with pytest.raises(IntegrityError):
        with engine.begin() as conn:
            conn.execute(text("UPDATE model_versions SET stage = 'production' WHERE version = 1"))
    assert run_in_transaction(stages) == {1: "archived", 2: "staging", 3: "production"}


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
