"""Property tests of the versioning invariants (hypothesis), each on SQLite and PostgreSQL."""
import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from server.config import get_settings
from server.datasets.commits import compact
from server.datasets.diff import diff, merge
from server.datasets.history import resolve_rev
from server.datasets.models import Commit
from server.datasets.rows import Row
from server.datasets.service import create_branch, get_dataset
from server.datasets.snapshot import lookup, read_table
from server.db import run_in_transaction
from server.errors import Conflict, NothingToCommit
from tests.factories import AUTHOR, make_dataset, relabel, upsert

KEYS = [f"k{i:02d}" for i in range(12)]
TEXTS = ["alpha", "beta", "gamma", "delta"]
LABEL = st.sampled_from(["a", "b", "c", None])
SPLIT = st.sampled_from([None, "train", "test"])
MAX_BRANCHES = 4
PROPS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_names = itertools.count()

# One operation of a random history; indices pick among what exists when the op is replayed.
UPSERT = st.tuples(st.just("upsert"), st.integers(0, 9),
                   st.dictionaries(st.sampled_from(KEYS), st.tuples(st.sampled_from(TEXTS), LABEL, SPLIT), min_size=1, max_size=6))
RELABEL = st.tuples(st.just("relabel"), st.integers(0, 9), st.lists(st.tuples(st.integers(0, 99), LABEL), max_size=4),
                    st.lists(st.integers(0, 99), max_size=2))
BRANCH = st.tuples(st.just("branch"), st.integers(0, 99))
MERGE = st.tuples(st.just("merge"), st.integers(0, 9), st.integers(0, 9))
OPS = st.lists(st.one_of(UPSERT, UPSERT, RELABEL, RELABEL, BRANCH, MERGE), min_size=2, max_size=10)


def fresh(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


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
    return run_in_transaction(lambda db: db.scalar(select(func.count()).select_from(Commit).where(Commit.dataset_id == get_dataset(db, name).id)))


def do_merge(blobs, name: str, source: str, into: str):
    return run_in_transaction(lambda db: merge(db, blobs, dataset=name, source=source, into=into, author=AUTHOR))


class History:
    """Replays ops on a new dataset through the services, checking each commit's snapshot against a model."""

    def __init__(self, blobs, name: str):
        make_dataset(name)
        self.blobs, self.name = blobs, name
        root = head_of(name, "main")
        self.heads = {"main": root}
        self.commits = [root]
        self.states: dict[str, dict] = {root: {}}

    def record(self, branch: str, commit_id: str, expected: dict | None = None) -> None:
        state = snapshot(self.blobs, self.name, commit_id)
        if expected is not None:
            assert state == expected, f"snapshot of {commit_id[:12]} on {branch} differs from the model"
        run_in_transaction(lambda db: compact(db, self.blobs, commit_id))  # as the CLI does after each commit
        self.heads[branch] = commit_id
        if commit_id not in self.states:
            self.commits.append(commit_id)
        self.states[commit_id] = state

    def apply(self, op: tuple) -> None:
        kind = op[0]
        branches = sorted(self.heads)
        if kind == "upsert":
            branch = branches[op[1] % len(branches)]
            parent = self.states[self.heads[branch]]
            rows = [Row(k, self.blobs.put(t.encode()), lbl, sp) for k, (t, lbl, sp) in op[2].items()]
            expected = {**parent, **{r.key: (r.input, r.label, r.split) for r in rows}}
            if expected == parent:
                with pytest.raises(NothingToCommit):
                    upsert(self.blobs, self.name, rows, branch=branch)
                return
            made = upsert(self.blobs, self.name, rows, branch=branch)
            assert made.parents == [self.heads[branch]]
            self.record(branch, made.id, expected)
        elif kind == "relabel":
            branch = branches[op[1] % len(branches)]
            parent = self.states[self.heads[branch]]
            keys = sorted(parent)
            if not keys:
                return
            edits = {keys[i % len(keys)]: lbl for i, lbl in op[2]}
            removals = tuple(sorted({keys[i % len(keys)] for i in op[3]} - set(edits)))
            expected = {k: (v[0], edits.get(k, v[1]), v[2]) for k, v in parent.items() if k not in removals}
            if expected == parent:
                return  # a no-op commit is refused; tested elsewhere
            made = relabel(self.blobs, self.name, edits, branch=branch, remove=removals)
            assert made.parents == [self.heads[branch]]
            self.record(branch, made.id, expected)
        elif kind == "branch" and len(branches) < MAX_BRANCHES:
            new, start = f"b{len(branches)}", self.commits[op[1] % len(self.commits)]
            run_in_transaction(lambda db: create_branch(db, dataset=self.name, name=new, from_rev=start))
            self.record(new, start, self.states[start])
        elif kind == "merge":
            src, dst = branches[op[1] % len(branches)], branches[op[2] % len(branches)]
            ours, theirs = self.states[self.heads[dst]], self.states[self.heads[src]]
            count = commit_count(self.name)
            try:
                how, made = do_merge(self.blobs, self.name, src, dst)
            except Conflict as exc:  # a legitimate outcome of a random merge: check it wrote nothing
                assert head_of(self.name, dst) == self.heads[dst] and commit_count(self.name) == count
                differing = [k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k)]
                assert any(f"{k} (" in str(exc) for k in differing), str(exc)
                return
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
@given(ops=OPS, data=st.data())
def test_diff_applied_to_a_gives_b(s2env, blobs, ops, data):
    h = History(blobs, fresh("d"))
    for op in ops:
        h.apply(op)
    heads = sorted(set(h.heads.values()))
    pairs = list(itertools.permutations(heads, 2))
    pairs += data.draw(st.lists(st.tuples(st.sampled_from(h.commits), st.sampled_from(h.commits)), max_size=8))
    for a, b in pairs:
        d = run_in_transaction(lambda db: diff(db, blobs, dataset=h.name, rev_a=a, rev_b=b))
        assert apply_diff(h.states[a], h.states[b], d) == h.states[b], f"diff {a[:12]}..{b[:12]} does not lead to B"


ROLES = ("keep", "ours_relabel", "theirs_relabel", "ours_remove", "theirs_remove", "both_same")
ALL_LABELS = ("a", "b", "c")


def other(label: str, shift: int = 1) -> str:
    return ALL_LABELS[(ALL_LABELS.index(label) + shift) % 3]


def base_dataset(blobs, name: str, labels: list[str]) -> dict:
    make_dataset(name)
    rows = [Row(f"x{i:02d}", blobs.put(f"text {i}".encode()), lbl) for i, lbl in enumerate(labels)]
    upsert(blobs, name, rows)
    run_in_transaction(lambda db: create_branch(db, dataset=name, name="side", from_rev="main"))
    return snapshot(blobs, name, "main")


@PROPS
@given(plan=st.lists(st.tuples(st.sampled_from(ALL_LABELS), st.sampled_from(ROLES)), min_size=2, max_size=12),
       adds=st.tuples(st.integers(0, 3), st.integers(0, 3)))
def test_merge_of_disjoint_edits_keeps_both(s2env, blobs, plan, adds):
    name = fresh("m")
    base = base_dataset(blobs, name, [lbl for lbl, _ in plan])
    expected = dict(base)
    edits = {"main": ({}, []), "side": ({}, [])}
    for (key, (inp, lbl, sp)), (_, role) in zip(sorted(base.items()), plan):
        side = "main" if role.startswith("ours") else "side"
        if role.endswith("_relabel") or role == "both_same":
            for b in (("main", "side") if role == "both_same" else (side,)):
                edits[b][0][key] = other(lbl)
            expected[key] = (inp, other(lbl), sp)
        elif role.endswith("_remove"):
            edits[side][1].append(key)
            del expected[key]
    for branch, count in zip(("main", "side"), adds):
        rows = [Row(f"{branch}/new{i}", blobs.put(f"{branch} {i}".encode()), "a") for i in range(count)]
        expected.update({r.key: (r.input, r.label, r.split) for r in rows})
        if rows:
            upsert(blobs, name, rows, branch=branch)
        if edits[branch][0] or edits[branch][1]:
            relabel(blobs, name, edits[branch][0], branch=branch, remove=tuple(edits[branch][1]))
    ours, theirs = head_of(name, "main"), head_of(name, "side")
    how, made = do_merge(blobs, name, "side", "main")
    assert snapshot(blobs, name, "main") == expected
    assert head_of(name, "main") == made.id and head_of(name, "side") == theirs
    if how == "merge":
        assert made.parents == [ours, theirs]


CLASH = ("relabel_vs_relabel", "relabel_vs_remove", "remove_vs_relabel", "modify_vs_relabel")


@PROPS
@given(plan=st.lists(st.tuples(st.sampled_from(ALL_LABELS), st.sampled_from(CLASH + ("keep", "theirs_relabel"))), min_size=1, max_size=10)
       .filter(lambda p: any(role in CLASH for _, role in p)))
def test_merge_conflict_lists_keys_and_writes_nothing(s2env, blobs, plan):
    name = fresh("c")
    base = base_dataset(blobs, name, [lbl for lbl, _ in plan])
    ours_edits, ours_rm, theirs_edits, theirs_rm, modified, clashing = {}, [], {}, [], [], []
    for (key, (_, lbl, _)), (_, role) in zip(sorted(base.items()), plan):
        if role in CLASH:
            clashing.append(key)
        if role == "relabel_vs_relabel":
            ours_edits[key], theirs_edits[key] = other(lbl, 1), other(lbl, 2)
        elif role == "relabel_vs_remove":
            ours_edits[key] = other(lbl)
            theirs_rm.append(key)
        elif role == "remove_vs_relabel":
            ours_rm.append(key)
            theirs_edits[key] = other(lbl)
        elif role == "modify_vs_relabel":
            modified.append(Row(key, blobs.put(f"rewritten {key}".encode()), lbl))
            theirs_edits[key] = other(lbl)
        elif role == "theirs_relabel":
            theirs_edits[key] = other(lbl)
    if modified:
        upsert(blobs, name, modified, branch="main")
    if ours_edits or ours_rm:
        relabel(blobs, name, ours_edits, branch="main", remove=tuple(ours_rm))
    relabel(blobs, name, theirs_edits, branch="side", remove=tuple(theirs_rm))
    head, before, count = head_of(name, "main"), snapshot(blobs, name, "main"), commit_count(name)
    with pytest.raises(Conflict) as caught:
        do_merge(blobs, name, "side", "main")
    message = str(caught.value)
    assert f"conflicts on {len(clashing)} example(s)" in message
    for key in clashing[:5]:  # the message names the first five and counts the rest
        assert f"{key} (" in message
    assert head_of(name, "main") == head and snapshot(blobs, name, "main") == before and commit_count(name) == count


@PROPS
@given(ops=OPS)
def test_snapshot_same_through_checkpoints_or_delta_chain(s2env, blobs, monkeypatch, ops):
    monkeypatch.delenv("S2_CHECKPOINT_MIN_ROWS", raising=False)
    monkeypatch.delenv("S2_CHECKPOINT_DELTA_FRACTION", raising=False)
    get_settings.cache_clear()
    plain = History(blobs, fresh("p"))
    for op in ops:
        plain.apply(op)
    monkeypatch.setenv("S2_CHECKPOINT_MIN_ROWS", "1")
    monkeypatch.setenv("S2_CHECKPOINT_DELTA_FRACTION", "0")
    get_settings.cache_clear()
    dense = History(blobs, fresh("q"))
    for op in ops:
        dense.apply(op)
    assert len(plain.commits) == len(dense.commits)

    def facts(h: History):
        def work(db):
            commits = db.scalars(select(Commit).where(Commit.dataset_id == get_dataset(db, h.name).id)).all()
            return {c.id: (c.change_count, c.checkpoint_blob is not None) for c in commits}
        return run_in_transaction(work)

    assert not any(ck for _, ck in facts(plain).values()), "defaults should keep these small histories on the delta chain"
    assert all(ck for changes, ck in facts(dense).values() if changes >= 2), "forced settings should checkpoint every larger commit"
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
META_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                       st.text(max_size=6), st.lists(st.integers(0, 9), max_size=3))
RECORD = st.fixed_dictionaries(
    {"key": st.lists(SEGMENT, min_size=1, max_size=3).map("/".join),
     "label": st.sampled_from(["a", "b", "c", "", None]),
     "text": st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=24)},
    optional={"split": st.sampled_from(["train", "test", ""]),
              "source": META_VALUE, "score": META_VALUE, "tags": META_VALUE})


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(RECORD, min_size=1, max_size=12, unique_by=lambda r: r["key"]))
def test_export_of_import_gives_back_the_records(s2env, cli, tmp_path, records):
    name = fresh("e")
    make_dataset(name)
    source, out = tmp_path / f"{name}.jsonl", tmp_path / f"{name}-out.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    commit = cli.last_line("import", name, source)
    cli.ok("export", name, "main", out, "--format", "jsonl")
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = []
    for r in records:
        want = {**r, "label": r["label"] or None}
        if not want.get("split"):
            want.pop("split", None)
        expected.append(want)
    by_key = lambda r: r["key"]  # noqa: E731
    assert sorted(exported, key=by_key) == sorted(expected, key=by_key)
    assert cli.last_line("import", name, out) == commit  # re-importing the export changes nothing
