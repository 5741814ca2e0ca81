"""Bounded walks of the commit graph: history pages, merge bases and separating commits agree with whole-graph answers."""

from sqlalchemy import select

from server.datasets.datasets import get_dataset
from server.datasets.diff import diff
from server.datasets.graph import is_ancestor, merge_base, merge_bases, separating_commits
from server.datasets.history import log, log_all, resolve_rev
from server.datasets.merge import merge
from server.datasets.models import Commit, CommitParent
from server.datasets.refs import create_branch
from server.db import run_in_transaction
from tests.factories import AUTHOR, make_dataset, relabel, text_rows, upsert


def whole_graph(db, name: str) -> dict[int, list[int]]:
    ds = get_dataset(db, name)
    pks = set(db.scalars(select(Commit.pk).where(Commit.dataset_id == ds.id)))
    parents: dict[int, list[int]] = {pk: [] for pk in pks}
    for child, parent in db.execute(select(CommitParent.commit_pk, CommitParent.parent_pk).order_by(CommitParent.position)):
        if child in parents:
            parents[child].append(parent)
    return parents


def ancestors(graph: dict[int, list[int]], pk: int) -> set[int]:
    seen, todo = {pk}, [pk]
    while todo:
        for p in graph[todo.pop()]:
            if p not in seen:
                seen.add(p)
                todo.append(p)
    return seen


def build(blobs) -> None:
    """main with a long side branch forked early and merged late, a criss-cross, and commits on both sides."""
    make_dataset()
    upsert(blobs, "ds", text_rows(blobs, {f"k{i:02d}": (f"text {i}", "a") for i in range(30)}))
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name="old", from_rev="main"))
    for i in range(8):
        relabel(blobs, "ds", {f"k{i:02d}": "b"})
    relabel(blobs, "ds", {"k20": "c"}, branch="old")
    relabel(blobs, "ds", {"k21": "c"}, branch="old")
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name="x", from_rev="main"))
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name="y", from_rev="main"))
    relabel(blobs, "ds", {"k10": "b"}, branch="x")
    relabel(blobs, "ds", {"k11": "b"}, branch="y")
    for src, dst in (("y", "x"), ("x~1", "y"), ("old", "main")):  # a criss-cross between x and y, then the old fork
        run_in_transaction(lambda db: merge(db, blobs, dataset="ds", source=src, into=dst, author=AUTHOR))
    relabel(blobs, "ds", {"k12": "c"}, branch="x")


def test_history_pages_follow_the_whole_history_in_order(blobs):
    build(blobs)
    for rev in ("main", "x", "y", "old"):
        whole = run_in_transaction(lambda db: log_all(db, dataset="ds", rev=rev))
        graph = run_in_transaction(lambda db: whole_graph(db, "ds"))
        tip = run_in_transaction(lambda db: resolve_rev(db, get_dataset(db, "ds"), rev).pk)
        assert len(whole) == len(ancestors(graph, tip))  # every ancestor once
        for size in (1, 2, 3, 7):
            seen, frontier = [], None
            while True:
                page, frontier = run_in_transaction(lambda db: log(db, dataset="ds", rev=rev, frontier=frontier, limit=size))
                seen += [c.id for c in page]
                if not frontier:
                    break
            assert seen == [c.id for c in whole], (rev, size)


def test_merge_bases_and_separating_commits_match_the_whole_graph(blobs):
    build(blobs)

    def check(db):
        ds = get_dataset(db, "ds")
        graph = whole_graph(db, "ds")
        gens = dict(db.execute(select(Commit.pk, Commit.generation).where(Commit.dataset_id == ds.id)).all())
        revs = ["main", "main~3", "old", "old~1", "x", "x~1", "y", "y~2"]
        for ra in revs:
            for rb in revs:
                a, b = resolve_rev(db, ds, ra), resolve_rev(db, ds, rb)
                common = ancestors(graph, a.pk) & ancestors(graph, b.pk)
                best = max(gens[pk] for pk in common)
                base = merge_base(db, a, b)
                assert base in common and gens[base] == best, (ra, rb)
                assert is_ancestor(db, a, b) == (a.pk in ancestors(graph, b.pk)), (ra, rb)
                expected = (ancestors(graph, a.pk) | ancestors(graph, b.pk)) - ancestors(graph, base)
                assert separating_commits(db, a, b, base) == expected, (ra, rb)

    run_in_transaction(check)
    # the old fork's changes reach main through the late merge, and a diff across it sees them
    d = run_in_transaction(lambda db: diff(db, blobs, dataset="ds", rev_a="main~1", rev_b="main"))
    assert sorted(r.key for r in d.relabeled) == ["k20", "k21"]


def test_a_revert_after_a_criss_cross_merge_is_merged_not_lost(blobs):
    """Two best merge bases: against either one alone the merge would keep k=b; against their virtual base, feat's
    revert of k wins, as git's recursive merge decides."""
    make_dataset()
    upsert(blobs, "ds", text_rows(blobs, {"k": ("the example", "a"), "x": ("another", "a")}))
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name="feat", from_rev="main"))
    relabel(blobs, "ds", {"k": "b"}, branch="feat")
    relabel(blobs, "ds", {"x": "b"})
    for src, dst in (("feat", "main"), ("main~1", "feat")):  # each side merges the other's first change
        run_in_transaction(lambda db: merge(db, blobs, dataset="ds", source=src, into=dst, author=AUTHOR))
    relabel(blobs, "ds", {"k": "a"}, branch="feat")  # feat takes its change back

    def bases(db):
        ds = get_dataset(db, "ds")
        return merge_bases(db, resolve_rev(db, ds, "main"), resolve_rev(db, ds, "feat"))

    assert len(run_in_transaction(bases)) == 2
    how, _ = run_in_transaction(lambda db: merge(db, blobs, dataset="ds", source="feat", into="main", author=AUTHOR))
    assert how == "merge"
    assert run_in_transaction(lambda db: diff(db, blobs, dataset="ds", rev_a="main", rev_b="feat")).as_json() == {
        "added": [],
        "removed": [],
        "relabeled": [],
        "modified": [],
    }
    from server.datasets.lookup import lookup

    head = run_in_transaction(lambda db: resolve_rev(db, get_dataset(db, "ds"), "main").pk)
    assert {k: r.label for k, r in run_in_transaction(lambda db: lookup(db, blobs, head, ["k", "x"])).items()} == {"k": "a", "x": "b"}
