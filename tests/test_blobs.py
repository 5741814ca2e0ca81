"""The content-addressed blob store: idempotent put, verified get, safe ids."""

import os

import pytest

from server.blobs import BlobCorrupt, BlobMissing, blob_id_of, open_blob_store
from server.blobs.local import LocalBlobStore


@pytest.fixture
def store(tmp_path):
    return open_blob_store(f"file://{tmp_path / 'blobs'}")


def test_put_returns_sha256_and_is_idempotent(store):
    first = store.put(b"hello")
    assert first == blob_id_of(b"hello") == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    path = store.path_of(first)
    before = os.stat(path)
    old = before.st_mtime - 7200
    os.utime(path, (old, old))
    assert store.put(b"hello") == first
    after = os.stat(path)
    assert after.st_ino == before.st_ino  # not rewritten: the same file
    assert after.st_mtime > old + 3600  # but its age refreshed, so s2 gc spares a blob an import is about to commit
    assert store.get(first) == b"hello"
    assert set(store.iter_ids()) == {first}


def test_get_refuses_bytes_that_no_longer_match(store):
    blob_id = store.put(b"original")
    path = store.path_of(blob_id)
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(BlobCorrupt, match=blob_id):
        store.get(blob_id)
    assert not store.verify(blob_id)


def test_missing_blob_and_delete(store):
    blob_id = store.put(b"x")
    store.delete(blob_id)
    store.delete(blob_id)  # deleting twice is fine
    assert not store.exists(blob_id)
    with pytest.raises(BlobMissing, match=blob_id):
        store.get(blob_id)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "ABC", "0" * 63, "g" * 64, ""])
def test_ids_cannot_name_paths_outside_the_store(store, bad):
    with pytest.raises(ValueError, match="not a blob id"):
        store.get(bad)


def test_bare_path_and_unknown_scheme(tmp_path):
    assert isinstance(open_blob_store(str(tmp_path)), LocalBlobStore)
    with pytest.raises(ValueError, match="unsupported blob store URL"):
        open_blob_store("ftp://example/blobs")
