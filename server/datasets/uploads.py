"""Turning uploaded files (tables, images, archives) into an import source, safely.

Nothing an upload names can land outside its own temporary folder: file names are plain
names, archive members are relative paths without '..', links or devices, and the total
unpacked size is bounded (no zip bombs).
"""
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from server.errors import InvalidInput, TooLarge

TABLES = (".csv", ".jsonl", ".parquet")
ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz")


def check_file_name(name: str | None) -> str:
    """A plain file name: no folders, no '..', no hidden or control characters."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith(".") \
            or any(ord(ch) < 32 for ch in name) or len(name) > 255:
        raise InvalidInput(f"upload file name {name!r} is not allowed: send plain names like data.csv or images.zip")
    return name


def is_archive(name: str) -> bool:
    """Whether a file name is one of the archive kinds we unpack."""
    return name.lower().endswith(ARCHIVES)


def _member_path(root: Path, archive: str, member: str) -> Path | None:
    parts = PurePosixPath(member.replace("\\", "/")).parts
    if not parts or member.startswith("/") or any(p in ("..",) for p in parts) or ":" in parts[0]:
        raise InvalidInput(f"upload '{archive}': member {member!r} points outside the archive")
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return None  # hidden files and macOS resource forks are not examples
    return root.joinpath(*parts)


def _members(archive: Path, stack):
    """(name, size, kind, open) for each member of a zip or tar: kind is "file", "dir" or "other" (links, devices)."""
    if archive.name.lower().endswith(".zip"):
        zf = stack.enter_context(zipfile.ZipFile(archive))
        for info in zf.infolist():
            link = (info.external_attr >> 16) & 0o170000 == 0o120000
            yield info.filename, info.file_size, "dir" if info.is_dir() else "other" if link else "file", lambda i=info: zf.open(i)
        return
    tf = stack.enter_context(tarfile.open(archive))
    for member in tf:
        kind = "dir" if member.isdir() else "file" if member.isfile() else "other"
        yield member.name, member.size, kind, lambda m=member: tf.extractfile(m)


def save_upload(files: list[tuple[str | None, BinaryIO]], root: Path, limit: int) -> None:
    """Write uploaded (name, stream) pairs under root, unpacking archives; everything together is bounded by limit."""
    total = 0
    for raw_name, stream in files:
        name = check_file_name(raw_name)
        target = root / name
        if target.exists():
            raise InvalidInput(f"upload file name '{name}' is sent twice (or an archive already holds it)")
        with open(target, "wb") as out:
            while chunk := stream.read(1 << 20):
                total += len(chunk)
                if total > limit:
                    raise TooLarge(f"upload is larger than the {limit} byte limit (at file '{name}')")
                out.write(chunk)
        if is_archive(name):
            total += unpack(target, root, limit - total) - target.stat().st_size  # the archive itself goes
            target.unlink()


def unpack(archive: Path, root: Path, limit: int) -> int:
    """Extract archive under root, refusing escaping paths, links, members that would overwrite a file
    already there, and more than limit bytes unpacked; returns the bytes unpacked."""
    from contextlib import ExitStack

    name, total = archive.name, 0
    try:
        with ExitStack() as stack:
            for member, size, kind, open_member in _members(archive, stack):
                target = _member_path(root, name, member)
                if target is None or kind == "dir":
                    continue
                if kind != "file":
                    raise InvalidInput(f"upload '{name}': member {member!r} is a link or device; only files are allowed")
                total += size
                if total > limit:
                    raise TooLarge(f"upload '{name}' unpacks to more than the upload's byte limit")
                if target.exists():
                    raise InvalidInput(f"upload '{name}': member {member!r} would overwrite a file of the same path "
                                       "already in the upload; send each file once")
                target.parent.mkdir(parents=True, exist_ok=True)
                with open_member() as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidInput(f"upload '{name}' is not a readable archive: {exc}") from None
    return total


def choose_source(root: Path, labels: list[str]) -> Path:
    """The import source inside an unpacked upload: its one table file, else an ImageFolder."""
    tables = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in TABLES)
    if len(tables) > 1:
        raise InvalidInput(f"upload holds several tables ({', '.join(p.name for p in tables)}): send one per import")
    if tables:
        return tables[0]
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in labels:
        return choose_source(entries[0], labels)  # an archive of one folder holding the label folders
    if not any(p.is_dir() for p in entries):
        raise InvalidInput("upload holds no table (.csv, .jsonl, .parquet) and no label folders (LABEL/FILE): nothing to import")
    return root
