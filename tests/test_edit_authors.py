"""Several editors on one branch: each change keeps its author through the commit, and a label never lands on an
input that replaced the one its editor saw."""

import pytest

from server.datasets.history import blame
from server.datasets.refs import create_branch
from server.datasets.staging import commit_staged, list_staged, stage_edits, unstage
from server.db import run_in_transaction
from server.errors import Conflict, Forbidden
from tests.factories import make_dataset, text_rows, upsert


def stage(blobs, who: str, edits: dict[str, str]) -> None:
    run_in_transaction(
        lambda db: stage_edits(db, blobs, dataset="ds", branch="work", edits=[(k, v, False) for k, v in edits.items()], author=who)
    )


def test_each_change_keeps_its_author_and_blame_names_author_and_committer(blobs):
    make_dataset()
    upsert(blobs, "ds", text_rows(blobs, {"k1": ("one", "a"), "k2": ("two", "a"), "k3": ("three", "a")}))
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name="work", from_rev=None))
    stage(blobs, "ana", {"k1": "b"})
    stage(blobs, "bob", {"k2": "c"})
    made = run_in_transaction(lambda db: commit_staged(db, blobs, dataset="ds", branch="work", message="review", author="carl")).commit
    assert made.author == "carl"
    for key, author in (("k1", "ana"), ("k2", "bob")):
        last = run_in_transaction(lambda db: blame(db, dataset="ds", key=key, rev="work"))[-1]
        assert (last.commit, last.author, last.committer, last.label) == (made.id, author, "carl", "b" if key == "k1" else "c")
    first = run_in_transaction(lambda db: blame(db, dataset="ds", key="k1", rev="work"))[0]
    assert first.author == first.committer  # an import's changes are its committer's


def test_a_labeler_drops_only_their_own_staged_edits(blobs):
    make_dataset()
    upsert(blobs, "ds", text_rows(blobs, {"k1": ("one", "a"), "k2": ("two", "a")}))
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name="work", from_rev=None))
    stage(blobs, "ana", {"k1": "b"})
    stage(blobs, "bob", {"k2": "c"})
    with pytest.raises(Forbidden, match="bob's"):
        run_in_transaction(lambda db: unstage(db, dataset="ds", branch="work", keys=["k2"], by="ana"))
    assert run_in_transaction(lambda db: unstage(db, dataset="ds", branch="work", keys=None, by="ana")) == (1, 1)
    assert [s.author for s in run_in_transaction(lambda db: list_staged(db, dataset="ds", branch="work"))] == ["bob"]
    assert run_in_transaction(lambda db: unstage(db, dataset="ds", branch="work", keys=["k2"])) == (1, 0)  # an engineer may


def test_a_label_staged_on_an_input_that_was_replaced_is_a_conflict_at_commit(blobs):
    make_dataset()
    upsert(blobs, "ds", text_rows(blobs, {"k1": ("a photo of a cat", "a"), "k2": ("two", "a")}))
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name="work", from_rev=None))
    stage(blobs, "ana", {"k1": "b", "k2": "b"})
    upsert(blobs, "ds", text_rows(blobs, {"k1": ("an entirely different text", "a")}), branch="work")  # the input changed
    with pytest.raises(Conflict, match="input of example 'k1' was replaced") as refused:
        run_in_transaction(lambda db: commit_staged(db, blobs, dataset="ds", branch="work", message="m", author="ana"))
    assert refused.value.extra["by"] == "ana"
    assert len(run_in_transaction(lambda db: list_staged(db, dataset="ds", branch="work"))) == 2  # nothing was lost
    run_in_transaction(lambda db: unstage(db, dataset="ds", branch="work", keys=["k1"]))
    made = run_in_transaction(lambda db: commit_staged(db, blobs, dataset="ds", branch="work", message="m", author="ana")).commit
    assert made.changes == 1


def test_a_commit_streams_its_edits_in_chunks_and_a_conflict_in_a_late_chunk_keeps_everything(blobs):
    from server.datasets.datasets import get_dataset
    from server.datasets.refs import resolve_rev
    from server.datasets.snapshot import page_rows
    from server.db import run_read

    make_dataset()
    upsert(blobs, "ds", text_rows(blobs, {f"k{i:02}": (f"text {i}", "a") for i in range(12)}))
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name="work", from_rev=None))
    stage(blobs, "ana", {f"k{i:02}": "b" for i in (1, 2, 5, 7)} | {"k00": "a", "k03": "a", "k04": "a"})
    stage(blobs, "bob", {f"k{i:02}": "c" for i in (9, 10, 11)})
    upsert(blobs, "ds", text_rows(blobs, {"k10": ("replaced text", "a")}), branch="work")
    with pytest.raises(Conflict, match="input of example 'k10' was replaced"):
        # chunk=3: ten edits in four chunks, the first and a middle one holding only no-ops
        run_in_transaction(lambda db: commit_staged(db, blobs, dataset="ds", branch="work", message="m", author="carl", chunk=3))
    assert len(run_in_transaction(lambda db: list_staged(db, dataset="ds", branch="work"))) == 10  # nothing half-written
    run_in_transaction(lambda db: unstage(db, dataset="ds", branch="work", keys=["k10"]))
    done = run_in_transaction(lambda db: commit_staged(db, blobs, dataset="ds", branch="work", message="m", author="carl", chunk=3))
    assert (done.commit.changes, done.dropped) == (6, 3)

    def rows(db):
        return page_rows(db, blobs, resolve_rev(db, get_dataset(db, "ds"), "work").pk, after=None, limit=100)

    labels = {r.key: r.label for r in run_read(rows)}
    assert labels == {f"k{i:02}": "b" if i in (1, 2, 5, 7) else "c" if i in (9, 11) else "a" for i in range(12)}
    for key, author in (("k05", "ana"), ("k11", "bob")):
        last = run_in_transaction(lambda db: blame(db, dataset="ds", key=key, rev="work"))[-1]
        assert (last.commit, last.author, last.committer) == (done.commit.id, author, "carl")
    assert run_in_transaction(lambda db: list_staged(db, dataset="ds", branch="work")) == []
