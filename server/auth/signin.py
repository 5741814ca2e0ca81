"""Browser sign-in: passwords (argon2id), throttled failures, and session cookies with their CSRF token.

A session cookie holds a random secret; the database keeps only its sha256, like API tokens.
The CSRF token of a session is an HMAC of its secret: the page that the session loads carries
it, a script on another site can neither read the cookie nor compute it, and nothing more is
stored. Failed sign-ins in a row make the next attempt wait (S2_LOGIN_BLOCK_S, 1 s, after the
third, doubling with each more, at most 15 minutes), per user, in the database, so every server
process sees the same count.
"""

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.auth.models import User, WebSession
from server.auth.schemas import Principal
from server.datasets.models import utcnow
from server.errors import InvalidInput, TooManyAttempts, Unauthorized

SESSION_PREFIX = "s2s_"
MIN_PASSWORD, MAX_PASSWORD = 8, 1024  # the upper bound keeps hashing (and a hostile body) cheap
FREE_FAILURES, MAX_BLOCK_S = 3, 15 * 60


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id with the library's RFC 9106 defaults


def check_password(password: str) -> None:
    """InvalidInput unless password is an acceptable new password."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password too short: {len(password)} characters, at least {MIN_PASSWORD} needed")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"password too long: {len(password)} characters, at most {MAX_PASSWORD}")
    if not password.strip():
        raise InvalidInput("password is only spaces")


def set_password(db: Session, *, name: str, password: str | None) -> None:
    """Give user name a new password (None: remove it, so only API tokens work); their browser sessions end."""
    from server.auth.service import get_user

    user = get_user(db, name)
    if password is not None:
        check_password(password)
    user.password_hash = _hasher().hash(password) if password is not None else None
    user.failed_logins, user.blocked_until = 0, None
    db.execute(delete(WebSession).where(WebSession.user_id == user.id))
    db.flush()


def verifies(db: Session, name: str, password: str | None) -> str:
    """Whether password is user name's: "matches", "differs", or "no-password" (they have none yet)."""
    from server.auth.service import get_user

    stored = get_user(db, name).password_hash
    if stored is None:
        return "no-password"
    return "matches" if password is not None and _verify(stored, password) else "differs"


def _aware(at: datetime) -> datetime:
    from datetime import UTC

    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite hands back naive UTC


def _block_seconds(failures: int, first: float) -> float:
    return 0 if failures < FREE_FAILURES else min(MAX_BLOCK_S, first * 2 ** (failures - FREE_FAILURES))


def _verify(stored: str | None, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        # Unknown users and users without a password cost the same hash, so timing tells nothing.
        return _hasher().verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_hex(16))


def sign_in(db: Session, *, name: str, password: str, hours: float, first_block_s: float = 1.0) -> tuple[str, Principal]:
    """A new session's cookie secret and who it is, or Unauthorized (wrong name or password) or TooManyAttempts.

    The failed attempt is counted in db: the caller commits the transaction even when this raises.
    """
    now = utcnow()
    user = db.scalar(select(User).where(User.name == name).with_for_update()) if name else None
    if user is not None and user.blocked_until is not None and _aware(user.blocked_until) > now:
        wait = max(1, int((_aware(user.blocked_until) - now).total_seconds() + 0.999))
        raise TooManyAttempts(f"too many failed sign-ins for '{name}': try again in {wait} s", extra={"retry_after": wait})
    if len(password) > MAX_PASSWORD or not _verify(user.password_hash if user else None, password[:MAX_PASSWORD]):
        if user is not None:
            user.failed_logins += 1
            block = _block_seconds(user.failed_logins, first_block_s)
            user.blocked_until = now + timedelta(seconds=block) if block else None
            db.flush()
        raise Unauthorized("wrong user name or password")
    if user.disabled:
        raise Unauthorized(f"user '{name}' is disabled; ask an admin")
    user.failed_logins, user.blocked_until = 0, None
    secret = SESSION_PREFIX + secrets.token_urlsafe(32)
    db.add(WebSession(digest=_digest(secret), user_id=user.id, created_at=now, expires_at=now + timedelta(hours=hours)))
    db.execute(delete(WebSession).where(WebSession.user_id == user.id, WebSession.expires_at < now))  # tidy this user's old ones
    db.flush()
    from server.auth.service import principal_of_user

    return secret, principal_of_user(db, user)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def session_principal(db: Session, secret: str) -> Principal:
    """Who a session cookie stands for, or Unauthorized (unknown, signed out or expired)."""
    row = db.execute(
        select(User, WebSession.expires_at).join(WebSession, WebSession.user_id == User.id).where(WebSession.digest == _digest(secret))
    ).first()
    if row is None:
        raise Unauthorized("you are signed out (or your session was ended): sign in again")
    user, expires_at = row
    if _aware(expires_at) <= utcnow():
        raise Unauthorized("your session expired: sign in again")
    if user.disabled:
        raise Unauthorized(f"user '{user.name}' is disabled; ask an admin")
    from server.auth.service import principal_of_user

    return principal_of_user(db, user)


def sign_out(db: Session, secret: str) -> None:
    """End the session the cookie names (nothing if it is already gone)."""
    db.execute(delete(WebSession).where(WebSession.digest == _digest(secret)))


def csrf_token(secret: str) -> str:
    """The CSRF token of the session whose cookie holds secret."""
    return hmac.new(secret.encode(), b"s2 csrf", hashlib.sha256).hexdigest()[:40]


def csrf_matches(secret: str, sent: str | None) -> bool:
    """Whether sent is the session's CSRF token (constant-time)."""
    return bool(sent) and hmac.compare_digest(csrf_token(secret), sent)
