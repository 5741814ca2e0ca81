"""Blob store backend on an S3-compatible bucket (AWS S3, MinIO, Ceph, moto): objects at PREFIX/ab/cdef...

Several hosts (API servers, training workers) share one bucket; each opens its own store.
The boto3 client is made on first use in each process, never at import or construction,
so a store built before a fork (Celery prefork workers) gets a fresh client in the child.
"""

import os
from collections.abc import Iterator

from server.blobs.base import BLOB_ID, BlobMissing, BlobStore, check_blob_id
from server.errors import S2Error

# Error codes S3 uses for "no such object" (HEAD has no body, so it only says 404).
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
_HINTS = {
    "NoSuchBucket": "create the bucket, or fix the bucket name in S2_BLOB_URL",
    "AccessDenied": "check the credentials (S2_S3_ACCESS_KEY_ID / S2_S3_SECRET_ACCESS_KEY) and the bucket policy",
    "InvalidAccessKeyId": "check S2_S3_ACCESS_KEY_ID",
    "SignatureDoesNotMatch": "check S2_S3_SECRET_ACCESS_KEY",
    "403": "check the credentials (S2_S3_ACCESS_KEY_ID / S2_S3_SECRET_ACCESS_KEY) and the bucket policy",
}


class BlobStoreError(S2Error):
    """The blob store's server refused or could not serve a request (not a missing or corrupt blob)."""


class S3BlobStore(BlobStore):
    """Objects in one bucket under a key prefix, fanned out by the first two hex digits like the local store."""

    refresh_after_s = 600.0  # refreshing an object's age costs a copy request: only when it is older than this

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ):
        if not bucket:
            raise ValueError("an S3 blob store needs a bucket: s3://BUCKET/PREFIX")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.endpoint_url, self.region = endpoint_url or None, region or None
        self._access_key_id, self._secret_access_key = access_key_id or None, secret_access_key or None
        self._client_obj = None
        self._client_pid: int | None = None
        self._bucket_checked = False

    def __repr__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"S3BlobStore({self.url}{where})"

    # --- the client: one per store and process, made on first use ------------------------

    def _client(self):
        pid = os.getpid()
        client = self._client_obj
        if client is None or self._client_pid != pid:
            # A client made in a parent process shares its sockets with the child: never reuse it.
            # No lock (a lock held across a fork would deadlock the child): two threads racing
            # here each make a client and one is dropped, which is harmless. boto3 clients are
            # thread-safe once made.
            client = self._make_client()
            self._client_obj, self._client_pid = client, pid
        return client

    def _make_client(self):
        import boto3
        from botocore.config import Config

        # A private session: boto3's default session is not thread-safe to create clients from.
        # Unset credentials fall through to boto3's usual chain (env, ~/.aws, instance role).
        session = boto3.session.Session(
            aws_access_key_id=self._access_key_id, aws_secret_access_key=self._secret_access_key, region_name=self.region
        )
        config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=120)
        return session.client("s3", endpoint_url=self.endpoint_url, config=config)

    # --- keys and errors -----------------------------------------------------------------

    def key_of(self, blob_id: str) -> str:
        """The object key blob_id is stored under."""
        check_blob_id(blob_id)
        rel = f"{blob_id[:2]}/{blob_id[2:]}"
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _error(self, action: str, key: str | None, exc: Exception) -> BlobStoreError:
        """A one-line, actionable error for a failed S3 request."""
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

        where = f"s3://{self.bucket}/{key}" if key else self.url
        endpoint = self.endpoint_url or "the AWS default endpoint"
        if isinstance(exc, ClientError):
            code = self._code(exc) or "?"
            if code == "NoSuchBucket":
                return self._no_bucket()
            message = exc.response.get("Error", {}).get("Message")
            text = f"{code}: {message}" if message else (f"HTTP {code}" if code.isdigit() else code)
            hint = _HINTS.get(code)
            return BlobStoreError(f"blob store {self.url}: cannot {action} {where}: {text}" + (f" ({hint})" if hint else ""))
        if isinstance(exc, NoCredentialsError):
            return BlobStoreError(
                f"blob store {self.url}: no S3 credentials found (set S2_S3_ACCESS_KEY_ID and "
                "S2_S3_SECRET_ACCESS_KEY, or configure boto3's usual credential chain)"
            )
        if isinstance(exc, EndpointConnectionError):
            return BlobStoreError(
                f"blob store {self.url}: cannot reach {endpoint} to {action} {where} (check S2_S3_ENDPOINT_URL and that the server is up)"
            )
        return BlobStoreError(f"blob store {self.url}: cannot {action} {where}: {type(exc).__name__}: {exc}")

    def _no_bucket(self) -> BlobStoreError:
        return BlobStoreError(
            f"blob store {self.url}: bucket '{self.bucket}' does not exist at "
            f"{self.endpoint_url or 'the AWS default endpoint'} ({_HINTS['NoSuchBucket']})"
        )

    @staticmethod
    def _code(exc: Exception) -> str | None:
        from botocore.exceptions import ClientError

        if not isinstance(exc, ClientError):
            return None
        return str(exc.response.get("Error", {}).get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))

    def _check_bucket(self) -> None:
        """Once per store: a 404 on HEAD can mean a missing bucket, which must not read as 'blob absent'."""
        if self._bucket_checked:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client().head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if self._code(exc) in ("404", "NoSuchBucket", "NotFound"):
                raise self._no_bucket() from exc
            if self._code(exc) not in ("403", "AccessDenied"):  # no ListBucket right: cannot tell, trust the 404
                raise self._error("read", None, exc) from exc
        except BotoCoreError as exc:
            raise self._error("read", None, exc) from exc
        self._bucket_checked = True

    # --- the BlobStore interface -----------------------------------------------------------

    def _write(self, blob_id: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key_of(blob_id)
        try:  # a PUT is atomic in S3: readers see the whole object or none of it
            self._client().put_object(Bucket=self.bucket, Key=key, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise self._error("write", key, exc) from exc

    def _write_file(self, blob_id: str, path) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key_of(blob_id)
        try:  # multipart for large files, from disk: a checkpoint never sits whole in memory
            self._client().upload_file(str(path), self.bucket, key)
        except (BotoCoreError, ClientError) as exc:
            raise self._error("write", key, exc) from exc

    def _read(self, blob_id: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key_of(blob_id)
        try:
            response = self._client().get_object(Bucket=self.bucket, Key=key)
            with response["Body"] as body:
                return body.read()
        except ClientError as exc:
            if self._code(exc) in _MISSING_CODES:
                raise BlobMissing(f"blob {blob_id} is missing from {self.url}") from None
            raise self._error("read", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("read", key, exc) from exc

    def exists(self, blob_id: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key_of(blob_id)
        try:
            self._client().head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if self._code(exc) in _MISSING_CODES:
                self._check_bucket()
                return False
            raise self._error("check", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("check", key, exc) from exc
        return True

    def _keep(self, blob_id: str) -> bool:
        import time

        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key_of(blob_id)
        try:
            head = self._client().head_object(Bucket=self.bucket, Key=key)
            if time.time() - head["LastModified"].timestamp() > self.refresh_after_s:
                # Copied onto itself, the object gets a new LastModified: s2 gc sees it as fresh.
                self._client().copy_object(
                    Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key}, MetadataDirective="REPLACE"
                )
        except ClientError as exc:
            if self._code(exc) in _MISSING_CODES:
                self._check_bucket()
                return False
            raise self._error("check", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("check", key, exc) from exc
        return True

    def iter_entries(self) -> Iterator[tuple[str, float, int]]:
        from botocore.exceptions import BotoCoreError, ClientError

        start = f"{self.prefix}/" if self.prefix else ""
        paginator = self._client().get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
                for obj in page.get("Contents", ()):
                    rel = obj["Key"][len(start) :]
                    fan, _, rest = rel.partition("/")
                    if len(fan) == 2 and BLOB_ID.match(fan + rest):
                        yield fan + rest, obj["LastModified"].timestamp(), obj["Size"]
        except (BotoCoreError, ClientError) as exc:
            raise self._error("list", None, exc) from exc

    def iter_ids(self) -> Iterator[str]:
        for blob_id, _, _ in self.iter_entries():
            yield blob_id

    def delete_if_older(self, blob_id: str, before: float) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key_of(blob_id)
        try:
            head = self._client().head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if self._code(exc) in _MISSING_CODES:
                return False
            raise self._error("check", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("check", key, exc) from exc
        if head["LastModified"].timestamp() >= before:
            return False  # stored again (its age refreshed) since it was found unreferenced
        self.delete(blob_id)
        return True

    def delete(self, blob_id: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key_of(blob_id)
        try:  # S3 answers 204 for a key that is not there: deleting twice is fine
            self._client().delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise self._error("delete", key, exc) from exc
