"""Signed, expiring media URLs: how Label Studio's browser loads an image from s2 with no API token in a URL.

The URL names the dataset, the input's blob id and an expiry; its signature is an HMAC-SHA256 of those with
a server-wide secret kept in the database (made on first use, so every server process signs alike).
"""

import hashlib
import hmac
import secrets
import time
from urllib.parse import quote

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from labeling.labelstudio.models import SigningKey
from server.errors import Forbidden

KEY_NAME = "media-urls"


def signing_secret(db: Session) -> bytes:
    """The server's media-signing secret (made once; a concurrent maker's secret wins)."""
    row = db.get(SigningKey, KEY_NAME)
    if row is None:
        try:
            with db.begin_nested():
                db.add(SigningKey(name=KEY_NAME, secret=secrets.token_hex(32)))
        except IntegrityError:
            pass
        row = db.get(SigningKey, KEY_NAME)
    return row.secret.encode()


def _signature(secret: bytes, dataset: str, blob_id: str, expires: int) -> str:
    return hmac.new(secret, f"{dataset}\n{blob_id}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_media_url(public_url: str, secret: bytes, dataset: str, blob_id: str, ttl_s: float, now: float | None = None) -> str:
    """The URL at which anyone holding it may read this input until it expires."""
    expires = int((now if now is not None else time.time()) + ttl_s)
    sig = _signature(secret, dataset, blob_id, expires)
    return f"{public_url.rstrip('/')}/api/v1/signed/{quote(dataset, safe='')}/media/{blob_id}?expires={expires}&signature={sig}"


def check_signed(secret: bytes, dataset: str, blob_id: str, expires: int, signature: str, now: float | None = None) -> None:
    """Refuse a media URL whose signature does not match, or that has expired."""
    if not hmac.compare_digest(_signature(secret, dataset, blob_id, expires).encode(), (signature or "").encode()):  # bytes: any text
        raise Forbidden(f"signature of this media URL does not match input '{blob_id}' of dataset '{dataset}'")
    if expires < (now if now is not None else time.time()):
        raise Forbidden(f"this media URL expired at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(expires))}: push the task again")
