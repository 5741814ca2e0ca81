"""The S3 blob store against a real S3-protocol server (moto in server mode, on loopback), and through the CLI."""

import csv
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest

from server.blobs import BlobCorrupt, BlobMissing, blob_id_of, open_blob_store
from server.blobs.s3 import BlobStoreError, S3BlobStore
from server.config import get_settings
from tests.conftest import CLI, stop_process

REGION = "us-east-1"
KEY_ID, SECRET = "s2-test-key", "s2-test-secret"  # moto accepts any credentials


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory):
    """A moto S3 server in its own process on a free loopback port; stopped at the end of the session."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"moto server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"moto server did not answer on {url} within 30 s: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        stop_process(proc, timeout=10)


@pytest.fixture(scope="session")
def s3(moto_endpoint):
    """A plain boto3 client on the server, for setting up and tampering behind the store's back."""
    return boto3.session.Session().client(
        "s3", endpoint_url=moto_endpoint, region_name=REGION, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET
    )


@pytest.fixture
def bucket(s3) -> str:
    name = f"s2t-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_settings(moto_endpoint, monkeypatch):
    """S2_S3_* pointing this process's Settings at the moto server."""
    for name, value in {
        "S2_S3_ENDPOINT_URL": moto_endpoint,
        "S2_S3_REGION": REGION,
        "S2_S3_ACCESS_KEY_ID": KEY_ID,
        "S2_S3_SECRET_ACCESS_KEY": SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def store(bucket, s3_settings) -> S3BlobStore:
    return open_blob_store(f"s3://{bucket}/blobs")


def test_url_routes_to_s3_with_settings_and_costs_nothing(s3_settings, moto_endpoint):
    store = open_blob_store("s3://some-bucket/a/prefix/")
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix, store.url) == ("some-bucket", "a/prefix", "s3://some-bucket/a/prefix")
    assert (store.endpoint_url, store.region) == (moto_endpoint, REGION)
    assert store._client_obj is None  # no client (and no request) until first use
    assert SECRET not in repr(get_settings())  # the secret is a SecretStr
    assert open_blob_store("s3://bare-bucket").key_of("ab" * 32) == "ab/" + "ab" * 31
    with pytest.raises(ValueError, match="unsupported blob store URL"):
        open_blob_store("ftp://example/blobs")
    with pytest.raises(ValueError, match="names no bucket"):
        open_blob_store("s3:///just/a/path")


def test_importing_the_backend_does_not_load_boto3():
    code = "import sys, server.blobs.s3; print('boto3' in sys.modules, 'botocore' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent
    )
    assert out.stdout.split() == ["False", "False"]


def test_put_returns_sha256_and_is_idempotent(store, s3, bucket):
    first = store.put(b"hello")
    assert first == blob_id_of(b"hello") == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    key = f"blobs/{first[:2]}/{first[2:]}"
    assert store.key_of(first) == key
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    s3.put_object(Bucket=bucket, Key=key, Body=b"hello", Metadata={"marker": "original"})
    assert store.put(b"hello") == first
    head = s3.head_object(Bucket=bucket, Key=key)
    assert (head["ETag"], head["Metadata"]) == (etag, {"marker": "original"})  # not rewritten
    assert store.get(first) == b"hello"
    assert store.exists(first)
    assert set(store.iter_ids()) == {first}


def test_get_refuses_bytes_that_no_longer_match(store, s3, bucket):
    blob_id = store.put(b"original")
    s3.put_object(Bucket=bucket, Key=store.key_of(blob_id), Body=b"tampered")
    with pytest.raises(BlobCorrupt, match=blob_id):
        store.get(blob_id)
    assert not store.verify(blob_id)


def test_missing_blob_and_delete(store):
    blob_id = store.put(b"x")
    other = store.put(b"y")
    store.delete(blob_id)
    store.delete(blob_id)  # deleting twice is fine
    assert not store.exists(blob_id)
    with pytest.raises(BlobMissing, match=blob_id):
        store.get(blob_id)
    assert not store.verify(blob_id)
    assert set(store.iter_ids()) == {other}


@pytest.mark.parametrize("bad", ["../../etc/passwd", "ABC", "0" * 63, "g" * 64, ""])
def test_ids_cannot_name_keys_outside_the_store(store, bad):
    for op in (store.get, store.exists, store.delete):
        with pytest.raises(ValueError, match="not a blob id"):
            op(bad)


def test_iter_ids_pages_and_ignores_foreign_keys_and_other_prefixes(store, s3, bucket, s3_settings):
    # More than one 1000-key page. Seeded straight into the bucket (half the requests of put's
    # HEAD + PUT); a few go through put from threads sharing the store's one client.
    seeded = {blob_id_of(f"blob {i}".encode()): f"blob {i}".encode() for i in range(1000)}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: s3.put_object(Bucket=bucket, Key=store.key_of(item[0]), Body=item[1]), seeded.items()))
        ids = set(seeded) | set(pool.map(store.put, (f"put {i}".encode() for i in range(20))))
    assert len(ids) == 1020
    elsewhere = open_blob_store(f"s3://{bucket}/other")
    foreign = elsewhere.put(b"somewhere else")
    for junk in ("blobs/README", "blobs/ab/not-hex", f"blobs/{'a' * 64}", f"blobs/abc/{'a' * 61}", "blobsx/ab/" + "c" * 62):
        s3.put_object(Bucket=bucket, Key=junk, Body=b"junk")
    assert set(store.iter_ids()) == ids
    assert set(elsewhere.iter_ids()) == {foreign}
    assert not store.exists(foreign)
    whole = open_blob_store(f"s3://{bucket}")  # no prefix: objects at the bucket's root
    assert list(whole.iter_ids()) == []
    root_id = whole.put(b"at the root")
    assert s3.get_object(Bucket=bucket, Key=f"{root_id[:2]}/{root_id[2:]}")["Body"].read() == b"at the root"
    assert set(whole.iter_ids()) == {root_id}


def test_two_stores_like_two_hosts_see_each_others_blobs(bucket, s3_settings):
    host_a, host_b = open_blob_store(f"s3://{bucket}/shared"), open_blob_store(f"s3://{bucket}/shared")
    from_a = host_a.put(b"written on host a")
    from_b = host_b.put(b"written on host b")
    assert host_b.get(from_a) == b"written on host a"
    assert host_a.get(from_b) == b"written on host b"
    assert host_b.put(b"written on host a") == from_a  # already there: idempotent across hosts
    assert set(host_a.iter_ids()) == set(host_b.iter_ids()) == {from_a, from_b}
    host_a.delete(from_b)
    with pytest.raises(BlobMissing, match=from_b):
        host_b.get(from_b)
    assert host_a._client_obj is not host_b._client_obj  # one client per store


def test_a_bucket_that_does_not_exist_is_a_clear_error(s3_settings, moto_endpoint):
    store = open_blob_store("s3://no-such-bucket-s2/blobs")
    blob_id = blob_id_of(b"data")
    expected = f"bucket 'no-such-bucket-s2' does not exist at {moto_endpoint}"
    for op in (
        lambda: store.put(b"data"),
        lambda: store.exists(blob_id),
        lambda: store.get(blob_id),
        lambda: store.delete(blob_id),
        lambda: list(store.iter_ids()),
    ):
        with pytest.raises(BlobStoreError, match=expected):
            op()
    with pytest.raises(BlobStoreError):  # not "corrupt" nor "missing": the store itself is unusable
        store.verify(blob_id)


def test_an_unreachable_endpoint_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("S2_S3_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    for name, value in {"S2_S3_REGION": REGION, "S2_S3_ACCESS_KEY_ID": KEY_ID, "S2_S3_SECRET_ACCESS_KEY": SECRET}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        store = open_blob_store("s3://some-bucket/blobs")
        with pytest.raises(BlobStoreError, match="cannot reach http://127.0.0.1:.*S2_S3_ENDPOINT_URL"):
            store.put(b"data")
    finally:
        get_settings.cache_clear()


def test_unset_credentials_fall_back_to_boto3s_chain(bucket, moto_endpoint, monkeypatch, tmp_path):
    for name in ("S2_S3_ACCESS_KEY_ID", "S2_S3_SECRET_ACCESS_KEY", "S2_S3_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("S2_S3_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-the-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "also-from-the-environment")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    get_settings.cache_clear()
    try:
        store = open_blob_store(f"s3://{bucket}/blobs")
        blob_id = store.put(b"via the default chain")
        assert store.get(blob_id) == b"via the default chain"
        creds = store._client_obj._request_signer._credentials
        assert creds.access_key == "from-the-environment"
    finally:
        get_settings.cache_clear()


def test_a_forked_child_makes_its_own_client(store):
    parent_blob = store.put(b"before the fork")
    parent_client = store._client_obj
    assert parent_client is not None
    child_data = f"from child {uuid.uuid4()}".encode()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 3
        try:
            assert store.get(parent_blob) == b"before the fork"
            store.put(child_data)
            code = 0 if store._client_obj is not parent_client and store._client_pid == os.getpid() else 2
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store._client_obj is parent_client  # the parent keeps its own
    assert store.get(blob_id_of(child_data)) == child_data


# --- end to end through the real CLI --------------------------------------------------------


@pytest.fixture
def s3_cli(tmp_path, bucket, moto_endpoint) -> CLI:
    """The real s2 CLI on a private SQLite file, with its blobs in the moto bucket."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S2_", "AWS_"))}
    env.update(
        {
            "S2_HOME": str(tmp_path / "home"),
            "S2_DATABASE_URL": f"sqlite:///{tmp_path / 's2.db'}",
            "S2_AUTHOR": "tester@example.com",
            "S2_BLOB_URL": f"s3://{bucket}/team/blobs",
            "S2_S3_ENDPOINT_URL": moto_endpoint,
            "S2_S3_REGION": REGION,
            "S2_S3_ACCESS_KEY_ID": KEY_ID,
            "S2_S3_SECRET_ACCESS_KEY": SECRET,
            "S2_INLINE_MAX_BYTES": "0",  # these short texts go to the bucket as blobs, as images would
        }
    )
    return CLI(env, tmp_path)


def _bucket_keys(s3, bucket: str) -> set[str]:
    return {obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for obj in page.get("Contents", ())}


def test_cli_import_export_and_fsck_on_s3(s3_cli, s3, bucket, tmp_path):
    texts = {f"k{i}": ("ab"[i % 2], f"text {i} ✓") for i in range(6)}
    with open(tmp_path / "in.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["key", "label", "text"])
        writer.writerows([key, label, text] for key, (label, text) in texts.items())
    s3_cli.ok("dataset", "create", "docs", "--modality", "text", "--labels", "a,b")
    s3_cli.last_line("import", "docs", tmp_path / "in.csv")
    s3_cli.ok("export", "docs", "main", tmp_path / "out.jsonl", "--format", "jsonl")
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["key"]: (r["label"], r["text"]) for r in records} == texts

    # The inputs live in the bucket, under the URL's prefix, and nowhere on local disk.
    keys = _bucket_keys(s3, bucket)
    text_ids = {blob_id_of(text.encode()) for _, text in texts.values()}
    assert {f"team/blobs/{i[:2]}/{i[2:]}" for i in text_ids} <= keys
    assert all(k.startswith("team/blobs/") for k in keys)
    assert not (tmp_path / "home" / "blobs").exists()
    assert "checked" in s3_cli.ok("fsck")

    victim = blob_id_of(texts["k0"][1].encode())
    s3.put_object(Bucket=bucket, Key=f"team/blobs/{victim[:2]}/{victim[2:]}", Body=b"tampered")
    proc = s3_cli.run("fsck")
    assert proc.returncode == 1, proc.stderr
    assert f"corrupt: {victim}" in proc.stdout.splitlines()
    assert proc.stderr.strip() == "s2: error: store is damaged: 1 corrupt and 0 missing blob(s)"
    assert victim in s3_cli.fails("export", "docs", "main", tmp_path / "again.jsonl", "--format", "jsonl")

    gone = blob_id_of(texts["k1"][1].encode())
    s3.delete_object(Bucket=bucket, Key=f"team/blobs/{gone[:2]}/{gone[2:]}")
    report = json.loads(s3_cli.run("fsck", "--json").stdout)
    assert (report["corrupt"], report["missing"]) == ([victim], [gone])


def test_cli_with_a_missing_bucket_fails_in_one_line(s3_cli, tmp_path):
    s3_cli.env["S2_BLOB_URL"] = "s3://no-such-bucket-s2/blobs"
    (tmp_path / "in.csv").write_text("key,label,text\nk0,a,hello\n", encoding="utf-8")
    s3_cli.ok("dataset", "create", "docs", "--modality", "text", "--labels", "a,b")
    line = s3_cli.fails("import", "docs", tmp_path / "in.csv")
    assert line.startswith("s2: error: blob store s3://no-such-bucket-s2/blobs: bucket 'no-such-bucket-s2' does not exist")
