"""`s2 user`: users, roles, API tokens and dataset assignments (local store, or a server as an admin)."""

import click

from server.cli.common import fail, print_json
from server.cli.main import cli
from server.client import backend

ROLE = click.Choice(["admin", "engineer", "labeler"])


@cli.group()
def user() -> None:
    """Manage users, roles (admin, engineer, labeler) and API tokens."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=ROLE, help="admin: everything; engineer: data, training, promotion; labeler: edits.")
@click.option("--dataset", "-d", "datasets", multiple=True, help="Assign a dataset (repeatable; labelers see only these).")
def user_add(name: str, role: str, datasets: tuple[str, ...]) -> None:
    """Add user NAME and print their first API token (last line; shown this once)."""
    issued = backend().add_user(name, role, list(datasets))
    click.echo(f"added {role} {name}; their token (shown once, keep it secret):", err=True)
    click.echo(issued.token)


@user.command("token")
@click.argument("name")
@click.option("--label", help="What the token is for, e.g. laptop or ci.")
def user_token(name: str, label: str | None) -> None:
    """Issue another API token for NAME (last line; shown this once)."""
    issued = backend().issue_token(name, label)
    click.echo(f"token {issued.id} for {name} (shown once; revoke with: s2 user revoke {issued.id}):", err=True)
    click.echo(issued.token)


@user.command("revoke")
@click.argument("token_id", type=int)
def user_revoke(token_id: int) -> None:
    """Revoke API token TOKEN_ID: it stops working at once."""
    done = backend().revoke_token(token_id)
    click.echo(f"revoked token {done.id} ({done.prefix}...) of {done.user}")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def user_list(as_json: bool) -> None:
    """List users, their roles and assigned datasets."""
    found = backend().list_users()
    if as_json:
        print_json([u.model_dump(mode="json") for u in found])
        return
    for u in found:
        click.echo(f"{u.name}\t{u.role}{'  (disabled)' if u.disabled else ''}\t{','.join(u.datasets)}")


@user.command("tokens")
@click.argument("name")
def user_tokens(name: str) -> None:
    """List NAME's tokens (ids and first characters; secrets are never stored)."""
    for t in backend().list_tokens(name):
        state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
        click.echo(f"{t.id}\t{t.prefix}...\t{state}\t{t.label or ''}")


@user.command("assign")
@click.argument("name")
@click.argument("dataset")
@click.option("--remove", is_flag=True, help="Unassign instead.")
def user_assign(name: str, dataset: str, remove: bool) -> None:
    """Assign user NAME to DATASET (labelers read and edit only assigned datasets)."""
    done = backend().assign(name, dataset, remove)
    click.echo(f"{name} is assigned to: {', '.join(done.datasets) or 'no dataset'}")


@user.command("passwd")
@click.argument("name")
@click.option("--remove", is_flag=True, help="Remove the password: NAME then signs in with API tokens only.")
def user_passwd(name: str, remove: bool) -> None:
    """Set NAME's password for signing in in a browser; their open browser sessions end.

    The password is asked for twice at a terminal; otherwise it is read from standard input
    (its first line), e.g. `printf '%s\\n' "$PW" | s2 user passwd ana`. It is never an argument,
    so it stays out of shell history and process lists.
    """
    import sys

    password = None
    if not remove:
        if sys.stdin.isatty():
            password = click.prompt("new password", hide_input=True, confirmation_prompt="again", err=True)
        else:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                fail("no password on standard input: pipe one line holding it, or run at a terminal to be asked")
    backend().set_password(name, password)
    click.echo(f"password of {name} {'removed' if remove else 'set'}; their browser sessions were ended", err=True)


@user.command("set")
@click.argument("name")
@click.option("--role", type=ROLE, help="New role.")
@click.option("--disable/--enable", default=None, help="A disabled user's tokens stop working.")
def user_set(name: str, role: str | None, disable: bool | None) -> None:
    """Change NAME's role, or disable or enable them."""
    done = backend().set_user(name, role, disable)
    click.echo(f"{done.name}: {done.role}{' (disabled)' if done.disabled else ''}")


@cli.command()
@click.option("--actor", help="Only the writes of this user (a CLI user is S2_AUTHOR, e.g. ana@laptop).")
@click.option("-n", "--limit", default=50, show_default=True, help="How many writes to show, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def audit(actor: str | None, limit: int, as_json: bool) -> None:
    """List recorded writes (who did what to which target), newest first; admins only over a server."""
    found = backend().list_audit(actor, limit)
    if as_json:
        print_json([e.model_dump(mode="json") for e in found])
        return
    for e in found:
        click.echo(f"{e.at:%Y-%m-%d %H:%M:%S}\t{e.actor}\t{e.action}\t{e.target}")
