"""The versioning engine through its services, on SQLite and PostgreSQL."""

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from server.config import get_settings
from server.datasets.commits import label_counts
from server.datasets.compaction import compact
from server.datasets.datasets import get_dataset
from server.datasets.diff import diff
from server.datasets.history import blame, log_all, resolve_rev
from server.datasets.merge import merge
from server.datasets.models import Change, Commit
from server.datasets.refs import create_branch, create_tag
from server.datasets.snapshot import read_table
from server.datasets.staging import commit_staged, list_staged, stage_edits, unstage
from server.db import run_in_transaction
from server.errors import AlreadyExists, Conflict, InvalidInput, NotFound, NothingToCommit
from tests.factories import AUTHOR, make_dataset, relabel, text_rows, upsert


def labels_at(blobs, rev: str, name: str = "ds") -> dict[str, str | None]:
    def read(db):
        ds = get_dataset(db, name)
        table = read_table(db, blobs, resolve_rev(db, ds, rev).pk)
        return dict(zip(table.column("key").to_pylist(), table.column("label").to_pylist()))

    return run_in_transaction(read)


def seed(blobs, n: int = 50):
    make_dataset()
    return upsert(blobs, "ds", text_rows(blobs, {f"k{i:03d}": (f"text {i}", "abc"[i % 3]) for i in range(n)}))


def test_relabel_commit_stores_only_changed_rows_and_no_inputs(blobs):
    seed(blobs, 200)
    blob_count = len(list(blobs.iter_ids()))
    c = relabel(blobs, "ds", {"k001": "c", "k002": "a", "k003": "a"})  # k003 is already 'a': no change
    assert c.changes == 2 and c.rows == 200

    def stored(db):
        pk = db.scalar(select(Commit.pk).where(Commit.id == c.id))
        return db.scalar(select(func.count()).select_from(Change).where(Change.commit_pk == pk))

    assert run_in_transaction(stored) == 2
    assert len(list(blobs.iter_ids())) == blob_count  # a relabel writes labels, not inputs
    assert labels_at(blobs, "main")["k001"] == "c"


def test_label_counts_follow_commits_and_are_filled_in_for_older_ones(blobs):
    seed(blobs, 30)  # labels cycle a, b, c: 10 each
    relabel(blobs, "ds", {"k000": "b", "k003": "b"}, remove=("k001",))  # a -2, b +2 -1 (k001 was b)

    def counts(db, forget: bool = False):
        commit = resolve_rev(db, get_dataset(db, "ds"), "main")
        if forget:  # as a commit written before migration 0004 has it
            commit.label_counts = None
            db.flush()
        return label_counts(db, blobs, commit)

    assert run_in_transaction(counts) == {"a": 8, "b": 11, "c": 10}
    assert run_in_transaction(lambda db: counts(db, forget=True)) == {"a": 8, "b": 11, "c": 10}  # read from the snapshot
    stored = run_in_transaction(lambda db: resolve_rev(db, get_dataset(db, "ds"), "main").label_counts)
    assert stored == {"a": 8, "b": 11, "c": 10}  # and kept


def test_revision_syntax(blobs):
    first = seed(blobs, 5)
    second = relabel(blobs, "ds", {"k000": "b"})
    third = relabel(blobs, "ds", {"k000": "c"})
    run_in_transaction(lambda db: create_tag(db, dataset="ds", name="v1", rev=first.id[:7]))

    def rev(name):
        return run_in_transaction(lambda db: resolve_rev(db, get_dataset(db, "ds"), name).id)

    assert rev("main") == third.id
    assert rev("main~1") == rev("main~") == second.id
    assert rev("main~2") == rev("main~1~1") == rev("v1") == rev(first.id) == rev(first.id[:9]) == first.id
    assert rev(f"{third.id[:10]}~2") == first.id
    with pytest.raises(NotFound, match="goes past the first commit"):
        rev("main~9")
    with pytest.raises(NotFound, match="unknown revision 'nope'"):
        rev("nope")
    with pytest.raises(NotFound, match="unknown revision"):
        rev("0000000")


def test_revision_names_tags_with_steps_short_prefixes_and_hex_named_branches(blobs):
    first = seed(blobs, 5)
    relabel(blobs, "ds", {"k000": "b"})
    third = relabel(blobs, "ds", {"k000": "c"})
    run_in_transaction(lambda db: create_tag(db, dataset="ds", name="v3", rev="main"))

    def rev(name):
        return run_in_transaction(lambda db: resolve_rev(db, get_dataset(db, "ds"), name).id)

    assert rev("v3") == third.id and rev("v3~2") == rev("v3~1~") == first.id
    with pytest.raises(NotFound, match="at least 7 hex digits"):
        rev(first.id[:6])
    # A branch named like an abbreviated id wins over the commit; more digits reach the commit.
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name=first.id[:7], from_rev="main"))
    assert rev(first.id[:7]) == third.id and rev(f"{first.id[:7]}~2") == first.id
    assert rev(first.id[:8]) == rev(first.id) == first.id


def commit_on(blobs, branch: str, edits: dict[str, str], message: str):
    """Stage edits on branch and commit them with message."""
    run_in_transaction(
        lambda db: stage_edits(db, blobs, dataset="ds", branch=branch, edits=[(k, v, False) for k, v in edits.items()], author=AUTHOR)
    )
    return run_in_transaction(lambda db: commit_staged(db, blobs, dataset="ds", branch=branch, message=message, author=AUTHOR))


def test_a_prefix_two_commits_share_is_refused_as_ambiguous(blobs):
    """Two real commits whose ids share 7 hex digits.

    A commit made at a given time has an id that depends only on its content, so the same edit on
    the same parent at the same time gets an id that depends only on its message: messages giving
    a shared prefix are found by hashing (~20,000 tries for 28 bits), not by writing ~20,000 commits.
    """
    from server.datasets.commits import commit_id_of, delta_digest, write_commit
    from server.datasets.lookup import lookup
    from server.datasets.refs import get_branch
    from server.datasets.rows import Row

    seed(blobs, 5)
    for name in ("x", "y"):
        run_in_transaction(lambda db: create_branch(db, dataset="ds", name=name, from_rev="main"))
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    head = run_in_transaction(lambda db: resolve_rev(db, get_dataset(db, "ds"), "main").id)
    before = run_in_transaction(lambda db: lookup(db, blobs, resolve_rev(db, get_dataset(db, "ds"), "main").pk, ["k001"]))
    old = before["k001"]
    delta = {"k001": Row(old.key, old.input, "b" if old.label != "b" else "a", old.split, old.meta)}
    digest, seen = delta_digest(delta), {}
    for attempt in range(2_000_000):
        message = f"relabel k001 (try {attempt})"
        prefix = commit_id_of("ds", [head], AUTHOR, message, when, digest)[:7]
        if prefix in seen:
            break
        seen[prefix] = message

    def commit_at(branch: str, text: str):
        def work(db):
            ds = get_dataset(db, "ds")
            br = get_branch(db, ds, branch)
            return write_commit(
                db,
                dataset=ds,
                branch=br,
                parent=db.get(Commit, br.head_pk),
                delta=delta,
                before=before,
                message=text,
                author=AUTHOR,
                when=when,
            )

        return run_in_transaction(work)

    x, y = commit_at("x", seen[prefix]), commit_at("y", message)
    assert x.id != y.id and x.id[:7] == y.id[:7] == prefix

    def rev(name):
        return run_in_transaction(lambda db: resolve_rev(db, get_dataset(db, "ds"), name).id)

    for ambiguous in (prefix, f"{prefix}~1"):
        with pytest.raises(InvalidInput, match=f"revision '{prefix}' is ambiguous"):
            rev(ambiguous)
    shared = len(os.path.commonprefix([x.id, y.id]))
    assert rev(x.id[: shared + 1]) == x.id and rev(y.id[: shared + 1]) == y.id
    assert rev("x") == x.id and rev("y") == y.id


def test_log_and_blame_follow_history(blobs):
    seed(blobs, 5)
    relabel(blobs, "ds", {"k001": "c"})
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name="side", from_rev="main"))
    relabel(blobs, "ds", {"k001": "a"}, branch="side")
    main_log = run_in_transaction(lambda db: log_all(db, dataset="ds", rev="main"))
    assert [c.message for c in main_log] == ["edit", "import", "create dataset ds"]
    assert main_log[0].parents == [main_log[1].id]
    on_main = run_in_transaction(lambda db: blame(db, dataset="ds", key="k001", rev="main"))
    on_side = run_in_transaction(lambda db: blame(db, dataset="ds", key="k001", rev="side"))
    assert [e.label for e in on_main] == ["b", "c"]
    assert [e.label for e in on_side] == ["b", "c", "a"]
    assert all(e.author == AUTHOR for e in on_side)
    with pytest.raises(NotFound, match="never changed"):
        run_in_transaction(lambda db: blame(db, dataset="ds", key="zzz", rev=None))


def test_merge_fast_forward_three_way_and_conflict(blobs):
    seed(blobs, 10)
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name="f", from_rev=None))
    tip = relabel(blobs, "ds", {"k001": "c"}, branch="f")
    how, head = run_in_transaction(lambda db: merge(db, blobs, dataset="ds", source="f", into="main", author=AUTHOR))
    assert (how, head.id) == ("fast-forward", tip.id)
    how, _ = run_in_transaction(lambda db: merge(db, blobs, dataset="ds", source="f", into="main", author=AUTHOR))
    assert how == "up-to-date"
    relabel(blobs, "ds", {"k002": "a"}, branch="f")
    upsert(blobs, "ds", text_rows(blobs, {"new": ("new text", "a")}), branch="main")
    relabel(blobs, "ds", {"k003": "c"}, remove=("k004",))
    how, merged = run_in_transaction(lambda db: merge(db, blobs, dataset="ds", source="f", into="main", author=AUTHOR))
    assert how == "merge" and len(merged.parents) == 2
    labels = labels_at(blobs, "main")
    assert labels["k002"] == "a" and labels["k003"] == "c" and labels["new"] == "a" and "k004" not in labels
    # Both sides change k005 differently: listed, nothing written.
    relabel(blobs, "ds", {"k005": "a"}, branch="f")
    relabel(blobs, "ds", {"k005": "b"})
    before = run_in_transaction(lambda db: resolve_rev(db, get_dataset(db, "ds"), "main").id)
    with pytest.raises(Conflict, match=r"conflicts on 1 example\(s\): k005"):
        run_in_transaction(lambda db: merge(db, blobs, dataset="ds", source="f", into="main", author=AUTHOR))
    assert run_in_transaction(lambda db: resolve_rev(db, get_dataset(db, "ds"), "main").id) == before


def test_diff_between_branches_uses_merge_base(blobs):
    seed(blobs, 10)  # k001 is 'b', k002 'c', k003 'a'
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name="f", from_rev=None))
    relabel(blobs, "ds", {"k001": "c"}, branch="f")
    upsert(blobs, "ds", text_rows(blobs, {"k002": ("rewritten", "c"), "fresh": ("fresh", None)}), branch="f")
    relabel(blobs, "ds", {"k002": "a"}, remove=("k003",))
    d = run_in_transaction(lambda db: diff(db, blobs, dataset="ds", rev_a="main", rev_b="f"))
    assert d.as_json() == {
        "added": ["fresh", "k003"],
        "removed": [],
        "relabeled": [{"key": "k001", "from": "b", "to": "c"}, {"key": "k002", "from": "a", "to": "c"}],
        "modified": ["k002"],
    }
    back = run_in_transaction(lambda db: diff(db, blobs, dataset="ds", rev_a="f", rev_b="main"))
    assert back.removed == ["fresh", "k003"] and back.added == []


def test_checkpoints_do_not_change_snapshots(blobs, monkeypatch):
    monkeypatch.setenv("S2_CHECKPOINT_MIN_ROWS", "5")
    monkeypatch.setenv("S2_CHECKPOINT_DELTA_FRACTION", "0")
    get_settings.cache_clear()
    seed(blobs, 30)
    expected = labels_at(blobs, "main")
    commits = []
    for i in range(8):
        keys = [f"k{(i * 7 + j) % 30:03d}" for j in range(4)]
        edits = {k: "abc"["abc".index(expected[k]) - 1] for k in keys}  # always a different label
        c = relabel(blobs, "ds", edits)
        commits.append((c.id, labels_at(blobs, "main")))
        expected.update(edits)
        assert commits[-1][1] == expected
        compact(blobs, c.id)
    checkpoints = run_in_transaction(lambda db: db.scalar(select(func.count()).where(Commit.checkpoint_blob.is_not(None))))
    assert checkpoints >= 2
    for commit_id, labels in commits:  # every old revision reads the same after compaction
        assert labels_at(blobs, commit_id) == labels


def test_staged_edits_are_versioned_per_example(blobs):
    seed(blobs, 5)
    from server.datasets.examples import get_example

    seen = run_in_transaction(lambda db: get_example(db, blobs, dataset="ds", key="k001", rev=None)).version
    first = run_in_transaction(
        lambda db: stage_edits(
            db, blobs, dataset="ds", branch=None, edits=[("k001", "c", False)], author="ann", expected_versions={"k001": seen}
        )
    )
    assert first[0].version == 1
    with pytest.raises(Conflict, match="edited by ann") as refused:
        run_in_transaction(
            lambda db: stage_edits(
                db, blobs, dataset="ds", branch=None, edits=[("k001", "a", False)], author="bob", expected_versions={"k001": seen}
            )
        )
    assert refused.value.extra["label"] == "c"  # the current label travels with the refusal
    again = run_in_transaction(
        lambda db: stage_edits(
            db,
            blobs,
            dataset="ds",
            branch=None,
            edits=[("k001", "a", False)],
            author="bob",
            expected_versions={"k001": first[0].example_version},
        )
    )
    assert again[0].version == 2
    assert [(s.key, s.label, s.author) for s in run_in_transaction(lambda db: list_staged(db, dataset="ds", branch=None))] == [
        ("k001", "a", "bob")
    ]
    with pytest.raises(InvalidInput, match="label 'zebra' is not in the label set"):
        run_in_transaction(lambda db: stage_edits(db, blobs, dataset="ds", branch=None, edits=[("k002", "zebra", False)], author="x"))
    with pytest.raises(NotFound, match="no example 'ghost'"):
        run_in_transaction(lambda db: stage_edits(db, blobs, dataset="ds", branch=None, edits=[("ghost", "a", False)], author="x"))
    assert run_in_transaction(lambda db: unstage(db, dataset="ds", branch=None, keys=None)) == (1, 0)
    with pytest.raises(NothingToCommit, match="nothing staged"):
        relabel(blobs, "ds", {})


def test_names_are_unique_across_branches_and_tags(blobs):
    seed(blobs, 2)
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name="x", from_rev=None))
    with pytest.raises(AlreadyExists):
        run_in_transaction(lambda db: create_tag(db, dataset="ds", name="x", rev="main"))
    with pytest.raises(AlreadyExists):
        run_in_transaction(lambda db: create_branch(db, dataset="ds", name="main", from_rev=None))
    with pytest.raises(InvalidInput, match="invalid branch name"):
        run_in_transaction(lambda db: create_branch(db, dataset="ds", name="a~1", from_rev=None))
    with pytest.raises(AlreadyExists):
        make_dataset()


def test_lookup_agrees_with_the_whole_snapshot(blobs):
    from server.datasets.lookup import lookup_many
    from server.datasets.snapshot import read_table

    seed(blobs, 60)
    run_in_transaction(lambda db: create_branch(db, dataset="ds", name="f", from_rev=None))
    relabel(blobs, "ds", {"k001": "c", "k002": "a"}, branch="f", remove=("k010",))
    relabel(blobs, "ds", {"k003": "c"}, remove=("k011",))
    upsert(blobs, "ds", text_rows(blobs, {"k004": ("changed", "a"), "n1": ("new", None)}), branch="f")
    run_in_transaction(lambda db: merge(db, blobs, dataset="ds", source="f", into="main", author=AUTHOR))
    keys = ["k001", "k002", "k003", "k004", "k010", "k011", "n1", "absent"]

    def both(db):
        ds = get_dataset(db, "ds")
        out = []
        for rev in ("main", "main~1", "f", "f~1", "main~2"):
            pk = resolve_rev(db, ds, rev).pk
            whole = {r["key"]: r for r in read_table(db, blobs, pk).to_pylist()}
            out.append(
                ({k: r._asdict() for k, r in lookup_many(db, blobs, [pk], keys)[0].items()}, {k: whole[k] for k in keys if k in whole})
            )
        return out

    for indexed, scanned in run_in_transaction(both):
        assert indexed == scanned


def test_a_diff_across_many_commits_pages_every_changed_key(blobs):
    """Over more commits than are read one by one, a key that many of them changed counts once: paging goes on to
    the last changed key (it stopped after the first key when one key filled the page's limit)."""
    from server.datasets.diff import diff_page

    first = seed(blobs, 100)
    for i in range(70):  # each commit flips k000..k002 back and forth and relabels one key of its own
        relabel(blobs, "ds", {"k000": "ab"[i % 2], "k001": "ab"[i % 2], "k002": "ab"[i % 2], f"k{10 + i:03d}": "c"})
    before, after = labels_at(blobs, first.id), labels_at(blobs, "main")
    expected = {k for k in after if before[k] != after[k]}
    seen, cursor = set(), None
    while True:
        page, cursor = run_in_transaction(
            lambda db: diff_page(db, blobs, dataset="ds", rev_a=first.id, rev_b="main", after=cursor, limit=3)  # noqa: B023
        )
        seen |= {r.key for r in page.relabeled}
        if cursor is None:
            break
    assert seen == expected and len(expected) >= 47  # k010..k079 that were not "c" already, and k000..k002 if changed
