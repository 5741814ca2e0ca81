"""A revision's label counts: the checkpoint's column counted, corrected by the deltas since; equal to counting every row."""

from collections import Counter

import pytest

from server.datasets.compaction import compact
from server.datasets.stats import label_counts
from server.db import run_in_transaction
from server.errors import NotFound
from tests.factories import make_dataset, relabel, text_rows, upsert
from tests.test_snapshot import checkpoint_often

LABELS = ("a", "b", "c")


def counted(blobs, rev: str) -> dict:
    return run_in_transaction(lambda db: label_counts(db, blobs, dataset="ds", rev=rev))


def test_label_counts_match_the_rows_at_every_commit_with_and_without_checkpoints(blobs, monkeypatch):
    checkpoint_often(monkeypatch)
    make_dataset("ds", "text", LABELS)
    state: dict[str, str | None] = {}
    expected: list[tuple[str, Counter]] = []

    def remember(commit):
        expected.append((commit.id, Counter(state.values())))

    items = {f"k{i:03d}": (f"text {i}", LABELS[i % 3] if i % 5 else None) for i in range(60)}
    first = upsert(blobs, "ds", text_rows(blobs, items))
    state.update({k: lab for k, (_, lab) in items.items()})
    remember(first)
    compact(blobs, first.id)  # a checkpoint: later commits are deltas on it
    second = relabel(blobs, "ds", {"k001": "c", "k002": "a", "k005": "b"}, remove=("k003", "k004"))
    state.update({"k001": "c", "k002": "a", "k005": "b"})
    del state["k003"], state["k004"]
    remember(second)
    more = {f"k{i:03d}": (f"text {i}", "b") for i in range(60, 70)}
    third = upsert(blobs, "ds", text_rows(blobs, more))
    state.update({k: "b" for k in more})
    remember(third)
    fourth = relabel(blobs, "ds", {"k061": "a", "k010": None})  # a new key relabeled, an old one unlabeled
    state.update({"k061": "a", "k010": None})
    remember(fourth)
    compact(blobs, fourth.id)
    fifth = relabel(blobs, "ds", {"k020": "a"}, remove=("k062",))
    state["k020"] = "a"
    del state["k062"]
    remember(fifth)
    for commit_id, want in expected:
        assert counted(blobs, commit_id) == {k: v for k, v in want.items() if v}, commit_id
    assert counted(blobs, "main") == dict(expected[-1][1])  # a branch name reads its head (cached by commit)
    assert sum(counted(blobs, "main").values()) == len(state)


def test_label_counts_of_an_unknown_revision_name_it(blobs):
    make_dataset("ds", "text", LABELS)
    with pytest.raises(NotFound, match="nope"):
        counted(blobs, "nope")
