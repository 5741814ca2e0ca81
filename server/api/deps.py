"""Request dependencies: the caller's identity, the blob store, and units of work with their audit record."""

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from server.auth.schemas import Principal
from server.db import run_in_transaction

T = TypeVar("T")


BEARER = HTTPBearer(auto_error=False, description="An API token: `s2 user token NAME` issues one")


CHECKED = "s2.principal"  # request scope key: the caller BodyLimitMiddleware authenticated before reading the body


SESSION_COOKIE = "s2_session"  # a signed-in browser (server.auth.signin); scripts send a bearer token instead
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def principal_of(token: str | None, *, session: bool = False) -> Principal:
    """The caller a bearer token (or a session cookie's secret) names, Unauthorized without one; from a short cache when it can."""
    from starlette.concurrency import run_in_threadpool

    from server.api import auth_cache
    from server.auth.service import authenticate
    from server.auth.signin import session_principal

    known = auth_cache.get(token)
    if known is not None:
        return known
    check = (lambda db: session_principal(db, token)) if session else (lambda db: authenticate(db, token))
    who = await run_in_threadpool(run_in_transaction, check)
    auth_cache.put(token, who)
    return who


async def caller_of(request: HTTPConnection) -> Principal:
    """Who sent a request: its bearer token, else its session cookie (whose writes must carry the CSRF token)."""
    credentials = await BEARER(request)
    if credentials is not None:
        return await principal_of(credentials.credentials)
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return await principal_of(None)
    if request.scope.get("method", "GET") not in SAFE_METHODS:
        from server.auth.signin import csrf_matches
        from server.errors import Forbidden

        if not csrf_matches(secret, request.headers.get(CSRF_HEADER)):
            raise Forbidden(f"a write signed in by cookie must carry the page's {CSRF_HEADER} header: reload the page and try again")
    return await principal_of(secret, session=True)


async def authenticate_request(request: HTTPConnection) -> Principal:
    """The caller of a request, from its headers alone (before its body is read); current_user then reuses it."""
    who = await caller_of(request)
    request.scope[CHECKED] = who
    return who


async def current_user(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> Principal:
    """The caller named by the bearer token or the session cookie (401 without either)."""
    checked = request.scope.get(CHECKED)
    if checked is not None:
        return checked  # checked before the body was read (server.api.limits): once per request
    return await caller_of(request)


CurrentUser = Annotated[Principal, Depends(current_user)]


def blob_store():
    """The configured blob store (one per process)."""
    from server.blobs import default_blob_store

    return default_blob_store()


def read(work: Callable[[Session], T]) -> T:
    """Run a read in its own read-only transaction (it never holds a writer up)."""
    from server.db import run_read

    return run_read(work)


def write(
    who: Principal, action: str, target: "str | Callable[[T], str]", work: Callable[[Session], T], detail: Callable[[T], dict] | None = None
) -> T:
    """Run a write and record who made it, in one transaction: both land or neither does.

    The transaction commits before the route returns, so what the API acknowledges is durable.
    """
    from server.auth.service import record

    def unit(db: Session) -> T:
        result = work(db)
        record(db, who, action, target(result) if callable(target) else target, detail(result) if detail else None)
        return result

    result = run_in_transaction(unit)
    if action.split(".")[0] in ("user", "token", "member"):
        from server.api import auth_cache

        auth_cache.clear()  # who may do what just changed: this process forgets at once, others within the TTL
    return result
