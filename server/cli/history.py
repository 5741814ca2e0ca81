"""`s2 log`, `diff`, `blame`, `show`: reading history."""

import click

from server.cli.common import fail, listing, print_json
from server.cli.main import cli
from server.client import backend


@cli.command()
@click.argument("name")
@click.argument("rev", metavar="[REV]", required=False)
@click.option("--branch", "-b", "--rev", "rev_option", metavar="REV", help="Where to start, as REV (default: the default branch).")
@click.option("-n", "--limit", type=click.IntRange(min=1), help="Show at most this many commits.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def log(name: str, rev: str | None, rev_option: str | None, limit: int | None, as_json: bool) -> None:
    """Show the commits reachable from REV (a branch, tag, commit, HEAD, REV~N, REV^N; default: the default branch), newest first."""
    if rev is not None and rev_option is not None and rev != rev_option:
        fail(f"give the revision once: REV '{rev}' or --branch '{rev_option}', not both")
    commits = backend().log(name, rev or rev_option, limit)
    if as_json:
        print_json([c.model_dump(mode="json") for c in commits])
        return
    rows = []
    for c in commits:
        merge = f" (merge of {', '.join(p[:12] for p in c.parents)})" if len(c.parents) > 1 else ""
        rows.append([c.id[:12], f"{c.created_at:%Y-%m-%d %H:%M:%S}", c.author, c.changes, c.rows, " ".join(c.message.split()) + merge])
    listing(["COMMIT", "DATE (UTC)", "AUTHOR", "CHANGES", "EXAMPLES", "MESSAGE"], rows)


@cli.command()
@click.argument("name")
@click.argument("rev_a")
@click.argument("rev_b")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: added, removed, relabeled, modified.")
def diff(name: str, rev_a: str, rev_b: str, as_json: bool) -> None:
    """Show what changes from REV_A to REV_B, by key."""
    result = backend().diff(name, rev_a, rev_b)
    if as_json:
        print_json(result)
        return
    for key in result["added"]:
        click.echo(f"+ {key}")
    for key in result["removed"]:
        click.echo(f"- {key}")
    for r in result["relabeled"]:
        click.echo(f"~ {r['key']}: {r['from']} -> {r['to']}")
    for key in result["modified"]:
        click.echo(f"M {key}")
    click.echo(
        f"{len(result['added'])} added, {len(result['removed'])} removed, {len(result['relabeled'])} relabeled, "
        f"{len(result['modified'])} modified",
        err=True,
    )


@cli.command()
@click.argument("name")
@click.argument("key")
@click.option("--rev", metavar="REV", help="Whose history to search (default: the default branch).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def blame(name: str, key: str, rev: str | None, as_json: bool) -> None:
    """List every commit that changed example KEY, oldest first."""
    entries = backend().blame(name, key, rev)
    if as_json:
        print_json([e.model_dump(mode="json") for e in entries])
        return
    rows = []
    for e in entries:
        what = "removed" if e.removed else f"label={e.label} input={e.input[:12]}"
        rows.append([e.commit[:12], f"{e.created_at:%Y-%m-%d %H:%M:%S}", e.author, what, " ".join(e.message.split())])
    listing(["COMMIT", "DATE (UTC)", "AUTHOR", "CHANGE", "MESSAGE"], rows)


@cli.command()
@click.argument("name")
@click.argument("key")
@click.option("--rev", metavar="REV", help="Revision (default: the default branch).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (always: accepted for scripts that pass it to every command).")
def show(name: str, key: str, rev: str | None, as_json: bool) -> None:
    """Print example KEY as JSON: label, split, input blob, metadata."""
    print_json(backend().show(name, key, rev))
