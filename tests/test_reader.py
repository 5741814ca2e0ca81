"""The streaming reader: key-sorted Arrow batches of a revision, and its PyTorch Dataset view."""

from sqlalchemy import func, select

from server.config import get_settings
from server.datasets.commits import compact
from server.datasets.models import Commit
from server.datasets.reader import open_snapshot
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
        run_in_transaction(lambda db: compact(db, blobs, commit.id))
    history.append((commit.id, dict(state)))


def read_all(name: str, rev: str, batch_rows: int):
    """The snapshot's batches, and its rows as {key: (text, label, split)} in streaming order."""
    from server.blobs import default_blob_store

    store = default_blob_store()
    snap = open_snapshot(name, rev)
    batches = list(snap.batches(batch_rows=batch_rows))
    keys, rows = [], {}
    for batch in batches:
        for rec in batch.to_pylist():
            keys.append(rec["key"])
            rows[rec["key"]] = (store.get(rec["input"]).decode(), rec["label"], rec["split"])
    return snap, batches, keys, rows


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
            snap, batches, keys, rows = read_all("ds", commit_id, batch_rows)
            assert snap.commit == commit_id and snap.rows == len(expected)
            assert keys == sorted(expected), f"keys out of order at {commit_id[:12]} with batch_rows={batch_rows}"
            assert rows == expected
            if batch_rows == 3:
                assert len(batches) > 1
    # A 7-digit prefix and REV~N name the same revisions as full ids.
    head_id, head_state = history[-1]
    assert read_all("ds", head_id[:7], 5)[3] == head_state
    assert read_all("ds", "main~2", 5)[3] == history[-3][1]
    assert open_snapshot("ds").commit == head_id  # default: the default branch


def test_snapshot_table_matches_batches(blobs, monkeypatch):
    history = build_history(blobs, monkeypatch)
    commit_id, expected = history[3]
    table = open_snapshot("ds", commit_id).table(batch_rows=4)
    assert table.num_rows == len(expected)
    assert table.column("key").to_pylist() == sorted(expected)
    assert dict(zip(table.column("key").to_pylist(), table.column("label").to_pylist())) == {k: v[1] for k, v in expected.items()}


def test_torch_dataset_gives_input_bytes_and_label_index(blobs, monkeypatch):
    import torch.utils.data

    history = build_history(blobs, monkeypatch)
    for commit_id, expected in (history[-1], history[1]):  # the head and an old revision
        ds = open_snapshot("ds", commit_id).torch_dataset()
        assert isinstance(ds, torch.utils.data.Dataset)
        assert len(ds) == len(expected)
        items = [ds[i] for i in range(len(ds))]
        assert [it["key"] for it in items] == sorted(expected)
        for it in items:
            text, label, _ = expected[it["key"]]
            assert it["input"] == text.encode()
            assert it["label"] == (LABELS.index(label) if label is not None else -1)
        loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=list)
        assert [it["key"] for batch in loader for it in batch] == sorted(expected)
    # The old revision still has the labels it had, not the later relabels.
    old = open_snapshot("ds", history[1][0]).torch_dataset()
    by_key = {old[i]["key"]: old[i]["label"] for i in range(len(old))}
    assert by_key["m002"] == LABELS.index("b") and by_key["m000"] == LABELS.index("a")
    assert "m020" in by_key and "z999" not in by_key
