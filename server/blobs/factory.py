"""Pick the blob store backend from its URL scheme."""
from pathlib import Path
from urllib.parse import urlparse

from server.blobs.base import BlobStore
from server.blobs.local import LocalBlobStore


def open_blob_store(url: str) -> BlobStore:
    """The blob store named by url: file:///path (or a bare path) is a local folder."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return LocalBlobStore(Path(parsed.path if parsed.scheme else url))
    raise ValueError(f"unsupported blob store URL {url!r}: use file:///path")


def default_blob_store() -> BlobStore:
    """The blob store the settings name (S2_BLOB_URL, or the folder in S2_HOME)."""
    from server.config import get_settings

    return open_blob_store(get_settings().resolved_blob_url)
