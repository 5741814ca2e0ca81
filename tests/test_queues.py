"""Labeling queues through the services: bounded scans, filters, review queues (SQLite and PostgreSQL)."""

import pytest

from labeling import queues
from labeling.queues import Filters, queue_page
from labeling.review import add_items, remove_items
from server.datasets.refs import create_branch
from server.datasets.staging import stage_edits
from server.db import run_in_transaction, run_read
from server.errors import InvalidInput, NotFound
from tests.factories import make_dataset, relabel, text_rows, upsert


def walk(blobs, queue: str, limit: int = 10, filters: Filters = Filters(), branch: str | None = None) -> tuple[list[str], int]:
    """Every key of a queue, page after page; and how many requests that took."""
    keys, cursor, requests = [], None, 0
    while True:
        items, cursor = run_read(
            lambda db: queue_page(db, blobs, dataset="ds", branch=branch, queue=queue, after=cursor, limit=limit, filters=filters)
        )
        requests += 1
        assert len(items) <= limit
        keys += [i.example.key for i in items]
        if cursor is None:
            return keys, requests


def test_a_rare_match_is_found_by_short_pages_that_each_read_a_bounded_number_of_rows(blobs, monkeypatch):
    make_dataset()
    items = {f"k{i:04d}": (f"text {i}", "a") for i in range(300)}
    items["k0007"] = ("seven", None)
    items["k0250"] = ("two fifty", None)
    upsert(blobs, "ds", text_rows(blobs, items))
    monkeypatch.setattr(queues, "SCAN", 40)
    monkeypatch.setattr(queues, "CHUNK", 20)
    keys, requests = walk(blobs, "unlabeled")
    assert keys == ["k0007", "k0250"]
    assert requests >= 300 // 40  # each request read at most SCAN rows
    assert walk(blobs, "all", limit=64)[0] == sorted(items)
    # A staged label takes an example out of "unlabeled" on that branch, and into "changed".
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name="work", from_rev=None))
    run_in_transaction(lambda db: stage_edits(db, blobs, dataset="ds", branch="work", edits=[("k0007", "b", False)], author="ana"))
    assert walk(blobs, "unlabeled", branch="work")[0] == ["k0250"]
    assert walk(blobs, "changed", branch="work")[0] == ["k0007"]
    assert walk(blobs, "all", branch="work", filters=Filters(label="b"))[0] == ["k0007"]
    assert walk(blobs, "all", branch="work", filters=Filters(label=""))[0] == ["k0250"]


def test_review_queues_page_by_score_and_refuse_bad_input(blobs):
    make_dataset()
    upsert(blobs, "ds", text_rows(blobs, {f"k{i}": (f"t{i}", "a") for i in range(8)}))
    added = run_in_transaction(
        lambda db: add_items(
            db, blobs, dataset="ds", queue="suspects", items=[(f"k{i}", float(i % 4), f"why {i}") for i in range(8)], by="eng"
        )
    )
    assert added == (8, 0)
    keys, _ = walk(blobs, "suspects", limit=3)
    assert keys == ["k3", "k7", "k2", "k6", "k1", "k5", "k0", "k4"]  # score 3, 2, 1, 0; ties by key
    assert run_in_transaction(
        lambda db: add_items(db, blobs, dataset="ds", queue="suspects", items=[("k4", 9.0, "now first")], by="eng")
    ) == (0, 1)
    first, _ = run_read(lambda db: queue_page(db, blobs, dataset="ds", branch=None, queue="suspects", after=None, limit=1))
    assert (first[0].example.key, first[0].score, first[0].reason) == ("k4", 9.0, "now first")
    relabel(blobs, "ds", {"k3": "b"})
    assert walk(blobs, "suspects", filters=Filters(label="b"))[0] == ["k3"]
    for bad, error in [
        (lambda db: add_items(db, blobs, dataset="ds", queue="all", items=[("k1", 1, None)], by="e"), InvalidInput),
        (lambda db: add_items(db, blobs, dataset="ds", queue="Bad Name", items=[("k1", 1, None)], by="e"), InvalidInput),
        (lambda db: add_items(db, blobs, dataset="ds", queue="q", items=[("nope", 1, None)], by="e"), NotFound),
        (lambda db: add_items(db, blobs, dataset="ds", queue="q", items=[("k1", 1, None), ("k1", 2, None)], by="e"), InvalidInput),
        (lambda db: add_items(db, blobs, dataset="ds", queue="q", items=[("k1", float("nan"), None)], by="e"), InvalidInput),
        (lambda db: queue_page(db, blobs, dataset="ds", branch=None, queue="nope", after=None, limit=5), NotFound),
        (lambda db: queue_page(db, blobs, dataset="ds", branch=None, queue="suspects", after="k1", limit=5), InvalidInput),
        (
            lambda db: queue_page(db, blobs, dataset="ds", branch=None, queue="all", after=None, limit=5, filters=Filters(label="zzz")),
            InvalidInput,
        ),
    ]:
        with pytest.raises(error):
            run_in_transaction(bad)
    assert run_in_transaction(lambda db: remove_items(db, dataset="ds", queue="suspects", keys=["k4", "k0"])) == 2
    assert run_in_transaction(lambda db: remove_items(db, dataset="ds", queue="suspects", keys=None)) == 6


def test_changed_holds_what_the_branch_committed_since_it_forked_and_what_it_stages(blobs):
    make_dataset()
    upsert(blobs, "ds", text_rows(blobs, {f"k{i}": (f"t{i}", "a") for i in range(6)}))
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name="work", from_rev=None))
    relabel(blobs, "ds", {"k1": "b", "k4": "c"}, branch="work")
    relabel(blobs, "ds", {"k2": "b"})  # on main after the fork: not this branch's change
    run_in_transaction(
        lambda db: stage_edits(db, blobs, dataset="ds", branch="work", edits=[("k0", "c", False), ("k4", "a", False)], author="ana")
    )
    assert walk(blobs, "changed", branch="work", limit=2)[0] == ["k0", "k1", "k4"]
    assert walk(blobs, "changed")[0] == []  # on the default branch: only what is staged there
