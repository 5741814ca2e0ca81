"""A per-host cache of immutable Parquet blobs as uncompressed, memory-mapped Arrow files.

Checkpoints and model predictions are stored as zstd Parquet blobs: compact, verified against
their id, the same bytes on every host. Reading one by key, though, would mean fetching,
hashing and decompressing it whole on every request. So each host converts a blob once into
an Arrow IPC file under S2_HOME/cache (its hash checked on the way) and maps it: a key is then
found by binary search and a page is a zero-copy slice. The files never change (a blob id names
its content), so no invalidation is needed; the cache is trimmed to S2_CHECKPOINT_CACHE_BYTES,
least recently used first.
"""

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from server.blobs import BlobCorrupt, BlobStore
from server.config import get_settings

Convert = Callable[[pq.ParquetFile], Iterator[pa.RecordBatch]]
_OPEN_MAX = 16  # mapped files kept open per process
_lock = threading.Lock()
_open: OrderedDict[str, object] = OrderedDict()


def cache_dir() -> Path:
    """Where this host keeps its converted blobs."""
    return get_settings().home.resolve() / "cache" / "arrow"


def open_cached(blobs: BlobStore, blob_id: str, convert: Convert, view: Callable[[pa.RecordBatchFileReader], object], variant: str = ""):
    """view(reader) of blob_id's cached Arrow file (converted from its Parquet by convert on first use), kept open.

    variant names one conversion of the blob when there are several (another columns' selection, say).
    """
    name = f"{blob_id}{variant}"
    with _lock:
        if name in _open:
            _open.move_to_end(name)
            return _open[name]
    path = cache_dir() / f"{name}.arrow"
    for attempt in (1, 2):
        if not path.exists():
            _fill(blobs, blob_id, path, convert)
        try:
            mapped = pa.memory_map(str(path), "r")
            break
        except FileNotFoundError:  # another process trimmed it between the check and the map: fill again
            if attempt == 2:
                raise
    os.utime(path)  # recently used: trim() keeps it (reads through a map do not update its atime)
    opened = view(pa.ipc.open_file(mapped))
    with _lock:
        _open[name] = opened
        while len(_open) > _OPEN_MAX:
            _open.popitem(last=False)
    return opened


def _fill(blobs: BlobStore, blob_id: str, path: Path, convert: Convert) -> None:
    local = blobs.local_path(blob_id)
    if local is not None:
        _verify_file(local, blob_id)
        source = pq.ParquetFile(local)
    else:
        source = pq.ParquetFile(pa.BufferReader(blobs.get(blob_id)))  # get() verifies the hash
    path.parent.mkdir(parents=True, exist_ok=True)
    with tmp_beside(path) as tmp:
        writer = None
        with pa.OSFile(str(tmp), "wb") as sink:
            for batch in convert(source):
                if writer is None:
                    writer = pa.ipc.new_file(sink, batch.schema)
                writer.write_batch(batch)
            if writer is None:  # an empty file still needs its schema
                writer = pa.ipc.new_file(sink, source.schema_arrow)
            writer.close()
        os.replace(tmp, path)
    trim(keep=path)


def _verify_file(path: Path, blob_id: str) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != blob_id:
        raise BlobCorrupt(f"blob {blob_id} is corrupt: its bytes hash to {digest.hexdigest()}")


class tmp_beside:
    """A temporary path next to target (same file system, so os.replace is atomic); removed if left behind."""

    def __init__(self, target: Path):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        os.close(fd)
        self.path = Path(name)

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc_info) -> None:
        self.path.unlink(missing_ok=True)


def trim(keep: Path) -> None:
    """Remove the least recently used cached files while the cache is over its size."""
    limit = get_settings().checkpoint_cache_bytes
    entries = []
    for entry in os.scandir(keep.parent):
        if entry.name.endswith(".arrow"):
            st = entry.stat()
            entries.append((st.st_mtime, st.st_size, Path(entry.path)))  # open_cached touches what it maps
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= limit:
            break
        if path != keep:
            path.unlink(missing_ok=True)  # a process that mapped it keeps reading its pages
            total -= size
