"""Users, API tokens, dataset assignments, the audit trail."""

from fastapi import APIRouter, Query, status
from pydantic import BaseModel

from server.api import problems
from server.api.deps import CurrentUser, read, write
from server.api.pagination import Cursor, Limit, Page, cursor_int, cursor_str, page_from
from server.api.routing import OffLoopRoute
from server.api.schemas import PasswordSet, TokenCreate, UserCreate, UserUpdate
from server.auth import service
from server.auth.policy import require_admin
from server.auth.schemas import AuditRead, TokenIssued, TokenRead, UserRead
from server.errors import Forbidden

router = APIRouter(tags=["users"], route_class=OffLoopRoute)


class UserCreated(BaseModel):
    """A new user and their first token (shown this once)."""

    user: UserRead
    token: TokenIssued


def _self_or_admin(who, name: str, what: str) -> None:
    if who.role != "admin" and who.name != name:
        raise Forbidden(f"user '{who.name}' may not {what} of user '{name}': only their own, or as an admin")


@router.get("/me", summary="Who the token belongs to")
def me(who: CurrentUser) -> UserRead:
    return read(lambda db: service.user_read(db, who.name))


@router.get("/users", summary="List users (admin)")
def list_users(who: CurrentUser, cursor: Cursor = None, limit: Limit = 100) -> Page[UserRead]:
    require_admin(who, "list users")
    after = cursor_str(cursor)
    return page_from(read(lambda db: service.list_users(db, after=after, limit=limit + 1)), limit, lambda u: u.name)


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    summary="Add a user with a role; returns their first token once (admin)",
    responses=problems.CONFLICT,
)
def create_user(body: UserCreate, who: CurrentUser) -> UserCreated:
    require_admin(who, "add users")

    def work(db):
        service.create_user(db, name=body.name, role=body.role)
        for dataset in body.datasets:
            service.assign(db, user=body.name, dataset=dataset)
        token = service.issue_token(db, user=body.name, label="first token")
        return UserCreated(user=service.user_read(db, body.name), token=token)

    return write(who, "user.create", body.name, work, detail=lambda r: {"role": body.role, "datasets": body.datasets})


@router.get("/users/{name}", summary="One user (admin, or the user)")
def get_user(name: str, who: CurrentUser) -> UserRead:
    _self_or_admin(who, name, "see the details")
    return read(lambda db: service.user_read(db, name))


@router.patch("/users/{name}", summary="Change a user's role, or disable them (admin)")
def update_user(name: str, body: UserUpdate, who: CurrentUser) -> UserRead:
    require_admin(who, "change users")
    return write(
        who,
        "user.update",
        name,
        lambda db: service.set_role(db, name=name, role=body.role, disabled=body.disabled),
        detail=lambda r: body.model_dump(exclude_none=True),
    )


@router.put("/users/{name}/password", summary="Set or remove a user's password for browser sign-in (admin, or the user)")
def set_password(name: str, body: PasswordSet, who: CurrentUser) -> UserRead:
    from server.auth.signin import set_password

    _self_or_admin(who, name, "set the password")

    def work(db):
        set_password(db, name=name, password=body.password)
        return service.user_read(db, name)

    # The audit record says that it changed, never what to.
    return write(who, "user.password", name, work, detail=lambda r: {"removed": body.password is None})


@router.get("/users/{name}/tokens", summary="A user's tokens, without their secrets (admin, or the user)")
def list_tokens(name: str, who: CurrentUser, cursor: Cursor = None, limit: Limit = 100) -> Page[TokenRead]:
    _self_or_admin(who, name, "list the tokens")
    after = cursor_int(cursor) or 0
    return page_from(read(lambda db: service.list_tokens(db, user=name, after=after, limit=limit + 1)), limit, lambda t: t.id)


@router.post(
    "/users/{name}/tokens",
    status_code=status.HTTP_201_CREATED,
    summary="Issue a token; its secret is in this answer only (admin, or the user)",
)
def issue_token(name: str, body: TokenCreate, who: CurrentUser) -> TokenIssued:
    _self_or_admin(who, name, "issue tokens")
    return write(
        who, "token.issue", name, lambda db: service.issue_token(db, user=name, label=body.label), detail=lambda t: {"token_id": t.id}
    )


@router.delete("/tokens/{token_id}", summary="Revoke a token (its owner, or an admin)")
def revoke_token(token_id: int, who: CurrentUser) -> TokenRead:
    return write(who, "token.revoke", str(token_id), lambda db: service.revoke_token(db, token_id=token_id, by=who))


@router.put("/datasets/{name}/members/{user}", summary="Assign a user to a dataset (admin)")
def assign(name: str, user: str, who: CurrentUser) -> UserRead:
    require_admin(who, "assign datasets")
    return write(who, "member.add", f"{name}/{user}", lambda db: service.assign(db, user=user, dataset=name))


@router.delete("/datasets/{name}/members/{user}", summary="Unassign a user from a dataset (admin)")
def unassign(name: str, user: str, who: CurrentUser) -> UserRead:
    require_admin(who, "assign datasets")
    return write(who, "member.remove", f"{name}/{user}", lambda db: service.assign(db, user=user, dataset=name, assigned=False))


@router.get("/audit", summary="Every write and who made it, newest first (admin)")
def audit(who: CurrentUser, actor: str | None = Query(None), cursor: Cursor = None, limit: Limit = 100) -> Page[AuditRead]:
    require_admin(who, "read the audit trail")
    before = cursor_int(cursor)
    return page_from(read(lambda db: service.list_audit(db, before=before, limit=limit + 1, actor=actor)), limit, lambda e: e.id)
