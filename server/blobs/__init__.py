"""Content-addressed blob store: objects named by the sha256 of their bytes."""

from server.blobs.base import BlobCorrupt, BlobMissing, BlobStore, blob_id_of
from server.blobs.factory import default_blob_store, open_blob_store

__all__ = ["BlobCorrupt", "BlobMissing", "BlobStore", "blob_id_of", "default_blob_store", "open_blob_store"]
