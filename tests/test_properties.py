"""Property tests of the versioning invariants (hypothesis), each on SQLite and PostgreSQL."""

import itertools
import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from server.config import get_settings
from server.datasets.compaction import compact
from server.datasets.datasets import get_dataset
from server.datasets.diff import diff
from server.datasets.history import resolve_rev
from server.datasets.lookup import lookup
from server.datasets.merge import merge
from server.datasets.models import Commit
from server.datasets.refs import create_branch
from server.datasets.rows import Row
from server.datasets.snapshot import read_table
from server.datasets.staging import list_staged
from server.db import run_in_transaction
from server.errors import Conflict, NothingToCommit
from tests.factories import AUTHOR, make_dataset, relabel, upsert

KEYS = [f"k{i:02d}" for i in range(20)]
TEXTS = ["alpha", "beta", "gamma", "delta"]
LABEL = st.sampled_from(["a", "b", "c", None])
SPLIT = st.sampled_from([None, "train", "test"])
MAX_BRANCHES = 4
PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_names = itertools.count()

# One operation of a random history; indices pick among what exists when the op is replayed.
UPSERT = st.tuples(
    st.just("upsert"),
    st.integers(0, 9),
    st.dictionaries(st.sampled_from(KEYS), st.tuples(st.sampled_from(TEXTS), LABEL, SPLIT), min_size=1, max_size=5),
)
RELABEL = st.tuples(
    st.just("relabel"),
    st.integers(0, 9),
    st.lists(st.tuples(st.integers(0, 99), LABEL), max_size=4),
    st.lists(st.integers(0, 99), max_size=2),
)
BRANCH = st.tuples(st.just("branch"), st.integers(0, 99))
MERGE = st.tuples(st.just("merge"), st.integers(0, 9), st.integers(0, 9))  # source, offset to a different target
# Always some data and a second branch first, so later edits diverge and merges are real three-way merges.
OPS = st.builds(
    lambda first, fork, rest: [first, fork, *rest],
    UPSERT,
    BRANCH,
    st.lists(st.one_of(UPSERT, RELABEL, RELABEL, BRANCH, MERGE, MERGE), min_size=4, max_size=12),
)
# A history with a real three-way merge, a branch from an older commit, a merge after a merge, and a conflict.
FORKED = [
    ("upsert", 0, {"k00": ("alpha", "a", None), "k01": ("beta", "b", None), "k02": ("gamma", None, "train")}),
    ("branch", 1),
    ("relabel", 0, [(0, "c")], []),  # b1 at the import; b1: k00 -> c
    ("upsert", 1, {"k03": ("delta", "a", None), "k01": ("delta", "b", "test")}),  # main: add k03, modify k01
    ("relabel", 1, [(3, "b")], [2]),
    ("merge", 0, 0),  # main: k03 -> b, remove k02; merge b1 into main
    ("branch", 1),
    ("upsert", 1, {"k04": ("alpha", None, None)}),  # b2 at the import (older than main); add k04
    ("relabel", 0, [(0, "b")], [1]),
    ("merge", 1, 0),
    ("merge", 0, 1),  # b1: k00 -> b, remove k01; b2 -> main; b1 -> main
]


def stored_label_counts(name: str, rev: str) -> dict[str, int]:
    """The label counts the commit row carries (kept up to date from each delta, never read from the snapshot)."""
    return run_in_transaction(lambda db: resolve_rev(db, get_dataset(db, name), rev).label_counts)


def counted(state: dict[str, tuple]) -> dict[str, int]:
    return dict(Counter(label for _, label, _ in state.values() if label is not None))


def snapshot(blobs, name: str, rev: str) -> dict[str, tuple]:
    """{key: (input, label, split)} of a revision, read as one Arrow table; checks key order."""

    def work(db):
        return read_table(db, blobs, resolve_rev(db, get_dataset(db, name), rev).pk).to_pylist()

    rows = run_in_transaction(work)
    keys = [r["key"] for r in rows]
    assert keys == sorted(set(keys)), f"snapshot of {rev} is not sorted by unique key: {keys}"
    return {r["key"]: (r["input"], r["label"], r["split"]) for r in rows}


def head_of(name: str, branch: str) -> str:
    return run_in_transaction(lambda db: resolve_rev(db, get_dataset(db, name), branch).id)


def commit_count(name: str) -> int:
    return run_in_transaction(
        lambda db: db.scalar(select(func.count()).select_from(Commit).where(Commit.dataset_id == get_dataset(db, name).id))
    )


def do_merge(blobs, name: str, source: str, into: str):
    return run_in_transaction(lambda db: merge(db, blobs, dataset=name, source=source, into=into, author=AUTHOR))


class History:
    """Replays ops on a new dataset through the services, checking each commit's snapshot against a model."""

    def __init__(self, blobs, name: str):
        make_dataset(name)
        self.blobs, self.name, root = blobs, name, head_of(name, "main")
        self.heads, self.commits, self.states = {"main": root}, [root], {root: {}}

    def record(self, branch: str, commit_id: str, expected: dict | None = None) -> None:
        state = snapshot(self.blobs, self.name, commit_id)
        if expected is not None:
            assert state == expected, f"snapshot of {commit_id[:12]} on {branch} differs from the model"
        compact(self.blobs, commit_id)  # as the CLI does after each commit
        self.heads[branch] = commit_id
        if commit_id not in self.states:
            self.commits.append(commit_id)
        self.states[commit_id] = state

    def apply(self, op: tuple) -> None:
        kind, branches = op[0], sorted(self.heads)
        branch = branches[op[1] % len(branches)]  # where an upsert or relabel goes
        parent = self.states[self.heads[branch]]
        if kind == "upsert":
            rows = [Row(k, self.blobs.put(t.encode()), lbl, sp) for k, (t, lbl, sp) in op[2].items()]
            expected = {**parent, **{r.key: (r.input, r.label, r.split) for r in rows}}
            if expected == parent:
                with pytest.raises(NothingToCommit):
                    upsert(self.blobs, self.name, rows, branch=branch)
                return
            made = upsert(self.blobs, self.name, rows, branch=branch)
            assert made.parents == [self.heads[branch]]
            self.record(branch, made.id, expected)
        elif kind == "relabel" and parent:
            keys = sorted(parent)
            edits = {keys[i % len(keys)]: lbl for i, lbl in op[2]}
            removals = tuple(sorted({keys[i % len(keys)] for i in op[3]} - set(edits)))
            expected = {k: (v[0], edits.get(k, v[1]), v[2]) for k, v in parent.items() if k not in removals}
            if expected == parent:
                return  # refused without a commit: see test_relabel_that_changes_nothing_commits_nothing
            made = relabel(self.blobs, self.name, edits, branch=branch, remove=removals)
            assert made.parents == [self.heads[branch]]
            self.record(branch, made.id, expected)
        elif kind == "branch" and len(branches) < MAX_BRANCHES:
            new, start = f"b{len(branches)}", self.commits[op[1] % len(self.commits)]
            run_in_transaction(lambda db: create_branch(db, dataset=self.name, name=new, from_rev=start))
            self.record(new, start, self.states[start])
        elif kind == "merge" and len(branches) > 1:
            src = op[1] % len(branches)
            src, dst = branches[src], branches[(src + 1 + op[2] % (len(branches) - 1)) % len(branches)]
            ours, theirs = self.states[self.heads[dst]], self.states[self.heads[src]]
            count = commit_count(self.name)
            try:
                how, made = do_merge(self.blobs, self.name, src, dst)
            except Conflict as exc:  # a legitimate outcome of a random merge: check it wrote nothing
                event("merge: conflict")
                assert head_of(self.name, dst) == self.heads[dst] and commit_count(self.name) == count
                differing = [k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k)]
                assert any(f"{k} (" in str(exc) for k in differing), str(exc)
                return
            event(f"merge: {how}")
            state = snapshot(self.blobs, self.name, made.id)
            for key in set(ours) | set(theirs) | set(state):
                assert state.get(key) in (ours.get(key), theirs.get(key)), f"merge invented a value for {key}"
                if ours.get(key) == theirs.get(key):
                    assert state.get(key) == ours.get(key)
            if how == "merge":
                assert made.parents == [self.heads[dst], self.heads[src]]
            self.record(dst, made.id)


def apply_diff(before: dict, after: dict, d) -> dict:
    """before with d applied, taking added rows and modified inputs from after; checks d's own consistency."""
    relabeled = [r.key for r in d.relabeled]
    for keys in (d.added, d.removed, relabeled, d.modified):
        assert len(keys) == len(set(keys))
    assert set(d.added).isdisjoint(before) and set(d.added) <= set(after)
    assert set(d.removed) <= set(before) and set(d.removed).isdisjoint(after)
    assert set(relabeled + d.modified).isdisjoint(d.added + d.removed)
    result = {k: v for k, v in before.items() if k not in d.removed}
    result.update({k: after[k] for k in d.added})
    for r in d.relabeled:
        assert result[r.key][1] == r.from_ and r.from_ != r.to
        result[r.key] = (result[r.key][0], r.to, result[r.key][2])
    for k in d.modified:
        result[k] = (after[k][0], result[k][1], after[k][2])
    return result


@PROPS
@given(ops=OPS, picks=st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99)), max_size=8))
@example(ops=FORKED, picks=[(1, 5), (5, 1), (2, 7), (4, 6)])
def test_diff_applied_to_a_gives_b(s2env, blobs, ops, picks):
    h = History(blobs, f"d{next(_names)}")
    for op in ops:
        h.apply(op)
    for c in h.commits:
        assert stored_label_counts(h.name, c) == counted(h.states[c]), f"label counts of {c[:12]} drifted from its snapshot"
    heads = sorted(set(h.heads.values()))
    pairs = list(itertools.permutations(heads, 2))
    pairs += [(h.commits[i % len(h.commits)], h.commits[j % len(h.commits)]) for i, j in picks]
    for a, b in pairs:
        d = run_in_transaction(lambda db: diff(db, blobs, dataset=h.name, rev_a=a, rev_b=b))
        assert apply_diff(h.states[a], h.states[b], d) == h.states[b], f"diff {a[:12]}..{b[:12]} does not lead to B"


ALL_LABELS = ("a", "b", "c")
# Per key, what (main, side) do to it after the fork: 0 nothing, n relabel n labels on, "rm" remove, "mod" new input.
DISJOINT = {
    "keep": (0, 0),
    "ours_relabel": (1, 0),
    "theirs_relabel": (0, 1),
    "ours_remove": ("rm", 0),
    "theirs_remove": (0, "rm"),
    "both_same": (1, 1),
}
CLASH = {"relabel_vs_relabel": (1, 2), "relabel_vs_remove": (1, "rm"), "remove_vs_relabel": ("rm", 1), "modify_vs_relabel": ("mod", 1)}


def other(label: str, shift: int) -> str:
    return ALL_LABELS[(ALL_LABELS.index(label) + shift) % 3]


def forked_dataset(blobs, name: str, plan: list[tuple[str, str]], roles: dict, adds=(0, 0)) -> dict:
    """Import one key per plan entry on main, branch `side`, then edit both sides as roles say; returns the base."""
    make_dataset(name)
    upsert(blobs, name, [Row(f"x{i:02d}", blobs.put(f"text {i}".encode()), lbl) for i, (lbl, _) in enumerate(plan)])
    run_in_transaction(lambda db: create_branch(db, dataset=name, name="side", from_rev="main"))
    base = snapshot(blobs, name, "main")
    for side, branch in enumerate(("main", "side")):
        edits, removals = {}, []
        rows = [Row(f"{branch}/new{i}", blobs.put(f"{branch} {i}".encode()), "a") for i in range(adds[side])]
        for (key, (_, lbl, _)), (_, role) in zip(sorted(base.items()), plan):
            action = roles[role][side]
            if action == "rm":
                removals.append(key)
            elif action == "mod":
                rows.append(Row(key, blobs.put(f"rewritten {key}".encode()), lbl))
            elif action:
                edits[key] = other(lbl, action)
        if rows:
            upsert(blobs, name, rows, branch=branch)
        if edits or removals:
            relabel(blobs, name, edits, branch=branch, remove=tuple(removals))
    return base


@PROPS
@given(
    plan=st.lists(st.tuples(st.sampled_from(ALL_LABELS), st.sampled_from(sorted(DISJOINT))), min_size=2, max_size=12),
    adds=st.tuples(st.integers(0, 3), st.integers(0, 3)),
)
def test_merge_of_disjoint_edits_keeps_both(s2env, blobs, plan, adds):
    name = f"m{next(_names)}"
    base = forked_dataset(blobs, name, plan, DISJOINT, adds)
    expected = {}
    for (key, (inp, lbl, sp)), (_, role) in zip(sorted(base.items()), plan):
        if "rm" not in DISJOINT[role]:
            expected[key] = (inp, other(lbl, max(DISJOINT[role])), sp)
    for branch, count in zip(("main", "side"), adds):
        expected.update({f"{branch}/new{i}": (blobs.put(f"{branch} {i}".encode()), "a", None) for i in range(count)})
    ours, theirs = head_of(name, "main"), head_of(name, "side")
    how, made = do_merge(blobs, name, "side", "main")
    assert snapshot(blobs, name, "main") == expected
    assert stored_label_counts(name, "main") == counted(expected)
    assert head_of(name, "main") == made.id and head_of(name, "side") == theirs
    if how == "merge":
        assert made.parents == [ours, theirs]


@PROPS
@given(
    plan=st.lists(
        st.tuples(st.sampled_from(ALL_LABELS), st.sampled_from(sorted(CLASH) + ["keep", "theirs_relabel"])), min_size=1, max_size=10
    ).filter(lambda p: any(role in CLASH for _, role in p))
)
def test_merge_conflict_lists_keys_and_writes_nothing(s2env, blobs, plan):
    name = f"c{next(_names)}"
    base = forked_dataset(blobs, name, plan, {**CLASH, **DISJOINT})
    clashing = [key for key, (_, role) in zip(sorted(base), plan) if role in CLASH]
    head, before, count = head_of(name, "main"), snapshot(blobs, name, "main"), commit_count(name)
    with pytest.raises(Conflict) as caught:
        do_merge(blobs, name, "side", "main")
    message = str(caught.value)
    assert f"conflicts on {len(clashing)} example(s)" in message
    for key in clashing[:5]:  # the message names the first five and counts the rest
        assert f"{key} (" in message
    assert head_of(name, "main") == head and snapshot(blobs, name, "main") == before and commit_count(name) == count


@PROPS
@given(labels=st.lists(st.sampled_from(ALL_LABELS), min_size=1, max_size=6))
def test_relabel_that_changes_nothing_commits_nothing(s2env, blobs, labels):
    """Staged edits that match the head make no commit and are cleared, so they cannot revert a later change."""
    name = f"n{next(_names)}"
    make_dataset(name)
    upsert(blobs, name, [Row(f"x{i}", blobs.put(f"t{i}".encode()), lbl) for i, lbl in enumerate(labels)])
    head = head_of(name, "main")
    with pytest.raises(NothingToCommit):
        relabel(blobs, name, {f"x{i}": lbl for i, lbl in enumerate(labels)})
    assert head_of(name, "main") == head
    assert run_in_transaction(lambda db: list_staged(db, dataset=name, branch=None)) == [], "no-op edits stay staged"


@PROPS
@given(ops=OPS)
@example(ops=FORKED)
def test_snapshot_same_through_checkpoints_or_delta_chain(s2env, blobs, monkeypatch, ops):
    monkeypatch.delenv("S2_CHECKPOINT_MIN_ROWS", raising=False)
    monkeypatch.delenv("S2_CHECKPOINT_DELTA_FRACTION", raising=False)
    get_settings.cache_clear()
    plain = History(blobs, f"p{next(_names)}")
    for op in ops:
        plain.apply(op)
    monkeypatch.setenv("S2_CHECKPOINT_MIN_ROWS", "1")
    monkeypatch.setenv("S2_CHECKPOINT_DELTA_FRACTION", "0")
    get_settings.cache_clear()
    dense = History(blobs, f"q{next(_names)}")
    for op in ops:
        dense.apply(op)
    assert len(plain.commits) == len(dense.commits)

    def facts(h):
        return run_in_transaction(
            lambda db: db.execute(
                select(Commit.change_count, Commit.checkpoint_blob.is_not(None)).where(Commit.dataset_id == get_dataset(db, h.name).id)
            ).all()
        )

    assert not any(ck for _, ck in facts(plain)), "defaults should keep these small histories on the delta chain"
    assert all(ck for changes, ck in facts(dense) if changes >= 2), "forced settings should checkpoint every larger commit"
    for p, q in zip(plain.commits, dense.commits):
        assert snapshot(blobs, plain.name, p) == snapshot(blobs, dense.name, q)
        got_p = run_in_transaction(lambda db: lookup(db, blobs, resolve_rev(db, get_dataset(db, plain.name), p).pk, KEYS))
        got_q = run_in_transaction(lambda db: lookup(db, blobs, resolve_rev(db, get_dataset(db, dense.name), q).pk, KEYS))
        assert {k: r[1:] for k, r in got_p.items()} == {k: r[1:] for k, r in got_q.items()}
        assert {k: r[1:4] for k, r in got_q.items()} == dense.states[q]
    for (pa, qa), (pb, qb) in itertools.combinations(list(zip(plain.commits, dense.commits))[-4:], 2):
        dp = run_in_transaction(lambda db: diff(db, blobs, dataset=plain.name, rev_a=pa, rev_b=pb))
        dq = run_in_transaction(lambda db: diff(db, blobs, dataset=dense.name, rev_a=qa, rev_b=qb))
        assert dp == dq


SEGMENT = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,6}", fullmatch=True)
META_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.lists(st.integers(0, 9), max_size=3),
)
RECORD = st.fixed_dictionaries(
    {
        "key": st.lists(SEGMENT, min_size=1, max_size=3).map("/".join),
        "label": st.sampled_from(["a", "b", "c", "", None]),
        "text": st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=24),
    },
    optional={"split": st.sampled_from(["train", "test", ""]), "source": META_VALUE, "score": META_VALUE, "tags": META_VALUE},
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(RECORD, min_size=1, max_size=12, unique_by=lambda r: r["key"]))
def test_export_of_import_gives_back_the_records(s2env, cli, tmp_path, records):
    name = f"e{next(_names)}"
    make_dataset(name)
    source, out = tmp_path / f"{name}.jsonl", tmp_path / f"{name}-out.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    commit = cli.last_line("import", name, source)
    cli.ok("export", name, "main", out, "--format", "jsonl")
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n") if line]  # not splitlines: U+0085 is text
    # every exported record carries split (null when the example has none)
    expected = [
        {**{k: v for k, v in r.items() if k != "split"}, "label": r["label"] or None, "split": r.get("split") or None} for r in records
    ]
    by_key = lambda r: r["key"]  # noqa: E731
    assert sorted(exported, key=by_key) == sorted(expected, key=by_key)
    assert cli.last_line("import", name, out) == commit  # re-importing the export changes nothing
