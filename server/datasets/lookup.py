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
from server.datasets.models import Change, Commit
from server.datasets.rows import Row

IN_CHUNK = 500  # keys per SQL IN (...) list: well under SQLite's variable limit
UNION_MAX = 64  # commits whose key ranges are read one by one (each uses the (commit, key) index)
ROW_COLUMNS = (Change.key, Change.removed, Change.input, Change.label, Change.split, Change.meta, Change.inline)
ROW_SQL = "key, removed, input, label, split, meta, inline"


def _row(key, removed, input_, label, split, meta, inline) -> Row | None:  # noqa: ANN001
    return None if removed else Row(key, input_, label, split, meta, inline)


def _newest(rows, order: dict[int, int]) -> dict[str, tuple[int, Row | None]]:
    """Per key, the row of the newest chain commit among rows (rows of commits off the chain are ignored)."""
    best: dict[str, tuple[int, Row | None]] = {}
    for commit_pk, *fields in rows:
        position = order.get(commit_pk)
        if position is not None and (fields[0] not in best or position > best[fields[0]][0]):
            best[fields[0]] = (position, _row(*fields))
    return best


def chain_rows(db: Session, dataset_id: int, chain: list[int], keys: Iterable[str]) -> dict[str, Row | None]:
    """What the chain's deltas say of these keys (newest commit wins): a row, or None if removed.

    Keys the chain never touched are absent: they hold what the checkpoint holds. The keys' rows
    are found through the (dataset, key) index, every version of them, and kept when on the chain:
    the cost grows with the keys asked for, not with the chain or the table.
    """
    order = {pk: i for i, pk in enumerate(chain)}
    wanted = sorted(set(keys))
    best: dict[str, tuple[int, Row | None]] = {}
    if not chain or not wanted:
        return {}
    for start in range(0, len(wanted), IN_CHUNK):
        rows = db.execute(
            select(Change.commit_pk, *ROW_COLUMNS).where(Change.dataset_id == dataset_id, Change.key.in_(wanted[start : start + IN_CHUNK]))
        ).all()
        for key, found in _newest(rows, order).items():
            if key not in best or found[0] > best[key][0]:
                best[key] = found
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
        changed = chain_rows(db, db.get(Commit, pk).dataset_id, chain, wanted)
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
    db: Session, dataset_id: int, chain: list[int], lo: str | None, hi: str | None, limit: int | None
) -> tuple[dict[str, Row | None], str | None]:
    """The chain's net changes to keys in (lo, hi], and the highest key up to which they are complete.

    Read through the (dataset, key) index, every version of the range's keys, keeping the chain's:
    a window of keys costs its keys' versions, whatever the chain's length or the table's size.
    With hi None, at most about `limit` changed keys are read, and the second value says how far
    they are complete (None: to the end).
    """
    if not chain:
        return {}, hi
    order = {pk: i for i, pk in enumerate(chain)}
    base = select(Change.commit_pk, *ROW_COLUMNS).where(Change.dataset_id == dataset_id).order_by(Change.key)
    if lo is not None:
        base = base.where(Change.key > lo)
    if hi is not None:
        best = _newest(db.execute(base.where(Change.key <= hi)).all(), order)
        return {k: r for k, (_, r) in best.items()}, hi
    best: dict[str, tuple[int, Row | None]] = {}
    cursor, step = lo, max(4 * (limit or 1000), 64)
    while limit is None or len(best) < limit:
        query = base.where(Change.key > cursor) if cursor is not None else base
        rows = db.execute(query.limit(step)).all()
        if len(rows) < step:
            best.update(_newest(rows, order))
            return {k: r for k, (_, r) in best.items()}, None
        # The last key may have more versions past the cut: keep what is complete, below it.
        last = rows[-1][1]
        complete = [r for r in rows if r[1] != last]
        if not complete:  # one key with more versions than a step: read it whole
            complete = db.execute(base.where(Change.key == last)).all()
            last_done = last
        else:
            last_done = complete[-1][1]
        best.update(_newest(complete, order))
        cursor = last_done
    return {k: r for k, (_, r) in best.items() if k <= cursor}, cursor


def chain_rows_in_range(db: Session, chain: list[int], lo: str | None, hi: str) -> dict[str, Row | None]:
    """The chain's net changes to every key in (lo, hi], read through the chain commits' own (commit, key) index.

    For a bulk join (an import's sorted chunks): it reads only the chain's rows, however many versions
    of those keys older commits hold.
    """
    if not chain:
        return {}
    order = {pk: i for i, pk in enumerate(chain)}
    sql, params = _range_sql(chain, lo, hi, None, ROW_SQL)
    return {key: row for key, (_, row) in _newest(db.execute(text(sql), params).all(), order).items()}


def changed_keys_after(db: Session, commit_pks: Iterable[int], after: str | None, limit: int) -> tuple[list[str], bool]:
    """Up to limit keys (> after, in order) that any of these commits changed, and whether more may follow."""
    pks = sorted(set(commit_pks))
    if not pks:
        return [], False
    if len(pks) <= UNION_MAX:  # each commit's keys are distinct: limit + 1 of each, merged
        sql, params = _range_sql(pks, after, None, limit + 1, "key")
        keys = sorted({key for _, key in db.execute(text(sql), params)})
    else:  # one query over many commits: a key several of them changed must count once against the limit
        params = {"lo": after, "n": limit + 1, **{f"c{i}": pk for i, pk in enumerate(pks)}}
        members = ", ".join(f":c{i}" for i in range(len(pks)))
        bound = " AND key > :lo" if after is not None else ""
        sql = f"SELECT DISTINCT key FROM changes WHERE commit_pk IN ({members}){bound} ORDER BY key LIMIT :n"
        keys = list(db.scalars(text(sql), params))
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
    for commit_pk, *fields in db.execute(text(sql), params, execution_options={"stream_results": True, "yield_per": 5000}):
        if current is not None and current[1] != fields[0]:
            yield current[1], current[2]
            current = None
        if current is None or order[commit_pk] > current[0]:
            current = (order[commit_pk], fields[0], _row(*fields))
    if current is not None:
        yield current[1], current[2]
