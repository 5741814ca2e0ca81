"""Several real processes committing to one branch at once, on SQLite and PostgreSQL: nothing is lost."""

import json
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from server.datasets.commits import move_branch
from server.datasets.history import resolve_rev
from server.datasets.rows import Row
from server.datasets.service import get_branch, get_dataset
from server.datasets.snapshot import read_table
from server.db import run_in_transaction, session_scope
from server.errors import BranchMoved, Conflict
from tests.conftest import S2_BIN
from tests.factories import make_dataset, text_rows, upsert

LABELS = ("a", "b", "c")


def snapshot(blobs, name: str, rev: str = "main") -> dict[str, tuple]:
    """{key: (input, label)} at rev."""

    def work(db):
        return read_table(db, blobs, resolve_rev(db, get_dataset(db, name), rev).pk).to_pylist()

    return {r["key"]: (r["input"], r["label"]) for r in run_in_transaction(work)}


def check_linear_log(cli, name: str) -> list[dict]:
    """`s2 log --json` of main, after checking each commit's only parent is the one before it."""
    log = json.loads(cli.ok("log", name, "--json"))
    for newer, older in zip(log, log[1:]):
        assert newer["parents"] == [older["id"]], f"history is not linear at {newer['id'][:12]}"
    assert log[-1]["parents"] == []
    return log


def is_clear_error(proc: subprocess.CompletedProcess | subprocess.Popen, stderr: str, *words: str) -> bool:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("s2: error:") and any(w in lines[0] for w in words)


def write_jsonl(path, records: list[dict]):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_parallel_imports_into_one_branch_lose_nothing(s2env, cli, blobs, tmp_path):
    make_dataset("par")
    base = cli.last_line("import", "par", write_jsonl(tmp_path / "base.jsonl", [{"key": "base", "label": "a", "text": "base"}]))
    workers, files = 4, {}
    for w in range(workers):  # 1500 own keys each (enough to checkpoint after every import) and one shared key
        records = [{"key": f"w{w}/{i:04d}", "label": LABELS[(w + i) % 3], "text": f"w{w} row {i}"} for i in range(1500)]
        records.append({"key": "shared", "label": LABELS[w % 3], "text": f"shared from worker {w}"})
        write_jsonl(tmp_path / f"w{w}.jsonl", records)
        files[w] = records
    procs = {
        w: subprocess.Popen(
            [str(S2_BIN), "import", "par", str(tmp_path / f"w{w}.jsonl"), "-m", f"worker {w}"],
            env=cli.env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    }
    outputs = {w: p.communicate(timeout=300) for w, p in procs.items()}
    won = {w: out.strip().splitlines()[-1] for w, (out, _) in outputs.items() if procs[w].returncode == 0}
    for w, (_, err) in outputs.items():
        assert w in won or is_clear_error(procs[w], err, "moved", "conflict"), f"worker {w} failed unclearly: {err}"
    assert won, "no import succeeded"

    log = check_linear_log(cli, "par")
    ids = [c["id"] for c in log]
    assert set(won.values()) <= set(ids) and base in ids
    assert len(log) == 2 + len(won), "a commit that no process reported (or a lost one) is in the history"
    assert log[0]["rows"] == 1 + 1500 * len(won) + 1
    snap = snapshot(blobs, "par")
    assert len(snap) == log[0]["rows"]
    for w, records in files.items():
        for r in records[:-1]:
            if w in won:
                assert snap[r["key"]] == (blobs.put(r["text"].encode()), r["label"])
            else:
                assert r["key"] not in snap, f"worker {w} failed but left rows behind"
    last = min(won, key=lambda w: ids.index(won[w]))  # the newest successful import wrote 'shared' last
    assert snap["shared"] == (blobs.put(files[last][-1]["text"].encode()), files[last][-1]["label"])


def test_parallel_label_and_commit_loops_lose_no_edit(s2env, cli, blobs, tmp_path):
    make_dataset("loops")
    upsert(blobs, "loops", text_rows(blobs, {f"p{p}/k{i}": (f"text {p} {i}", "a") for p in range(2) for i in range(5)}))
    results: dict[int, list] = {0: [], 1: []}

    def labeler(p: int) -> None:
        for i in range(5):
            staged = cli.run("label", "loops", f"p{p}/k{i}", LABELS[1 + (p + i) % 2])
            committed = cli.run("commit", "loops", "-m", f"labeler {p} edit {i}")
            results[p].append((staged, committed))

    threads = [threading.Thread(target=labeler, args=(p,)) for p in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    committed_ids = []
    for runs in results.values():
        assert len(runs) == 5
        for staged, committed in runs:
            assert staged.returncode == 0, staged.stderr
            if committed.returncode == 0:
                committed_ids.append(committed.stdout.strip().splitlines()[-1])
            else:  # the other labeler's commit took this edit with it: the branch index is shared
                assert is_clear_error(committed, committed.stderr, "nothing staged", "moved"), committed.stderr
    log = check_linear_log(cli, "loops")
    assert set(committed_ids) <= {c["id"] for c in log}
    assert len(log) == 2 + len(committed_ids)
    assert json.loads(cli.ok("status", "loops", "--json")) == []
    labels = {k: lbl for k, (_, lbl) in snapshot(blobs, "loops").items()}
    assert labels == {f"p{p}/k{i}": LABELS[1 + (p + i) % 2] for p in range(2) for i in range(5)}


STAGER = textwrap.dedent("""
    import sys
    from server.blobs import default_blob_store
    from server.datasets.staging import stage_edits
    from server.db import run_in_transaction
    store = default_blob_store()
    for i in range(int(sys.argv[1])):
        run_in_transaction(lambda db: stage_edits(db, store, dataset="race", branch=None, edits=[(f"k{i:03d}", "b", False)], author="stager"))
""")
COMMITTER = textwrap.dedent("""
    import os
    from server.blobs import default_blob_store
    from server.datasets.staging import commit_staged
    from server.db import run_in_transaction
    from server.errors import NothingToCommit
    store, made = default_blob_store(), 0
    while not os.path.exists(os.environ["STOP_FILE"]):
        try:
            run_in_transaction(lambda db: commit_staged(db, store, dataset="race", branch=None, message="sweep", author="committer"))
            made += 1
        except NothingToCommit:
            pass
    print(made)
""")


def test_committing_while_another_process_stages_drops_no_edit(s2env, blobs, tmp_path):
    """A commit takes exactly the edits it read: an edit staged meanwhile stays staged or is committed."""
    edits = 150
    make_dataset("race")
    upsert(blobs, "race", text_rows(blobs, {f"k{i:03d}": (f"text {i}", "a") for i in range(edits)}))
    env = {**s2env, "STOP_FILE": str(tmp_path / "stop")}
    committer = subprocess.Popen([sys.executable, "-c", COMMITTER], env=env, stdout=subprocess.PIPE, text=True)
    stager = subprocess.run([sys.executable, "-c", STAGER, str(edits)], env=env, capture_output=True, text=True, timeout=300)
    (tmp_path / "stop").touch()
    out, _ = committer.communicate(timeout=300)
    assert stager.returncode == 0 and committer.returncode == 0, stager.stderr
    assert int(out) > 0, "the committer never overlapped the stager"
    from server.datasets.staging import list_staged

    still_staged = {e.key for e in run_in_transaction(lambda db: list_staged(db, dataset="race", branch=None))}
    labels = {k: lbl for k, (_, lbl) in snapshot(blobs, "race").items()}
    lost = sorted(k for k, lbl in labels.items() if lbl != "b" and k not in still_staged)
    assert not lost, f"{len(lost)} staged edit(s) vanished without being committed, e.g. {lost[:5]}"


def test_two_labelers_on_one_example_version_exactly_one_wins(s2env, blobs):
    """Labelers who loaded the same staged version of an example: one edit lands, the other is a Conflict."""
    from server.datasets.examples import get_example
    from server.datasets.staging import list_staged, stage_edits

    make_dataset("ver")
    upsert(blobs, "ver", text_rows(blobs, {"k": ("text", "a")}))
    run_in_transaction(lambda db: stage_edits(db, blobs, dataset="ver", branch=None, edits=[("k", "b", False)], author="seed"))
    rounds, barrier = 30, threading.Barrier(2, timeout=60)
    wins: list[list[str]] = [[] for _ in range(rounds)]
    errors: list[BaseException] = []

    def labeler(p: int) -> None:
        for r in range(rounds):
            seen = run_in_transaction(lambda db: get_example(db, blobs, dataset="ver", key="k", rev=None)).version
            barrier.wait()
            try:  # both saw the same version; only a Conflict may stop one of them
                run_in_transaction(
                    lambda db: stage_edits(
                        db,
                        blobs,
                        dataset="ver",
                        branch=None,
                        edits=[("k", "bc"[p], False)],
                        author=f"labeler{p}",
                        expected_versions={"k": seen},
                    )
                )
                wins[r].append(f"labeler{p}")
            except Conflict:
                pass
            except BaseException as exc:  # surfaced below, in the test's own thread
                errors.append(exc)
                barrier.abort()
                raise
            barrier.wait()

    threads = [threading.Thread(target=labeler, args=(p,)) for p in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert [len(w) for w in wins] == [1] * rounds, "two labelers editing from the same version both won (a silent overwrite)"
    (edit,) = run_in_transaction(lambda db: list_staged(db, dataset="ver", branch=None))
    assert (edit.version, edit.author) == (rounds + 1, wins[-1][0])


def test_move_branch_with_a_stale_head_raises_and_changes_nothing(s2env, blobs):
    make_dataset("cas")
    root = run_in_transaction(lambda db: resolve_rev(db, get_dataset(db, "cas"), "main").pk)
    first = upsert(blobs, "cas", [Row("k", blobs.put(b"one"), "a")])
    second = upsert(blobs, "cas", [Row("k", blobs.put(b"two"), "b")])

    def pks(db):
        ds = get_dataset(db, "cas")
        return resolve_rev(db, ds, first.id).pk, resolve_rev(db, ds, second.id).pk

    first_pk, second_pk = run_in_transaction(pks)
    with pytest.raises(BranchMoved, match="main"):
        with session_scope() as db:  # a writer that read the head before `second` was committed
            move_branch(db, get_branch(db, get_dataset(db, "cas"), "main"), expected_pk=first_pk, new_pk=root)
    assert run_in_transaction(lambda db: get_branch(db, get_dataset(db, "cas"), "main").head_pk) == second_pk
    with session_scope() as db:  # the current head as expected: the swap happens
        move_branch(db, get_branch(db, get_dataset(db, "cas"), "main"), expected_pk=second_pk, new_pk=first_pk)
    assert run_in_transaction(lambda db: resolve_rev(db, get_dataset(db, "cas"), "main").id) == first.id


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # SQLite runs one write transaction at a time already
def test_two_workers_registering_models_of_one_dataset_at_once_get_versions_1_and_2(s2env, blobs):
    """Two hosts' workers finishing trainings of one dataset together: both models are kept, numbered in turn.

    A connection holding model_versions in SHARE mode lets registrations read but holds back their
    inserts, so the two overlap for certain, as two hosts' workers can.
    """
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import create_engine, text

    from server.runs.execute import claim
    from server.runs.service import submit_run
    from tests.api.factories import register_model

    make_dataset("race")
    upsert(blobs, "race", text_rows(blobs, {"k0": ("zero", "a"), "k1": ("one", "b")}))
    runs = [run_in_transaction(lambda db: submit_run(db, blobs, dataset="race", rev=None, spec=None)).id for _ in range(2)]
    assert all(claim(run, 0, f"host-{n}:1") for n, run in enumerate(runs))
    truth = {"k0": "a", "k1": "b"}
    engine = create_engine(s2env["S2_DATABASE_URL"])
    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    with ThreadPoolExecutor(2) as pool, engine.connect() as blocker, engine.connect() as watcher:  # closed in reverse: unlock, then join
        blocker.execute(text("LOCK TABLE model_versions IN SHARE MODE"))
        registered = [pool.submit(register_model, blobs, run, list(LABELS), truth, truth) for run in runs]
        deadline = time.monotonic() + 30
        while watcher.execute(waiting).scalar() < 2:  # both registrations blocked: past any read of the latest version
            watcher.rollback()
            assert time.monotonic() < deadline and not any(f.done() for f in registered), [f.result() for f in registered if f.done()]
            time.sleep(0.05)
        blocker.rollback()  # lets the inserts through
        refs = sorted(f.result(timeout=30) for f in registered)
    engine.dispose()
    assert refs == ["race@1", "race@2"]
