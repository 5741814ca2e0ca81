"""Users, API tokens, dataset assignments, and the audit trail of every write."""

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.auth.models import ApiToken, AuditEvent, DatasetMember, User
from server.auth.schemas import ROLES, AuditRead, Principal, TokenIssued, TokenRead, UserRead
from server.datasets.datasets import NAME, check_name, get_dataset
from server.datasets.models import Dataset, utcnow
from server.errors import AlreadyExists, InvalidInput, NotFound, Unauthorized

TOKEN_PREFIX = "s2_"


def digest_of(token: str) -> str:
    """What is stored of a token: its sha256 (tokens are 256 random bits, so no slow hash is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _user_reads(db: Session, users: list[User]) -> list[UserRead]:
    """The public view of users, their assigned datasets read in one query."""
    assigned: dict[int, list[str]] = {u.id: [] for u in users}
    if users:
        rows = db.execute(
            select(DatasetMember.user_id, Dataset.name)
            .join(Dataset, DatasetMember.dataset_id == Dataset.id)
            .where(DatasetMember.user_id.in_(assigned))
            .order_by(Dataset.name)
        )
        for user_id, name in rows:
            assigned[user_id].append(name)
    return [
        UserRead(
            name=u.name,
            role=u.role,
            disabled=u.disabled,
            datasets=assigned[u.id],
            created_at=u.created_at,
            has_password=u.password_hash is not None,
        )
        for u in users
    ]


def _user_read(db: Session, user: User) -> UserRead:
    return _user_reads(db, [user])[0]


def _token_read(token: ApiToken, user: str) -> TokenRead:
    return TokenRead(
        id=token.id, user=user, prefix=token.prefix, label=token.label, created_at=token.created_at, revoked_at=token.revoked_at
    )


def get_user(db: Session, name: str) -> User:
    """The user called name, or NotFound."""
    user = db.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user named '{name}' (add one with: s2 user add {name} --role labeler)")
    return user


def create_user(db: Session, *, name: str, role: str) -> UserRead:
    """A new user with a role; issue them a token with issue_token."""
    check_name("user", name, NAME)
    if role not in ROLES:
        raise InvalidInput(f"invalid role {role!r}: choose one of {', '.join(ROLES)}")
    if db.scalar(select(User.id).where(User.name == name)) is not None:
        raise AlreadyExists(f"user '{name}' already exists")
    user = User(name=name, role=role, disabled=False)
    db.add(user)
    db.flush()
    return _user_read(db, user)


def list_users(db: Session, *, after: str | None = None, limit: int = 100) -> list[UserRead]:
    """Users by name, after the cursor."""
    query = select(User).order_by(User.name).limit(limit)
    if after is not None:
        query = query.where(User.name > after)
    return _user_reads(db, list(db.scalars(query)))


def user_read(db: Session, name: str) -> UserRead:
    """One user's public view."""
    return _user_read(db, get_user(db, name))


def set_role(db: Session, *, name: str, role: str | None = None, disabled: bool | None = None) -> UserRead:
    """Change a user's role or disable them (a disabled user's tokens stop working)."""
    user = get_user(db, name)
    if role is not None:
        if role not in ROLES:
            raise InvalidInput(f"invalid role {role!r}: choose one of {', '.join(ROLES)}")
        user.role = role
    if disabled is not None:
        user.disabled = disabled
    db.flush()
    return _user_read(db, user)


def issue_token(db: Session, *, user: str, label: str | None = None) -> TokenIssued:
    """A new API token for user; the secret is returned this once and only its hash is kept."""
    owner = get_user(db, user)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=owner.id, digest=digest_of(secret), prefix=secret[:10], label=label)
    db.add(token)
    db.flush()
    return TokenIssued(**_token_read(token, owner.name).model_dump(), token=secret)


def list_tokens(db: Session, *, user: str, after: int | None = None, limit: int | None = None) -> list[TokenRead]:
    """A user's tokens, revoked ones included, oldest first (ids after the cursor, at most limit)."""
    owner = get_user(db, user)
    query = select(ApiToken).where(ApiToken.user_id == owner.id).order_by(ApiToken.id)
    if after is not None:
        query = query.where(ApiToken.id > after)
    if limit is not None:
        query = query.limit(limit)
    tokens = db.scalars(query)
    return [_token_read(t, owner.name) for t in tokens]


def revoke_token(db: Session, *, token_id: int, by: Principal) -> TokenRead:
    """Revoke a token: its owner or an admin may; revoking twice is harmless."""
    token = db.get(ApiToken, token_id)
    owner = db.get(User, token.user_id) if token is not None else None
    if token is None or (by.role != "admin" and owner.name != by.name):
        raise NotFound(f"no token {token_id} of yours (list them with: s2 user tokens)")
    token.revoked_at = token.revoked_at or utcnow()
    db.flush()
    return _token_read(token, owner.name)


def authenticate(db: Session, token: str | None) -> Principal:
    """The principal a bearer token stands for, or Unauthorized."""
    if not token:
        raise Unauthorized("no API token: send 'Authorization: Bearer TOKEN' (make one with: s2 user token NAME)")
    row = db.execute(
        select(User, ApiToken.revoked_at).join(ApiToken, ApiToken.user_id == User.id).where(ApiToken.digest == digest_of(token))
    ).first()
    if row is None:
        raise Unauthorized("unknown API token: check it, or issue a new one with: s2 user token NAME")
    user, revoked_at = row
    if revoked_at is not None:
        raise Unauthorized(f"API token revoked at {revoked_at:%Y-%m-%d %H:%M} UTC: issue a new one with: s2 user token {user.name}")
    if user.disabled:
        raise Unauthorized(f"user '{user.name}' is disabled; ask an admin")
    return principal_of_user(db, user)


def principal_of_user(db: Session, user: User) -> Principal:
    """What a request may do as user: their role and (for labelers) their assigned datasets."""
    datasets = frozenset()
    if user.role == "labeler":
        datasets = frozenset(
            db.scalars(
                select(Dataset.name).join(DatasetMember, DatasetMember.dataset_id == Dataset.id).where(DatasetMember.user_id == user.id)
            )
        )
    return Principal(name=user.name, role=user.role, datasets=datasets)


def assign(db: Session, *, user: str, dataset: str, assigned: bool = True) -> UserRead:
    """Give (or take away) a user's access to a dataset (it matters for labelers)."""
    owner, ds = get_user(db, user), get_dataset(db, dataset)
    member = db.scalar(select(DatasetMember).where(DatasetMember.user_id == owner.id, DatasetMember.dataset_id == ds.id))
    if assigned and member is None:
        db.add(DatasetMember(user_id=owner.id, dataset_id=ds.id))
    elif not assigned and member is not None:
        db.delete(member)
    db.flush()
    return _user_read(db, owner)


def ensure_admin(db: Session, name: str = "admin") -> TokenIssued | None:
    """On a store with no admin yet, create one and return their first token (else None)."""
    if db.scalar(select(User.id).where(User.role == "admin", User.disabled.is_(False)).limit(1)) is not None:
        return None
    if db.scalar(select(User.id).where(User.name == name)) is None:
        create_user(db, name=name, role="admin")
    else:
        set_role(db, name=name, role="admin", disabled=False)
    return issue_token(db, user=name, label="first admin token")


def record(db: Session, actor: Principal | str, action: str, target: str, detail: dict | None = None) -> None:
    """Write one audit event in the caller's transaction: it lands with the write or not at all."""
    name = actor.name if isinstance(actor, Principal) else actor
    db.add(AuditEvent(actor=name, action=action, target=target, detail=detail))


def list_audit(db: Session, *, before: int | None = None, limit: int = 100, actor: str | None = None) -> list[AuditRead]:
    """Recorded writes, newest first, before the cursor id."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    return [AuditRead(id=e.id, at=e.at, actor=e.actor, action=e.action, target=e.target, detail=e.detail) for e in db.scalars(query)]
