"""Blob store backend on a local folder: objects at ROOT/ab/cdef... like git and DVC."""

import os
import threading
from collections.abc import Iterator
from pathlib import Path

from server.blobs.base import BLOB_ID, BlobMissing, BlobStore, check_blob_id


class LocalBlobStore(BlobStore):
    """Objects as files under a root folder, fanned out by the first two hex digits."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.url = f"file://{self.root}"
        self._made_dirs: set[str] = set()  # fan-out folders known to exist: skip a syscall per put

    def path_of(self, blob_id: str) -> Path:
        """Where blob_id lives on disk."""
        check_blob_id(blob_id)
        return self.root / blob_id[:2] / blob_id[2:]

    def _write(self, blob_id: str, data: bytes) -> None:
        target = self.path_of(blob_id)
        if blob_id[:2] not in self._made_dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(blob_id[:2])
        # Write beside the target and rename: a reader sees the whole object or none of it.
        tmp = f"{target.parent}/.tmp-{os.getpid()}-{threading.get_ident()}-{blob_id[2:]}"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _write_file(self, blob_id: str, path: Path) -> None:
        import shutil

        target = self.path_of(blob_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{target.parent}/.tmp-{os.getpid()}-{threading.get_ident()}-{blob_id[2:]}"
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def local_path(self, blob_id: str) -> Path | None:
        path = self.path_of(blob_id)
        return path if path.is_file() else None

    def _read(self, blob_id: str) -> bytes:
        try:
            return self.path_of(blob_id).read_bytes()
        except FileNotFoundError:
            raise BlobMissing(f"blob {blob_id} is missing from {self.url}") from None

    def exists(self, blob_id: str) -> bool:
        return self.path_of(blob_id).is_file()

    def _keep(self, blob_id: str) -> bool:
        try:
            os.utime(self.path_of(blob_id))  # one syscall: present, and fresh for s2 gc
        except FileNotFoundError:
            return False
        return True

    def iter_entries(self) -> Iterator[tuple[str, float, int]]:
        for fan in self._fans():
            for entry in os.scandir(fan.path):
                blob_id = fan.name + entry.name
                if BLOB_ID.match(blob_id):
                    st = entry.stat()
                    yield blob_id, st.st_mtime, st.st_size

    def delete_if_older(self, blob_id: str, before: float) -> bool:
        path = self.path_of(blob_id)
        try:
            if path.stat().st_mtime >= before:
                return False  # stored again since it was found unreferenced: an import is about to commit it
        except FileNotFoundError:
            return False
        path.unlink(missing_ok=True)
        return True

    def iter_temp_files(self) -> Iterator[tuple[str, float, int]]:
        for fan in self._fans():
            for entry in os.scandir(fan.path):
                if entry.name.startswith(".tmp-"):
                    st = entry.stat()
                    yield entry.path, st.st_mtime, st.st_size

    def remove_temp_file(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)

    def _fans(self):  # noqa: ANN202
        if not self.root.is_dir():
            return []
        return sorted((e for e in os.scandir(self.root) if e.is_dir() and len(e.name) == 2), key=lambda e: e.name)

    def delete(self, blob_id: str) -> None:
        self.path_of(blob_id).unlink(missing_ok=True)

    def iter_ids(self) -> Iterator[str]:
        for fan in self._fans():
            for entry in os.scandir(fan.path):
                blob_id = fan.name + entry.name
                if BLOB_ID.match(blob_id):
                    yield blob_id
