"""Request dependencies: the caller's identity, the blob store, and units of work with their audit record."""

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from server.auth.schemas import Principal
from server.db import run_in_transaction

T = TypeVar("T")


BEARER = HTTPBearer(auto_error=False, description="An API token: `s2 user token NAME` issues one")


async def current_user(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> Principal:
    """The caller named by the bearer token (401 without one); answered from a short cache when it can."""
    from starlette.concurrency import run_in_threadpool

    from server.api import auth_cache
    from server.auth.service import authenticate

    token = credentials.credentials if credentials else None
    known = auth_cache.get(token)
    if known is not None:
        return known
    who = await run_in_threadpool(run_in_transaction, lambda db: authenticate(db, token))
    auth_cache.put(token, who)
    return who


CurrentUser = Annotated[Principal, Depends(current_user)]


def blob_store():
    """The configured blob store (one per process)."""
    from server.blobs import default_blob_store

    return default_blob_store()


def read(work: Callable[[Session], T]) -> T:
    """Run a read in its own transaction."""
    return run_in_transaction(work)


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
