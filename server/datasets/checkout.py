"""Working folders, like git's checkout: a revision written as files, moved to another revision in O(changes).

`s2 checkout NAME REV DIR` writes REV in the ImageFolder layout of exports (text files for text
datasets; one JSONL file for tabular ones, rewritten whole) and remembers, in DIR/.s2/checkout.db,
the revision and each example's file with its size and modification time. Run again with another
revision, it asks the store for the keys that differ and renames (a relabel), rewrites (a new
input), adds or removes only those files. A file edited by hand is reported and the checkout
refused, never silently overwritten (--force overwrites); one deleted by hand is written again.
"""

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from server.datasets.layout import claim, folder_path, own_name, place
from server.datasets.paths import safe_join
from server.datasets.rows import Row
from server.errors import Conflict, InvalidInput

MANIFEST = Path(".s2") / "checkout.db"
Tick = Callable[[int], None]


@dataclass
class Revision:
    """What a checkout needs to know of a dataset revision and how to read it."""

    dataset: str
    commit: str
    modality: str
    labels: list[str]
    rows: Callable[[], Iterator[Row]]  # the whole snapshot, key order
    # keys that may differ from another commit (a superset is fine: a key whose file stays as it is is skipped), their row here
    changes_since: Callable[[str], Iterator[tuple[str, Row | None]]]
    read: Callable[[Row], bytes]  # an example's input bytes


@dataclass
class CheckoutResult:
    commit: str
    previous: str | None
    written: int = 0
    moved: int = 0
    removed: int = 0
    rows: int = 0
    edited: list[str] = field(default_factory=list)  # files edited by hand that --force overwrote


class Manifest:
    """DIR/.s2/checkout.db: the revision a working folder holds and each example's file."""

    def __init__(self, root: Path, create: bool = False):
        path = root / MANIFEST
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)  # each write below is one explicit transaction
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # the files are written already; the manifest follows them
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS files (key TEXT PRIMARY KEY, path TEXT NOT NULL, input TEXT, label TEXT, size INTEGER, mtime INTEGER)"
        )

    def get(self, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def _write(self, sql: str, rows) -> None:  # noqa: ANN001
        self.db.execute("BEGIN")
        try:
            self.db.executemany(sql, rows)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def set(self, **values: str) -> None:
        self._write("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", list(values.items()))

    def entries(self, keys: list[str]) -> dict[str, "Held"]:
        """key -> (path, input, label, size, mtime) for the keys the folder holds."""
        found = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, *held in self.db.execute(f"SELECT key, path, input, label, size, mtime FROM files WHERE key IN ({marks})", chunk):
                found[key] = tuple(held)
        return found

    def record(self, rows: Iterable["Entry"]) -> None:
        self._write("INSERT OR REPLACE INTO files (key, path, input, label, size, mtime) VALUES (?, ?, ?, ?, ?, ?)", list(rows))

    def forget(self, keys: list[str]) -> None:
        self._write("DELETE FROM files WHERE key = ?", [(k,) for k in keys])


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


BATCH = 1000  # examples whose files are changed between manifest writes
# A move looks the changed keys up at the target revision through its whole first-parent history when it has
# at most this many commits (a key holds what its newest delta there says): no checkpoint is opened, so Arrow
# is not loaded. A longer history is read the usual way: the deltas since the nearest checkpoint, then it.
HISTORY_MAX = 4096
WRITERS = 4  # threads writing files: creating one is a file-system round trip, and the GIL is released meanwhile


Entry = tuple[str, str, str, str | None, int, int]  # a manifest row: key, path, input, label, size, mtime
Held = tuple[str, str, str | None, int, int]  # what the manifest says of a key: path, input, label, size, mtime


def _write_many(root: Path, rev: Revision, rows: list[Row], made: set[Path], done: list[Entry]) -> None:
    """Write many examples' files, in parallel, appending each one's entry to done as it is written (so an
    interruption loses none); the paths are chosen first, in key order, so they never depend on timing.

    Each thread reads, then writes, a run of the rows (a task per file would cost more than a small file's write).
    """
    if len(rows) < 64:
        for row in rows:
            done.append(_write(root, rev, row, made))
        return
    count = len(rows)
    step = -(-count // WRITERS)
    spans = [(lo, min(lo + step, count)) for lo in range(0, count, step)]
    datas: list[bytes] = [b""] * count
    claimed: list[Path | None] = [None] * count  # set by a writer thread once the file is written
    stop: list[bool] = []  # set when the caller is interrupted: the threads stop at their next file

    def read_span(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            if stop:
                return
            datas[i] = rev.read(rows[i])

    def claim_span(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            if stop:
                return
            claimed[i] = claim(root, paths[i], datas[i], made)

    paths: list[str] = []
    entered = 0
    try:
        with ThreadPoolExecutor(WRITERS) as pool:  # leaving it (even by an exception) waits for every thread
            try:
                for task in [pool.submit(read_span, lo, hi) for lo, hi in spans]:
                    task.result()
                planned: set[str] = set()
                for row, data in zip(rows, datas):
                    rel = folder_path(row, rev.labels, data, rev.modality)
                    if rel in planned or os.path.lexists(root / rel):
                        rel = own_name(rel, row.key)
                    planned.add(rel)
                    paths.append(rel)
                for task in [pool.submit(claim_span, lo, hi) for lo, hi in spans]:
                    task.result()
            except BaseException:
                stop.append(True)
                raise
        for i, row in enumerate(rows):
            if claimed[i] is not None:
                done.append(_entry_at(root, row, paths[i]))
            else:  # taken after all, or too long: its own name
                done.append(_entry(root, row, place(root, folder_path(row, rev.labels, datas[i], rev.modality), row.key, datas[i], made)))
            entered = i + 1
    except BaseException:
        for i in range(entered, count):  # written, not yet entered
            if claimed[i] is not None:
                done.append(_entry_at(root, rows[i], paths[i]))
        raise


def _entry(root: Path, row: Row, path: Path) -> Entry:
    return (row.key, path.relative_to(root).as_posix(), row.input, row.label, *_stamp(path))


def _entry_at(root: Path, row: Row, rel: str) -> Entry:
    st = os.stat(os.path.join(root, rel))
    return (row.key, rel, row.input, row.label, st.st_size, st.st_mtime_ns)


def _write(root: Path, rev: Revision, row: Row, made: set[Path] | None = None) -> Entry:
    """Write one example's file; its manifest entry."""
    data = rev.read(row)
    return _entry(root, row, place(root, folder_path(row, rev.labels, data, rev.modality), row.key, data, made))


def _tabular(root: Path, rev: Revision) -> int:
    """A tabular revision as one JSONL file, written whole (rows have no file of their own to move)."""
    target, count = root / f"{rev.dataset}.jsonl", 0
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rev.rows():
            record = {"key": row.key, "label": row.label, **({"split": row.split} if row.split else {}), **json.loads(rev.read(row))}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    os.replace(tmp, target)
    return count


def checkout(rev: Revision, root: Path, *, force: bool = False, tick: Tick | None = None) -> CheckoutResult:
    """Make root hold rev: written whole the first time, then only what differs from the revision it holds."""
    tick = tick or (lambda n: None)
    root = Path(root)
    if not (root / MANIFEST).exists():
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise InvalidInput(f"'{root}' is not empty and not an s2 working folder: check out into a new or empty folder")
        root.mkdir(parents=True, exist_ok=True)
        Manifest(root, create=True).set(dataset=rev.dataset, commit="", modality=rev.modality)
    manifest = Manifest(root)
    if manifest.get("dataset") != rev.dataset:
        raise InvalidInput(f"'{root}' is a working folder of dataset '{manifest.get('dataset')}', not '{rev.dataset}'")
    held = manifest.get("commit") or None
    result = CheckoutResult(commit=rev.commit, previous=held)
    if held != rev.commit:
        if rev.modality == "tabular":
            result.written = _tabular(root, rev)
        elif held is None:
            _write_all(rev, root, manifest, result, tick)  # a first checkout, or one an interruption left unfinished
        else:
            _apply_changes(rev, root, manifest, result, force, tick)
        manifest.set(commit=rev.commit)
    result.rows = manifest.db.execute("SELECT count(*) FROM files").fetchone()[0] if rev.modality != "tabular" else result.written
    return result


def _write_all(rev: Revision, root: Path, manifest: Manifest, result: CheckoutResult, tick: Tick) -> None:
    """Write every example's file (those an interrupted first checkout of the same revision wrote are kept)."""
    writing = manifest.get("writing")
    if writing and writing != rev.commit:
        raise InvalidInput(
            f"'{root}' holds an interrupted checkout of {writing[:12]}: finish it first (s2 checkout "
            f"{rev.dataset} {writing[:12]} {root}), or remove the folder"
        )
    manifest.set(writing=rev.commit)
    rows: list[Row] = []
    made: set[Path] = set()

    def flush() -> None:
        held = manifest.entries([row.key for row in rows]) if writing else {}  # resuming: skip what is written
        todo = [row for row in rows if row.key not in held or _state(os.fspath(root), held[row.key]) != "same"]
        for row in todo:
            if row.key in held:
                (root / held[row.key][0]).unlink(missing_ok=True)  # written, then changed: written again
        done: list[Entry] = []
        try:
            _write_many(root, rev, todo, made, done)
        finally:
            manifest.record(done)  # all of them, or those written before an interruption
        result.written += len(done)
        tick(len(rows))

    for row in rev.rows():
        rows.append(row)
        if len(rows) >= BATCH:
            flush()
            rows = []
    flush()


def _apply_changes(rev: Revision, root: Path, manifest: Manifest, result: CheckoutResult, force: bool, tick: Tick) -> None:
    """Remove, rename (relabels) and write (new inputs) only the examples that differ from the held revision.

    The manifest follows the files a batch at a time, so an interrupted checkout leaves a folder the
    next run finishes: a file already moved is found where the manifest says, one already removed or
    not yet rewritten is simply missing (nothing is lost, so that is never a conflict). Only the
    changed examples' files are looked at (one stat each); the rest of the folder is not read.
    """
    changes = dict(rev.changes_since(manifest.get("commit")))
    entries = manifest.entries(sorted(changes))
    for key, held in list(entries.items()):  # the same input under the same label: its file stays as it is
        row = changes[key]
        if row is not None and held[1] == row.input and held[2] == row.label:
            del changes[key], entries[key]
    base = os.fspath(root)
    states = {key: _state(base, held) for key, held in entries.items()}
    edited = {key for key, state in states.items() if state == "edited"}
    if edited and not force:
        paths = sorted(entries[k][0] for k in edited)
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        raise Conflict(
            f"'{root}' has files edited by hand that this checkout would overwrite: {shown}; "
            "copy them away, or run again with --force to overwrite them",
            extra={"files": paths},
        )
    result.edited = sorted(entries[k][0] for k in edited)
    made: set[Path] = set()
    gone = [key for key, row in changes.items() if row is None and key in entries]
    for start in range(0, len(gone), BATCH):
        batch = gone[start : start + BATCH]
        for key in batch:
            _unlink(os.path.join(base, entries[key][0]))
        manifest.forget(batch)
    result.removed = len(gone)
    pending: list[Entry] = []
    rewrite = []
    try:
        for key, row in sorted(changes.items()):
            if row is None:
                continue
            held = entries.get(key)
            if held is not None and held[1] == row.input and states[key] == "same":
                pending.append(_move(root, rev, row, held, made))  # the same bytes: a relabel is a rename
                result.moved += 1
                tick(1)
                if len(pending) >= BATCH:
                    manifest.record(pending)
                    pending.clear()
            else:
                rewrite.append(row)
        for start in range(0, len(rewrite), BATCH):
            batch = rewrite[start : start + BATCH]
            for row in batch:
                if row.key in entries:
                    _unlink(os.path.join(base, entries[row.key][0]))
            _write_many(root, rev, batch, made, pending)
            manifest.record(pending)
            pending.clear()
            result.written += len(batch)
            tick(len(batch))
    finally:
        manifest.record(pending)  # what was done before an interruption
    _prune(root, {held[0].rpartition("/")[0] for held in entries.values()})


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _state(base: str, held: Held) -> str:
    """'same' as the checkout left it, 'edited' by hand since, or 'missing' (deleted, or an interrupted checkout's)."""
    try:
        st = os.stat(os.path.join(base, held[0]))
    except FileNotFoundError:
        return "missing"
    return "same" if (st.st_size, st.st_mtime_ns) == (held[3], held[4]) else "edited"


def _suffix(rel: str) -> str:
    """PurePosixPath(rel).suffix, without building a path object."""
    name = rel.rpartition("/")[2]
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


def _move(root: Path, rev: Revision, row: Row, held: Held, made: set[Path]) -> Entry:
    """Rename an example's file to where its new label puts it (the same bytes: nothing is read or written).

    A rename keeps the file's size and modification time, which _state has just found as the manifest
    says: the entry keeps them too, with no stat of its own.
    """
    old, size, mtime = held[0], held[3], held[4]
    wanted = folder_path(row, rev.labels, b"", rev.modality)
    if not _suffix(wanted):  # the extension the file got for its bytes (an image key without one)
        wanted += _suffix(old)
    if wanted == old:
        return (row.key, old, row.input, row.label, size, mtime)
    new_path = safe_join(root, wanted)
    parent = new_path.parent
    if parent not in made:
        parent.mkdir(parents=True, exist_ok=True)
        made.add(parent)
    rel = wanted
    if os.path.lexists(new_path):  # taken: the example's own name, as place() gives it
        if own_name(wanted, row.key) == old:
            return (row.key, old, row.input, row.label, size, mtime)  # already there
        new_path = place(root, wanted, row.key)
        rel = new_path.relative_to(root).as_posix()
    os.replace(os.path.join(root, old), new_path)
    return (row.key, rel, row.input, row.label, size, mtime)


def _prune(root: Path, folders: set[str]) -> None:
    """Remove folders (paths below root, "" for root) left empty by removals and renames (deepest first), never root or .s2."""
    for folder in sorted(folders, key=lambda p: p.count("/"), reverse=True):
        path = root / folder
        while path != root and path.is_dir() and path.name != ".s2" and _empty(path):
            path.rmdir()
            path = path.parent


def _empty(folder: Path) -> bool:
    """Whether folder holds nothing (reads its first entry only, not the whole listing)."""
    with os.scandir(folder) as entries:
        return next(entries, None) is None
