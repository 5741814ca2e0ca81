"""The blob store interface; one subclass per backend (local folder now, S3 later)."""

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

BLOB_ID = re.compile(r"^[0-9a-f]{64}$")


class BlobMissing(LookupError):
    """The blob store has no object with this id."""


class BlobCorrupt(ValueError):
    """A stored object's bytes no longer hash to its id."""


def blob_id_of(data: bytes) -> str:
    """The id a blob with these bytes gets: its sha256 in hex."""
    return hashlib.sha256(data).hexdigest()


def check_blob_id(blob_id: str) -> str:
    """Refuse anything that is not a 64-hex id, so ids can never name paths outside the store."""
    if not BLOB_ID.match(blob_id):
        raise ValueError(f"not a blob id: {blob_id!r} (expected 64 lowercase hex digits)")
    return blob_id


class BlobStore(ABC):
    """Immutable objects addressed by sha256; put is idempotent, get verifies the hash."""

    url: str
    # A put that finds its blob present refreshes its modification time (so `s2 gc` spares a blob an
    # import is about to commit); a backend where that costs a request does it only past this age.
    refresh_after_s: float = 0.0

    @abstractmethod
    def _write(self, blob_id: str, data: bytes) -> None:
        """Store data under blob_id atomically (readers never see a partial object)."""

    @abstractmethod
    def _read(self, blob_id: str) -> bytes:
        """Raw bytes of blob_id, or BlobMissing."""

    @abstractmethod
    def exists(self, blob_id: str) -> bool:
        """Whether blob_id is stored."""

    @abstractmethod
    def delete(self, blob_id: str) -> None:
        """Remove blob_id; removing a missing blob is not an error."""

    @abstractmethod
    def iter_ids(self) -> Iterator[str]:
        """Every stored blob id, in no particular order."""

    def put(self, data: bytes) -> str:
        """Store data and return its id; a blob already there is not written again (its age is refreshed)."""
        blob_id = blob_id_of(data)
        if not self._keep(blob_id):
            self._write(blob_id, data)
        return blob_id

    def _keep(self, blob_id: str) -> bool:
        """Whether blob_id is stored; if so, refresh its modification time (at most refresh_after_s old)."""
        return self.exists(blob_id)

    def iter_entries(self) -> Iterator[tuple[str, float, int]]:
        """(blob id, modification time as a Unix timestamp, size in bytes) of every stored blob."""
        for blob_id in self.iter_ids():
            yield blob_id, 0.0, 0

    def delete_if_older(self, blob_id: str, before: float) -> bool:
        """Delete blob_id unless it was modified at or after `before` (a Unix time); whether it was deleted."""
        self.delete(blob_id)
        return True

    def iter_temp_files(self) -> Iterator[tuple[str, float, int]]:
        """(path, modification time, size) of partial writes a killed process left behind (none on most backends)."""
        return iter(())

    def remove_temp_file(self, path: str) -> None:
        """Remove one partial write that iter_temp_files listed."""
        return None  # backends that list none have nothing to remove

    def put_file(self, path: Path) -> str:
        """Store the file at path (read in chunks, never whole) and return its id."""
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        blob_id = digest.hexdigest()
        if not self._keep(blob_id):
            self._write_file(blob_id, Path(path))
        return blob_id

    def _write_file(self, blob_id: str, path: Path) -> None:
        """Store the file at path under blob_id; backends that can stream a file override this."""
        self._write(blob_id, Path(path).read_bytes())

    def local_path(self, blob_id: str) -> Path | None:
        """The blob's own file when the store is a local folder (readers may map it); None elsewhere."""
        return None

    def get(self, blob_id: str) -> bytes:
        """The bytes of blob_id, refused with BlobCorrupt if they no longer match the id."""
        data = self._read(check_blob_id(blob_id))
        if blob_id_of(data) != blob_id:
            raise BlobCorrupt(f"blob {blob_id} is corrupt: its bytes hash to {blob_id_of(data)}")
        return data

    def verify(self, blob_id: str) -> bool:
        """Whether blob_id is stored intact."""
        try:
            self.get(blob_id)
        except (BlobCorrupt, BlobMissing):
            return False
        return True
