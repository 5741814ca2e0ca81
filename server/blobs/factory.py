"""Pick the blob store backend from its URL scheme."""

from pathlib import Path
from urllib.parse import urlparse

from server.blobs.base import BlobStore
from server.blobs.local import LocalBlobStore


def open_blob_store(url: str) -> BlobStore:
    """The blob store named by url: file:///path (or a bare path) is a local folder,
    s3://bucket/prefix a bucket (endpoint, region and credentials from the S2_S3_* settings)."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return LocalBlobStore(Path(parsed.path if parsed.scheme else url))
    if parsed.scheme == "s3":
        from server.blobs.s3 import S3BlobStore
        from server.config import get_settings

        if not parsed.netloc:
            raise ValueError(f"blob store URL {url!r} names no bucket: use s3://bucket/prefix")
        settings = get_settings()
        secret = settings.s3_secret_access_key
        return S3BlobStore(
            parsed.netloc,
            parsed.path,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
        )
    raise ValueError(f"unsupported blob store URL {url!r}: use file:///path or s3://bucket/prefix")


def default_blob_store() -> BlobStore:
    """The blob store the settings name (S2_BLOB_URL, or the folder in S2_HOME)."""
    from server.config import get_settings

    return open_blob_store(get_settings().resolved_blob_url)
