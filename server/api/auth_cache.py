"""Who a token stands for, remembered for a few seconds so most requests skip the lookup.

A write to users, tokens or assignments clears this process's cache at once; other server
processes notice within S2_AUTH_CACHE_S (default 2 s), the bound on how long a revoked
token can still be used. S2_AUTH_CACHE_S=0 turns the cache off.
"""

import hashlib
import threading
import time

from server.auth.schemas import Principal
from server.config import get_settings

_known: dict[str, tuple[float, Principal]] = {}
_lock = threading.Lock()
MAX_ENTRIES = 10_000


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()  # never keep the secret itself in memory longer than needed


def get(token: str | None) -> Principal | None:
    """The cached principal of token, if it is fresh."""
    if not token:
        return None
    entry = _known.get(_key(token))
    if entry is None or entry[0] < time.monotonic():
        return None
    return entry[1]


def put(token: str | None, who: Principal) -> None:
    """Remember who token stands for, for S2_AUTH_CACHE_S seconds."""
    ttl = get_settings().auth_cache_s
    if not token or ttl <= 0:
        return
    with _lock:
        if len(_known) >= MAX_ENTRIES:
            _known.clear()
        _known[_key(token)] = (time.monotonic() + ttl, who)


def clear() -> None:
    """Forget every cached token (after a change to users, tokens or assignments)."""
    with _lock:
        _known.clear()
