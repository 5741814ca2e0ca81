"""What the auth services return."""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

Role = Literal["admin", "engineer", "labeler"]
ROLES: tuple[str, ...] = ("admin", "engineer", "labeler")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user's name and role, and (for labelers) the datasets assigned to them."""

    name: str
    role: str
    datasets: frozenset[str] = frozenset()


class UserRead(BaseModel):
    """A user; tokens are never shown here."""

    name: str
    role: Role
    disabled: bool
    datasets: list[str]
    created_at: datetime
    has_password: bool = False  # may sign in in a browser


class TokenRead(BaseModel):
    """A token's public description (its secret is never stored)."""

    id: int
    user: str
    prefix: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


class TokenIssued(TokenRead):
    """A newly issued token: `token` is shown this once and cannot be recovered."""

    token: str


class AuditRead(BaseModel):
    """One recorded write."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict | None
