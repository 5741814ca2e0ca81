"""What keys hold at a revision: the deltas since its checkpoint, then the checkpoint itself.

Every read here is bounded by what it asks for: keys are looked up in the (commit, key) index of
the few commits since the nearest checkpoint and then found in the checkpoint by binary search;
a key range is read from each of those commits' deltas with a limit. Nothing walks the history
back to the root or reads a whole snapshot.
"""

from collections.abc import Iterable, Iterator

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.graph import checkpoint_chain
from server.datasets.models import Change
from server.datasets.rows import Row

IN_CHUNK = 500  # keys per SQL IN (...) list: well under SQLite's variable limit
UNION_MAX = 64  # commits whose key ranges are read one by one (each uses the (commit, key) index)
ROW_COLUMNS = (Change.key, Change.removed, Change.input, Change.label, Change.split, Change.meta, Change.inline)
ROW_SQL = "key, removed, input, label, split, meta, inline"


def _row(key, removed, input_, label, split, meta, inline) -> Row | None:  # noqa: ANN001
    return None if removed else Row(key, input_, label, split, meta, inline)


def chain_rows(db: Session, chain: list[int], keys: Iterable[str]) -> dict[str, Row | None]:
    """What the chain's deltas say of these keys (newest commit wins): a row, or None if removed.

    Keys the chain never touched are absent: they hold what the checkpoint holds.
    """
    order = {pk: i for i, pk in enumerate(chain)}
    wanted = sorted(set(keys))
    best: dict[str, tuple[int, Row | None]] = {}
    if not chain or not wanted:
        return {}
    for start in range(0, len(wanted), IN_CHUNK):
        rows = db.execute(
            select(Change.commit_pk, *ROW_COLUMNS).where(Change.commit_pk.in_(chain), Change.key.in_(wanted[start : start + IN_CHUNK]))
        ).all()
        for commit_pk, *fields in rows:
            if fields[0] not in best or order[commit_pk] > best[fields[0]][0]:
                best[fields[0]] = (order[commit_pk], _row(*fields))
    return {key: row for key, (_, row) in best.items()}


def lookup(db: Session, blobs: BlobStore, commit_pk: int, keys: Iterable[str]) -> dict[str, Row]:
    """The rows these keys hold at a commit; keys absent there are absent from the result."""
    return lookup_many(db, blobs, [commit_pk], keys)[0]


def lookup_many(db: Session, blobs: BlobStore, commit_pks: list[int], keys: Iterable[str]) -> list[dict[str, Row]]:
    """The rows these keys hold at each of several commits (one dict per commit)."""
    from server.datasets.checkpoints import open_checkpoint

    wanted = sorted(set(keys))
    results: list[dict[str, Row]] = []
    for pk in commit_pks:
        if not wanted:
            results.append({})
            continue
        checkpoint, chain = checkpoint_chain(db, pk)
        changed = chain_rows(db, chain, wanted)
        found = {key: row for key, row in changed.items() if row is not None}
        rest = [key for key in wanted if key not in changed]
        if rest and checkpoint is not None:
            found.update(open_checkpoint(blobs, checkpoint).find(rest))
        results.append(found)
    return results


def _range_sql(chain: list[int], lo: str | None, hi: str | None, limit: int | None, columns: str) -> tuple[str, dict]:
    """SQL for the changes of chain's commits with keys in (lo, hi], key-ordered, limit per commit."""
    params: dict[str, object] = {"lo": lo, "hi": hi, "n": limit}
    bounds = (" AND key > :lo" if lo is not None else "") + (" AND key <= :hi" if hi is not None else "")
    tail = " ORDER BY key" + (" LIMIT :n" if limit is not None else "")
    if len(chain) > UNION_MAX or limit is None:
        params.update({f"c{i}": pk for i, pk in enumerate(chain)})
        members = ", ".join(f":c{i}" for i in range(len(chain)))
        return f"SELECT commit_pk, {columns} FROM changes WHERE commit_pk IN ({members}){bounds}{tail}", params
    parts = []
    for i, pk in enumerate(chain):
        params[f"c{i}"] = pk
        parts.append(f"SELECT * FROM (SELECT commit_pk, {columns} FROM changes WHERE commit_pk = :c{i}{bounds}{tail}) AS part{i}")
    return " UNION ALL ".join(parts), params


def changes_in_range(
    db: Session, chain: list[int], lo: str | None, hi: str | None, limit: int | None
) -> tuple[dict[str, Row | None], str | None]:
    """The chain's net changes to keys in (lo, hi], and the highest key up to which they are complete.

    Each commit contributes at most `limit` keys (None: all); where one hits that limit, keys past
    its last one may be missing, so the result is complete only up to the smallest such last key
    (the second value; hi, or None for unbounded, when no commit hit it).
    """
    if not chain:
        return {}, hi
    order = {pk: i for i, pk in enumerate(chain)}
    many = len(chain) > UNION_MAX and limit is not None
    limit = max(limit, len(chain) + 1) if many else limit  # one LIMIT for all: room for one key's every version
    sql, params = _range_sql(chain, lo, hi, limit, ROW_SQL)
    best: dict[str, tuple[int, Row | None]] = {}
    per_commit: dict[int, list[str]] = {}
    rows = db.execute(text(sql), params).all()
    for commit_pk, *fields in rows:
        per_commit.setdefault(commit_pk, []).append(fields[0])
        if fields[0] not in best or order[commit_pk] > best[fields[0]][0]:
            best[fields[0]] = (order[commit_pk], _row(*fields))
    complete = hi
    if limit is None:
        pass
    elif not many:
        for keys in per_commit.values():
            if len(keys) >= limit and (complete is None or keys[-1] < complete):
                complete = keys[-1]
    elif len(rows) >= limit:
        # One query with one LIMIT: its last key may have more versions past the cut; complete below it.
        last = rows[-1][1]
        best.pop(last, None)
        complete = max(best) if best else lo
    return {k: r for k, (_, r) in best.items() if complete is None or k <= complete}, complete


def changed_keys_after(db: Session, commit_pks: Iterable[int], after: str | None, limit: int) -> tuple[list[str], bool]:
    """Up to limit keys (> after, in order) that any of these commits changed, and whether more may follow."""
    pks = sorted(set(commit_pks))
    if not pks:
        return [], False
    sql, params = _range_sql(pks, after, None, limit + 1, "key")
    keys = sorted({key for _, key in db.execute(text(sql), params)})
    return keys[:limit], len(keys) > limit


def touched_keys(db: Session, commit_pks: Iterable[int]) -> set[str]:
    """Every key some of these commits changed (a merge needs them all: O(changes))."""
    pks = sorted(set(commit_pks))
    keys: set[str] = set()
    for i in range(0, len(pks), IN_CHUNK):
        keys.update(db.scalars(select(Change.key).where(Change.commit_pk.in_(pks[i : i + IN_CHUNK]))))
    return keys


def stream_chain(db: Session, chain: list[int], after: str | None = None) -> Iterator[tuple[str, Row | None]]:
    """The chain's net change of every key it touched (> after), in key order, streamed from the database."""
    if not chain:
        return
    order = {pk: i for i, pk in enumerate(chain)}
    sql, params = _range_sql(chain, after, None, None, ROW_SQL)
    current: tuple[int, str, Row | None] | None = None
    for commit_pk, *fields in db.execute(text(sql), params, execution_options={"yield_per": 5000}):
        if current is not None and current[1] != fields[0]:
            yield current[1], current[2]
            current = None
        if current is None or order[commit_pk] > current[0]:
            current = (order[commit_pk], fields[0], _row(*fields))
    if current is not None:
        yield current[1], current[2]
