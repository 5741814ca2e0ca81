"""Where an example lands as a file (ImageFolder exports, JSONL images, working folders).

The path is <label>/<key without a leading label folder>, with an image extension added when
the key has none (ImageFolder readers skip files without one). Two keys can still want one
path (`c` becomes `c.png` beside a real `c.png`; `a.png` is a file where `a.png/b.png` needs a
folder) and a name can grow past what a file system allows: such an example gets a name of its
own, `<stem>~<digest of its key><ext>` in its label folder, so no file ever stands for two
examples. Rows come in key order, so the same revision always lands on the same paths.
"""

import errno
import hashlib
import os
from pathlib import Path, PurePosixPath

from server.datasets.paths import UNLABELED_DIR, safe_join
from server.datasets.rows import Row

MAGIC = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF8", ".gif"),
    (b"BM", ".bmp"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
)


def file_suffix(data: bytes, modality: str) -> str:
    """The extension an image file needs to be recognised (keys from CSV often have none); text keeps its key."""
    if modality != "image":
        return ""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return next((ext for magic, ext in MAGIC if data.startswith(magic)), "")


def folder_path(row: Row, labels: list[str], data: bytes, modality: str) -> str:
    """The path a row wants in ImageFolder layout: <label>/<key without a leading label folder>[.ext]."""
    first, _, rest = row.key.partition("/")
    name = rest if rest and first in labels else row.key
    rel = f"{row.label if row.label is not None else UNLABELED_DIR}/{name}"
    return rel if PurePosixPath(rel).suffix else rel + file_suffix(data, modality)


def own_name(rel: str, key: str) -> str:
    """The fallback path of an example whose wanted path is taken or too long: unique to its key."""
    folder, _, name = rel.partition("/")
    last = PurePosixPath(name).name
    suffix = PurePosixPath(last).suffix[:16]
    stem = last[: len(last) - len(suffix)] if suffix else last
    stem = stem.encode("utf-8")[:120].decode("utf-8", "ignore")
    return f"{folder}/{stem}~{hashlib.sha256(key.encode()).hexdigest()[:16]}{suffix}"


def claim(root: Path, rel: str, data: bytes = b"", made: set[Path] | None = None) -> Path | None:
    """Create root/rel as a new file holding data; None when it (or a file where a folder must go) exists, or is too long.

    made: folders known to exist already (saves a mkdir per file when writing many).
    """
    path = safe_join(root, rel)
    try:
        if made is None or path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            if made is not None:
                made.add(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return None
        raise
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return path


def place(root: Path, rel: str, key: str, data: bytes = b"", made: set[Path] | None = None) -> Path:
    """A new file for the example `key` at root/rel (or at its own name when rel is taken), holding data."""
    path = claim(root, rel, data, made) or claim(root, own_name(rel, key), data, made)
    if path is None:
        raise FileExistsError(errno.EEXIST, "two examples want the same file", str(root / own_name(rel, key)))
    return path
