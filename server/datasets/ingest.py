"""Importing rows as one commit, streamed: memory stays flat however many rows come.

1. Rows are validated as they are read (inputs go to the blob store or inline) and spilled to
   disk in sorted runs of SPILL_ROWS.
2. The runs are merged into one key-ordered stream; a key seen twice is refused with both places.
3. In one transaction, the stream is joined with the branch head by key, a chunk at a time, and
   every row that changes something is written through a CommitWriter.
Nothing is committed unless every row is valid; blobs written for a failed import are left for
`s2 gc`.
"""

import heapq
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from server.blobs import BlobStore
from server.config import get_settings
from server.datasets.checkpoints import open_checkpoint
from server.datasets.commits import CommitWriter
from server.datasets.datasets import get_dataset
from server.datasets.graph import checkpoint_chain
from server.datasets.history import resolve_rev
from server.datasets.lookup import chain_rows, chain_rows_in_range
from server.datasets.models import Commit
from server.datasets.refs import get_branch
from server.datasets.rows import Row
from server.errors import InvalidInput, NothingToCommit

SPILL_ROWS = 20_000  # rows sorted in memory before a run goes to disk (a Python row with its place is ~1 KB)
MERGE_ROWS = 50_000  # rows held as Python objects by the merge of the sorted runs, all runs together
CHUNK = 10_000  # rows joined with the head and written per step
SPILL_SCHEMA = pa.schema([(name, pa.string()) for name in ("key", "input", "label", "split", "meta", "inline", "where")])
Tick = Callable[[int], None]


@dataclass
class Ingested:
    """What an import did: the rows it read, how many changed something, and the resulting head."""

    examples: int
    changes: int
    commit: str
    rows: int


class SortedRows:
    """Validated rows spilled to disk in sorted runs, read back as one key-ordered stream."""

    def __init__(self, rows: Iterable[tuple[str, Row]], workdir: Path | None = None, tick: Tick | None = None):
        if workdir is None:  # under S2_HOME, where s2 gc finds what a killed import left
            workdir = get_settings().home.resolve() / "tmp"
            workdir.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="spill-", dir=workdir))
        self.runs: list[Path] = []
        self.count = 0
        try:
            pending: list[tuple[str, Row]] = []
            for where, row in rows:
                pending.append((where, row))
                self.count += 1
                if tick:
                    tick(1)
                if len(pending) >= SPILL_ROWS:
                    self._spill(pending)
                    pending = []
            if pending:
                self._spill(pending)
        except BaseException:
            self.close()
            raise

    def _spill(self, pending: list[tuple[str, Row]]) -> None:
        pending.sort(key=lambda item: item[1].key)
        columns = list(zip(*(tuple(row) + (where,) for where, row in pending)))
        path = self.folder / f"run{len(self.runs):05d}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, SPILL_SCHEMA) as writer:
            writer.write_table(pa.table(columns, schema=SPILL_SCHEMA), max_chunksize=4096)
        self.runs.append(path)

    @staticmethod
    def _read(path: Path, step: int) -> Iterator[tuple[str, str, Row]]:
        """A run's rows in order, step rows at a time as Python objects (the rest stays mapped Arrow)."""
        with pa.memory_map(str(path), "r") as source:
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i)
                for start in range(0, batch.num_rows, step):
                    part = batch.slice(start, step)
                    for *fields, where in zip(*(part.column(n).to_pylist() for n in SPILL_SCHEMA.names)):
                        yield fields[0], where, Row(*fields)

    def stream(self) -> Iterator[Row]:
        """Every row once, in key order; a key seen twice is an InvalidInput naming both places.

        The merge holds a slice of every run at once: MERGE_ROWS rows in all, shared among the runs,
        so ten million rows in 500 runs hold what a million in 50 do.
        """
        previous: tuple[str, str] | None = None
        step = max(16, MERGE_ROWS // max(1, len(self.runs)))
        for key, where, row in heapq.merge(*(self._read(p, step) for p in self.runs), key=lambda item: item[0]):
            if previous is not None and previous[0] == key:
                first, second = sorted([previous[1], where], key=_place_order)
                raise InvalidInput(f"{second}: duplicate key '{key}' (first at {first})")
            previous = (key, where)
            yield row

    def close(self) -> None:
        """Remove the spilled runs."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _place_order(where: str) -> tuple:
    """Order of two places in one source ("'f.csv' line 12" before "line 120"), for duplicate messages."""
    number = where.rsplit(" ", 1)[-1]
    return (where.rsplit(" ", 1)[0], int(number)) if number.isdigit() else (where, 0)


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def commit_sorted(
    db,
    blobs: BlobStore,
    *,
    dataset: str,
    branch: str | None,
    rows: Iterator[Row],
    message: str,
    author: str,
    expected: int | None = None,
    tick: Tick | None = None,
):
    """Upsert key-sorted rows on branch as one commit (in db's transaction); returns (Commit, changes).

    Raises NothingToCommit when every row matches the head already.
    """
    ds = get_dataset(db, dataset)
    br = get_branch(db, ds, branch)
    parent = db.get(Commit, br.head_pk)
    checkpoint_id, chain = checkpoint_chain(db, parent.pk)
    checkpoint = open_checkpoint(blobs, checkpoint_id) if checkpoint_id is not None and parent.row_count else None
    # A few rows against a long chain: look each key up; many rows: read the chain by key range.
    by_key = expected is not None and expected * 20 < parent.chain_rows
    writer = CommitWriter(db, dataset=ds, branch=br, parent=parent, message=message, author=author)
    lo: str | None = None
    for chunk in _chunks(rows, CHUNK):
        keys = [row.key for row in chunk]
        if by_key:
            changed = chain_rows(db, ds.id, chain, keys)
        else:
            changed = chain_rows_in_range(db, chain, lo, keys[-1])
        before = {k: r for k, r in changed.items() if r is not None}
        rest = [k for k in keys if k not in changed]
        if checkpoint is not None and rest:
            before.update(checkpoint.find_many(rest))
        writer.add((row.key, row, before.get(row.key), None) for row in chunk if not row.same_content(before.get(row.key)))
        lo = keys[-1]
        if tick:
            tick(len(chunk))
    commit = writer.finish()
    return commit, writer.changes


def ingest(
    db_work,
    blobs: BlobStore,
    *,
    dataset: str,
    branch: str | None,
    rows: Iterable[tuple[str, Row]],
    message: str,
    author: str,
    workdir: Path | None = None,
    on_read: Tick | None = None,
    on_commit: Tick | None = None,
    source_name: str = "the import source",
    on_committed=None,  # (db, commit, changes, examples) -> None: in the commit's transaction (an import job's success)
) -> Ingested:
    """Read, validate, sort and commit rows as one import; db_work(fn) runs fn(db) in a transaction (retried
    if the branch moved meanwhile). Returns what it did (changes 0: nothing to commit, the head unchanged)."""
    sorted_rows = SortedRows(rows, workdir, on_read)
    try:
        if sorted_rows.count == 0:
            raise InvalidInput(f"{source_name} has no examples")

        def commit(db):
            made, changes = commit_sorted(
                db,
                blobs,
                dataset=dataset,
                branch=branch,
                rows=sorted_rows.stream(),
                message=message,
                author=author,
                expected=sorted_rows.count,
                tick=on_commit,
            )
            if on_committed is not None:
                on_committed(db, made, changes, sorted_rows.count)
            return made, changes

        try:
            made, changes = db_work(commit)
        except NothingToCommit:
            head_id, head_rows = db_work(lambda db: _head(db, dataset, branch))
            return Ingested(examples=sorted_rows.count, changes=0, commit=head_id, rows=head_rows)
        return Ingested(examples=sorted_rows.count, changes=changes, commit=made.id, rows=made.row_count)
    finally:
        sorted_rows.close()


def _head(db, dataset: str, branch: str | None) -> tuple[str, int]:  # noqa: ANN001
    ds = get_dataset(db, dataset)
    head = resolve_rev(db, ds, branch or ds.default_branch)
    return head.id, head.row_count
