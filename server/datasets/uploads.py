"""Turning uploaded files (tables, images, archives) into an import source, safely.

Nothing an upload names can land outside its own temporary folder: file names are plain
names, archive members are relative paths without '..', links or devices, and the total
unpacked size is bounded (no zip bombs). So is one input file (an image or a text: what one
example holds in memory), by the size an archive declares and again while it is read. A zip's
images are read where they are, in the archive: creating one file per image cost more than the
rest of an upload import together.
"""

import io
import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from server.errors import InvalidInput, TooLarge

TABLES = (".csv", ".jsonl", ".parquet")
ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz")
CHUNK = 1 << 20  # bytes read at a time from an upload or an archive member
DAMAGED = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError)  # what a damaged archive raises while read


def check_file_name(name: str | None) -> str:
    """A plain file name: no folders, no '..', no hidden or control characters."""
    if (
        not name
        or "/" in name
        or "\\" in name
        or name in (".", "..")
        or name.startswith(".")
        or any(ord(ch) < 32 for ch in name)
        or len(name) > 255
    ):
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


@dataclass
class Upload:
    """An upload laid out under root: plain files and tables on disk, zip members (by path below root) read in place."""

    root: Path
    members: dict[str, Callable[[], bytes]] = field(default_factory=dict)
    on_disk: set[str] = field(default_factory=set)  # paths below root written there (no stat per member)
    _open: list = field(default_factory=list)

    def holds(self, rel: str) -> bool:
        """Whether a file of this path (below root) was uploaded, on disk or in a zip."""
        return rel in self.members or rel in self.on_disk

    def entries(self, folder: Path) -> tuple[set[str], set[str]]:
        """(file names, folder names) directly in folder, on disk and in the zips."""
        files = {p.name for p in folder.iterdir() if p.is_file()} if folder.is_dir() else set()
        dirs = {p.name for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set()
        rel = folder.relative_to(self.root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        for path in self.members:
            if path.startswith(prefix):
                head, _, rest = path[len(prefix) :].partition("/")
                (dirs if rest else files).add(head)
        return files, dirs

    def close(self) -> None:
        """Close the archives read in place."""
        for archive in self._open:
            archive.close()
        self._open.clear()


def save_upload(files: list[tuple[str | None, BinaryIO]], workdir: Path, limit: int, input_limit: int | None = None) -> Upload:
    """Lay uploaded (name, stream) pairs out in workdir/files, opening archives (kept in workdir/archives);
    everything together, unpacked, is bounded by limit, each input file by input_limit (S2_INPUT_MAX_BYTES)."""
    if input_limit is None:
        from server.config import get_settings

        input_limit = get_settings().input_max_bytes
    upload = Upload(workdir / "files")
    try:
        _lay_out(files, upload, workdir / "archives", limit, input_limit)
    except BaseException:
        upload.close()  # zips opened for earlier files of a refused upload
        raise
    return upload


def _lay_out(files: list[tuple[str | None, BinaryIO]], upload: Upload, archives: Path, limit: int, input_limit: int) -> None:
    total = 0
    upload.root.mkdir()
    archives.mkdir()
    for raw_name, stream in files:
        name = check_file_name(raw_name)
        target = (archives if is_archive(name) else upload.root) / name
        if target.exists() or upload.holds(name):
            raise InvalidInput(f"upload file name '{name}' is sent twice (or an archive already holds it)")
        is_input = not is_archive(name) and not name.lower().endswith(TABLES)
        with open(target, "wb") as out:
            while chunk := stream.read(CHUNK):
                total += len(chunk)
                if total > limit:
                    raise TooLarge(f"upload is larger than the {limit} byte limit (at file '{name}')")
                if is_input and out.tell() + len(chunk) > input_limit:
                    raise InvalidInput(_too_big(f"upload file '{name}'", input_limit))
                out.write(chunk)
        if not is_archive(name):
            upload.on_disk.add(name)
        else:
            total += unpack(target, upload, limit - total, input_limit) - target.stat().st_size  # the archive's bytes count unpacked
            if not name.lower().endswith(".zip"):
                target.unlink()  # a tar's members are all on disk now; a zip's are read from it later


def unpack(archive: Path, upload: Upload, limit: int, input_limit: int) -> int:
    """Lay archive's members out in upload (a zip's images stay in the zip, read in place; tables and tar
    members are written under its root), refusing escaping paths, links, members that would overwrite a
    file already there, an input member over input_limit bytes and more than limit bytes unpacked;
    returns the bytes unpacked."""
    from contextlib import ExitStack

    name, total, root = archive.name, 0, upload.root
    in_place = name.lower().endswith(".zip")
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
                rel = target.relative_to(root).as_posix()
                is_input = not rel.lower().endswith(TABLES)
                if is_input and size > input_limit:  # refused on what it declares, before a byte is inflated
                    raise InvalidInput(_too_big(f"upload '{name}': member {member!r} ({size} bytes)", input_limit))
                if upload.holds(rel):
                    raise InvalidInput(
                        f"upload '{name}': member {member!r} would overwrite a file of the same path "
                        "already in the upload; send each file once"
                    )
                if in_place and is_input:
                    upload.members[rel] = _reader(name, member, open_member, input_limit)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with open_member() as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, CHUNK)  # never more than the member declared (tar and zip readers stop there)
                except DAMAGED as exc:
                    raise InvalidInput(f"upload '{name}': member {member!r} cannot be read: {exc}") from None
                upload.on_disk.add(rel)
            if in_place:
                upload._open.append(stack.pop_all())  # the zip stays open while its members are read
    except DAMAGED as exc:  # zlib.error is no OSError: a damaged deflate stream used to escape as a 500
        raise InvalidInput(f"upload '{name}' is not a readable archive: {exc}") from None
    return total


def _too_big(what: str, limit: int) -> str:
    return f"{what} is larger than the {limit} byte limit for one input file (S2_INPUT_MAX_BYTES); make it smaller"


def _reader(archive: str, member: str, open_member, limit: int) -> Callable[[], bytes]:
    def read() -> bytes:
        data = io.BytesIO()  # getvalue() hands over its buffer: one copy of the input in memory, not two
        try:
            with open_member() as src:
                while chunk := src.read(CHUNK):  # whatever the member declares, never more than limit in memory
                    if data.tell() + len(chunk) > limit:
                        raise InvalidInput(_too_big(f"upload '{archive}': member {member!r}", limit))
                    data.write(chunk)
        except DAMAGED as exc:  # a damaged member (bad deflate data, bad CRC) surfaces when it is read
            raise InvalidInput(f"upload '{archive}': member {member!r} cannot be read: {exc}") from None
        return data.getvalue()

    return read


def choose_source(upload: Upload, labels: list[str], folder: Path | None = None) -> Path:
    """The import source inside an upload: its one table file, else an ImageFolder."""
    folder = folder or upload.root
    files, dirs = upload.entries(folder)
    tables = sorted(n for n in files if n.lower().endswith(TABLES))
    if len(tables) > 1:
        raise InvalidInput(f"upload holds several tables ({', '.join(tables)}): send one per import")
    if tables:
        return folder / tables[0]
    entries = {n for n in files | dirs if not n.startswith(".")}
    if len(entries) == 1 and entries <= dirs and next(iter(entries)) not in labels:
        return choose_source(upload, labels, folder / next(iter(entries)))  # an archive of one folder holding the label folders
    if not dirs:
        raise InvalidInput("the upload holds no table (.csv, .jsonl, .parquet) and no label folders (LABEL/FILE): nothing to import")
    return folder
