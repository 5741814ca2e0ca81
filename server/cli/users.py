"""`s2 user`: users, roles, API tokens and dataset assignments (local store, or a server as an admin)."""

import click

from server.cli.common import emit, fail, listing, print_json, write_options
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
@write_options("the token", json_help="Print JSON: the token's id, prefix, user and the token itself.")
def user_add(name: str, role: str, datasets: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """Add user NAME and print their first API token (on stdout; shown this once)."""
    issued = backend().add_user(name, role, list(datasets))
    emit(
        f"added {role} {name}; their token (shown once, keep it secret):",
        issued.token,
        issued.model_dump(mode="json"),
        as_json=as_json,
        quiet=quiet,
    )


@user.command("token")
@click.argument("name")
@click.option("--label", help="What the token is for, e.g. laptop or ci.")
@write_options("the token", json_help="Print JSON: the token's id, prefix, user and the token itself.")
def user_token(name: str, label: str | None, as_json: bool, quiet: bool) -> None:
    """Issue another API token for NAME (on stdout; shown this once)."""
    issued = backend().issue_token(name, label)
    summary = f"token {issued.id} for {name} (shown once; revoke with: s2 user revoke {issued.id}):"
    emit(summary, issued.token, issued.model_dump(mode="json"), as_json=as_json, quiet=quiet)


@user.command("revoke")
@click.argument("token_id", type=int)
@write_options("the token's id")
def user_revoke(token_id: int, as_json: bool, quiet: bool) -> None:
    """Revoke API token TOKEN_ID (the ID of `s2 user tokens NAME`): it stops working at once."""
    done = backend().revoke_token(token_id)
    emit(f"revoked token {done.id} ({done.prefix}...) of {done.user}", done.id, done.model_dump(mode="json"), as_json=as_json, quiet=quiet)


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def user_list(as_json: bool) -> None:
    """List users, their roles and assigned datasets."""
    found = backend().list_users()
    if as_json:
        print_json([u.model_dump(mode="json") for u in found])
        return
    listing(["USER", "ROLE", "DATASETS"], [[u.name, u.role + ("  (disabled)" if u.disabled else ""), ",".join(u.datasets)] for u in found])


@user.command("tokens")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def user_tokens(name: str, as_json: bool) -> None:
    """List NAME's tokens (ids and first characters; secrets are never stored)."""
    found = backend().list_tokens(name)
    if as_json:
        print_json([t.model_dump(mode="json") for t in found])
        return
    rows = [[t.id, f"{t.prefix}...", f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active", t.label or ""] for t in found]
    listing(["ID", "PREFIX", "STATE", "LABEL"], rows)


@user.command("assign")
@click.argument("name")
@click.argument("dataset")
@click.option("--remove", is_flag=True, help="Unassign instead.")
@write_options(None)
def user_assign(name: str, dataset: str, remove: bool, as_json: bool, quiet: bool) -> None:
    """Assign user NAME to DATASET (labelers read and edit only assigned datasets)."""
    done = backend().assign(name, dataset, remove)
    emit(
        f"{name} is assigned to: {', '.join(done.datasets) or 'no dataset'}",
        None,
        done.model_dump(mode="json"),
        as_json=as_json,
        quiet=quiet,
    )


@user.command("passwd")
@click.argument("name")
@click.option("--remove", is_flag=True, help="Remove the password: NAME then signs in with API tokens only.")
@write_options(None)
def user_passwd(name: str, remove: bool, as_json: bool, quiet: bool) -> None:
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
    done = backend().set_password(name, password)
    summary = f"password of {name} {'removed' if remove else 'set'}; their browser sessions were ended"
    emit(summary, None, done.model_dump(mode="json"), as_json=as_json, quiet=quiet)


@user.command("set")
@click.argument("name")
@click.option("--role", type=ROLE, help="New role.")
@click.option("--disable/--enable", default=None, help="A disabled user's tokens stop working.")
@write_options(None)
def user_set(name: str, role: str | None, disable: bool | None, as_json: bool, quiet: bool) -> None:
    """Change NAME's role, or disable or enable them."""
    done = backend().set_user(name, role, disable)
    emit(
        f"{done.name}: {done.role}{' (disabled)' if done.disabled else ''}",
        None,
        done.model_dump(mode="json"),
        as_json=as_json,
        quiet=quiet,
    )


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
    listing(["DATE (UTC)", "ACTOR", "ACTION", "TARGET"], [[f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.target] for e in found])
