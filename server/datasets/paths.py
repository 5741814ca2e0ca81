"""Names that become file paths (labels, keys): checked here, and only here, before any is joined to a folder.

A label is a folder of an ImageFolder export and a key is the path below it, so a label like
`../../x` or a key like `/etc/x` would write outside the export. Every part of such a path is
a plain relative name: not empty, not `.` or `..`, no slash, backslash or control character,
and at most 255 bytes (the longest file name common file systems allow).
"""

from pathlib import Path

from server.errors import InvalidInput

MAX_PART_BYTES = 255
MAX_KEY = 512


def part_problem(part: str) -> str | None:
    """Why part cannot be one component of a relative path (None: it can)."""
    if part in ("", ".", ".."):
        return "an empty, '.' or '..' path part"
    if "/" in part or "\\" in part:
        return "a slash or backslash"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in part):
        return "a control character"
    try:
        size = len(part.encode("utf-8"))
    except UnicodeEncodeError:
        return "a character that is not valid Unicode (a lone surrogate)"
    if size > MAX_PART_BYTES:
        return f"a path part longer than {MAX_PART_BYTES} bytes"
    return None


def check_label_name(label: str, dataset: str) -> str:
    """A label is a folder name in exports: a plain path part, not hidden, not the unlabeled folder."""
    problem = part_problem(label)
    if problem is None and label.startswith("."):
        problem = "a leading '.' (a hidden folder in exports)"
    if problem is None and label == UNLABELED_DIR:
        problem = f"the name exports give the folder of unlabeled examples ({UNLABELED_DIR})"
    if problem:
        raise InvalidInput(f"label {label!r} of dataset '{dataset}' is not allowed: it has {problem}")
    return label


def check_key(key: object, where: str) -> str:
    """A key is a relative path of plain parts: it becomes a file path on export, so it cannot escape."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput(f"{where}: missing key")
    if len(key) > MAX_KEY:
        raise InvalidInput(f"{where}: key is longer than {MAX_KEY} characters")
    for part in key.split("/"):
        problem = part_problem(part)
        if problem:
            raise InvalidInput(f"{where}: key {key!r} is not a safe relative name: it has {problem}")
    return key


def safe_join(root: Path, relative: str) -> Path:
    """root/relative, refusing any part that is not a plain name (the one way names become paths)."""
    parts = relative.split("/")
    for part in parts:
        problem = part_problem(part)
        if problem:
            raise InvalidInput(f"{relative!r} cannot be a path below the export folder: it has {problem}")
    return root.joinpath(*parts)


UNLABELED_DIR = "_unlabeled"  # the export folder of examples without a label
