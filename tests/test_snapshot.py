"""Reading a revision: key-sorted Arrow batches of the whole, pages after a cursor, keys looked up; all agree."""

from sqlalchemy import func, select

from server.config import get_settings
from server.datasets.compaction import compact
from server.datasets.datasets import get_dataset
from server.datasets.history import resolve_rev
from server.datasets.inputs import input_bytes
from server.datasets.lookup import lookup
from server.datasets.models import Commit
from server.datasets.snapshot import iter_snapshot, page_rows, read_table
from server.db import run_in_transaction
from tests.factories import make_dataset, relabel, text_rows, upsert

LABELS = ("a", "b", "c")


def checkpoint_often(monkeypatch) -> None:
    """Write a checkpoint whenever a delta chain holds more than a couple of rows."""
    monkeypatch.setenv("S2_CHECKPOINT_MIN_ROWS", "1")
    monkeypatch.setenv("S2_CHECKPOINT_DELTA_FRACTION", "0.1")
    get_settings.cache_clear()


def committed(blobs, commit, state: dict, history: list, checkpoint: bool) -> None:
    """Remember the state at commit; compact it (as the CLI does after each commit) when asked."""
    if checkpoint:
        compact(blobs, commit.id)
    history.append((commit.id, dict(state)))


def commit_of(name: str, rev: str) -> Commit:
    return run_in_transaction(lambda db: resolve_rev(db, get_dataset(db, name), rev))


def read_all(blobs, name: str, rev: str, batch_rows: int):
    """The snapshot's commit, batches, and its rows as {key: (text, label, split)} in streaming order."""
    commit = commit_of(name, rev)
    batches = run_in_transaction(lambda db: list(iter_snapshot(db, blobs, commit.pk, batch_rows)))
    keys, rows = [], {}
    for batch in batches:
        for rec in batch.to_pylist():
            keys.append(rec["key"])
            text = rec["inline"] if rec["inline"] is not None else blobs.get(rec["input"]).decode()
            rows[rec["key"]] = (text, rec["label"], rec["split"])
    return commit, batches, keys, rows


def build_history(blobs, monkeypatch) -> list[tuple[str, dict]]:
    """Interleave imports, relabels, removals and checkpoints; returns [(commit id, {key: (text, label, split)})]."""
    checkpoint_often(monkeypatch)
    make_dataset("ds", "text", LABELS)
    state: dict[str, tuple[str, str | None, str | None]] = {}
    history: list[tuple[str, dict]] = []

    def put(items: dict[str, tuple[str, str | None]], checkpoint: bool):
        c = upsert(blobs, "ds", text_rows(blobs, items))
        state.update({k: (t, lab, None) for k, (t, lab) in items.items()})
        committed(blobs, c, state, history, checkpoint)

    def edit(edits: dict[str, str], remove: tuple[str, ...] = (), checkpoint: bool = False):
        c = relabel(blobs, "ds", edits, remove=remove)
        state.update({k: (state[k][0], lab, None) for k, lab in edits.items()})
        for k in remove:
            del state[k]
        committed(blobs, c, state, history, checkpoint)

    # Keys inserted out of order, so sorting is the reader's job.
    put({f"m{i:03d}": (f"middle {i}", LABELS[i % 3]) for i in reversed(range(0, 40, 2))}, checkpoint=True)
    edit({"m002": "b", "m010": "a"})  # a delta on top of the checkpoint
    put({"a000": ("before every checkpointed key", "b"), "m005": ("between keys", None), "z999": ("after all", "c")}, checkpoint=False)
    edit({"m004": "a", "a000": "c"}, remove=("m006", "m030"), checkpoint=True)
    put({"m007": ("another between", "a"), "m012": ("rewritten text", "b")}, checkpoint=False)
    edit({"m000": "b", "m038": "a", "z999": "a"}, remove=("m020",))
    return history


def test_batches_are_key_sorted_and_equal_to_each_committed_revision(blobs, monkeypatch):
    history = build_history(blobs, monkeypatch)
    checkpoints = run_in_transaction(lambda db: db.scalar(select(func.count()).where(Commit.checkpoint_blob.is_not(None))))
    assert checkpoints >= 2  # the reads below merge checkpoints with deltas
    for commit_id, expected in history:
        for batch_rows in (3, 7, 1000):
            commit, batches, keys, rows = read_all(blobs, "ds", commit_id, batch_rows)
            assert commit.id == commit_id and commit.row_count == len(expected)
            assert keys == sorted(expected), f"keys out of order at {commit_id[:12]} with batch_rows={batch_rows}"
            assert rows == expected
            if batch_rows == 3:
                assert len(batches) > 1
    # A 7-digit prefix and REV~N name the same revisions as full ids.
    head_id, head_state = history[-1]
    assert read_all(blobs, "ds", head_id[:7], 5)[3] == head_state
    assert read_all(blobs, "ds", "main~2", 5)[3] == history[-3][1]


def test_pages_after_every_cursor_and_lookups_agree_with_the_whole(blobs, monkeypatch):
    """A page is a window of checkpoint rows merged with the deltas of its key range: at every cursor, with
    every page size, it is exactly the next keys of the whole snapshot; a lookup finds each key's row."""
    history = build_history(blobs, monkeypatch)
    for commit_id, expected in history:
        commit = commit_of("ds", commit_id)
        ordered = sorted(expected)
        for limit in (1, 2, 5, 100):
            for start, after in enumerate([None, *ordered]):
                page = run_in_transaction(lambda db: page_rows(db, blobs, commit.pk, after=after, limit=limit))
                assert [r.key for r in page] == ordered[start : start + limit], (commit_id[:12], after, limit)
        for label in LABELS:
            page = run_in_transaction(lambda db: page_rows(db, blobs, commit.pk, after=None, limit=100, label=label))
            assert [r.key for r in page] == [k for k in ordered if expected[k][1] == label]
        wanted = ordered[::3] + ["absent-key", "m999"]
        found = run_in_transaction(lambda db: lookup(db, blobs, commit.pk, wanted))
        assert {k: (input_bytes(blobs, r).decode(), r.label, r.split) for k, r in found.items()} == {
            k: expected[k] for k in wanted if k in expected
        }


def test_snapshot_table_matches_batches(blobs, monkeypatch):
    history = build_history(blobs, monkeypatch)
    commit_id, expected = history[3]
    table = run_in_transaction(lambda db: read_table(db, blobs, commit_of("ds", commit_id).pk))
    assert table.num_rows == len(expected)
    assert table.column("key").to_pylist() == sorted(expected)
    assert dict(zip(table.column("key").to_pylist(), table.column("label").to_pylist())) == {k: v[1] for k, v in expected.items()}
