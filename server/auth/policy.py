"""Who may do what: the role rules of the API in one place."""

from server.auth.schemas import Principal
from server.errors import Forbidden

ENGINEERING = ("admin", "engineer")


def require_engineer(who: Principal, what: str) -> None:
    """Forbidden unless who is an engineer or admin."""
    if who.role not in ENGINEERING:
        raise Forbidden(f"user '{who.name}' is a {who.role} and may not {what}: that needs an engineer or admin")


def require_admin(who: Principal, what: str) -> None:
    """Forbidden unless who is an admin."""
    if who.role != "admin":
        raise Forbidden(f"user '{who.name}' is a {who.role} and may not {what}: that needs an admin")


def require_reader(who: Principal, dataset: str) -> None:
    """Engineers and admins read every dataset; labelers only those assigned to them."""
    if who.role == "labeler" and dataset not in who.datasets:
        raise Forbidden(f"labeler '{who.name}' is not assigned to dataset '{dataset}'; ask an admin to assign them")


def require_branch_editor(who: Principal, dataset: str, branch: str, protected: bool) -> None:
    """Staging and committing label edits: readers of the dataset, on branches that are not protected.

    A protected branch (the default branch, or one marked protected) changes only by an
    engineer's merge (or import), so reviewed work is all that reaches it.
    """
    require_reader(who, dataset)
    if protected:
        raise Forbidden(
            f"branch '{branch}' of dataset '{dataset}' is protected: edit on another branch and have an "
            f"engineer merge it (s2 branch {dataset} my-edits; s2 merge {dataset} my-edits --into {branch})"
        )


def editable_branch(db, who: Principal, dataset: str, branch: str | None) -> str:
    """The branch's name (default: the dataset's default branch) once who may edit it; call it inside the write's
    transaction, so a branch protected in the meantime is refused rather than written."""
    from server.datasets.refs import branch_of

    name, protected = branch_of(db, dataset, branch)
    require_branch_editor(who, dataset, name, protected)
    return name
