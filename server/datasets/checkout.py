"""Working folders, like git's checkout: a revision written as files, moved to another revision in O(changes).

`s2 checkout NAME REV DIR` writes REV in the ImageFolder layout of exports (text files for text
datasets; one JSONL file for tabular ones, rewritten whole) and remembers, in DIR/.s2/checkout.db,
the revision and each example's file with its size and modification time. Run again with another
revision, it asks the store for the keys that differ and renames (a relabel), rewrites (a new
input), adds or removes only those files. A file edited or deleted by hand is reported and the
checkout refused, never silently overwritten (--force overwrites).
"""

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from server.datasets.layout import folder_path, place
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
    changes_since: Callable[[str], Iterator[tuple[str, Row | None]]]  # keys that differ from another commit: their row here
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

    def entries(self, keys: list[str]) -> dict[str, tuple[str, str, int, int]]:
        """key -> (path, input, size, mtime) for the keys the folder holds."""
        found = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, path, input_, size, mtime in self.db.execute(
                f"SELECT key, path, input, size, mtime FROM files WHERE key IN ({marks})", chunk
            ):
                found[key] = (path, input_, size, mtime)
        return found

    def record(self, rows: Iterable[tuple[str, str, str, str | None, int, int]]) -> None:
        self._write("INSERT OR REPLACE INTO files (key, path, input, label, size, mtime) VALUES (?, ?, ?, ?, ?, ?)", list(rows))

    def forget(self, keys: list[str]) -> None:
        self._write("DELETE FROM files WHERE key = ?", [(k,) for k in keys])


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _write(root: Path, rev: Revision, row: Row, made: set[Path] | None = None) -> tuple[str, str, str, str | None, int, int]:
    """Write one example's file; its manifest entry."""
    data = rev.read(row)
    path = place(root, folder_path(row, rev.labels, data, rev.modality), row.key, data, made)
    return (row.key, path.relative_to(root).as_posix(), row.input, row.label, *_stamp(path))


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
        done = [_write(root, rev, row, made) for row in rows if row.key not in held or _edited(root, held[row.key])]
        manifest.record(done)
        result.written += len(done)
        tick(len(rows))

    for row in rev.rows():
        rows.append(row)
        if len(rows) >= 1000:
            flush()
            rows = []
    flush()


def _apply_changes(rev: Revision, root: Path, manifest: Manifest, result: CheckoutResult, force: bool, tick: Tick) -> None:
    """Remove, rename (relabels) and write (new inputs) only the examples that differ from the held revision."""
    changes = dict(rev.changes_since(manifest.get("commit")))
    entries = manifest.entries(sorted(changes))
    edited = {key for key, entry in entries.items() if _edited(root, entry)}
    if edited and not force:
        paths = sorted(entries[k][0] for k in edited)
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        raise Conflict(
            f"'{root}' has files edited by hand that this checkout would overwrite: {shown}; "
            "copy them away, or run again with --force to overwrite them",
            extra={"files": paths},
        )
    result.edited = sorted(entries[k][0] for k in edited)
    gone = [key for key, row in changes.items() if row is None and key in entries]
    for key in gone:
        (root / entries[key][0]).unlink(missing_ok=True)
    manifest.forget(gone)
    result.removed = len(gone)
    recorded = []
    for key, row in sorted(changes.items()):
        if row is None:
            continue
        held = entries.get(key)
        if held is not None and held[1] == row.input and key not in edited:
            recorded.append(_move(root, rev, row, held[0]))  # the same bytes: a relabel is a rename
            result.moved += 1
        else:
            if held is not None:
                (root / held[0]).unlink(missing_ok=True)
            recorded.append(_write(root, rev, row))
            result.written += 1
        tick(1)
    manifest.record(recorded)
    _prune(root, {Path(entry[0]).parent for entry in entries.values()})


def _edited(root: Path, entry: tuple[str, str, int, int]) -> bool:
    path, _, size, mtime = entry
    try:
        return _stamp(root / path) != (size, mtime)
    except FileNotFoundError:
        return True  # deleted by hand


def _move(root: Path, rev: Revision, row: Row, old: str) -> tuple[str, str, str, str | None, int, int]:
    """Rename an example's file to where its new label puts it."""
    old_path = root / old
    with open(old_path, "rb") as f:
        head = f.read(16)  # enough to tell an image's extension
    wanted = folder_path(row, rev.labels, head, rev.modality)
    if wanted == old:
        return (row.key, old, row.input, row.label, *_stamp(old_path))
    new_path = place(root, wanted, row.key)  # claims a new empty file there
    os.replace(old_path, new_path)
    return (row.key, new_path.relative_to(root).as_posix(), row.input, row.label, *_stamp(new_path))


def _prune(root: Path, folders: set[Path]) -> None:
    """Remove folders left empty by removals and renames (deepest first), never root or .s2."""
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        path = root / folder
        while path != root and path.is_dir() and path.name != ".s2" and not any(path.iterdir()):
            path.rmdir()
            path = path.parent
