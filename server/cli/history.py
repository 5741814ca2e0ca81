"""`s2 log`, `diff`, `blame`, `show`: reading history."""
import click

from server.cli.common import blobs, print_json
from server.cli.main import cli
from server.db import run_in_transaction


@cli.command()
@click.argument("name")
@click.option("--branch", "-b", "rev", metavar="REV", help="Where to start (default: the default branch).")
@click.option("-n", "--limit", type=click.IntRange(min=1), help="Show at most this many commits.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def log(name: str, rev: str | None, limit: int | None, as_json: bool) -> None:
    """Show the commits reachable from a branch, newest first."""
    from server.datasets.service import log as history

    commits = run_in_transaction(lambda db: history(db, dataset=name, rev=rev, limit=limit))
    if as_json:
        print_json([c.model_dump(mode="json") for c in commits])
        return
    for c in commits:
        merge = f" (merge of {', '.join(p[:12] for p in c.parents)})" if len(c.parents) > 1 else ""
        click.echo(f"{c.id[:12]}  {c.created_at:%Y-%m-%d %H:%M:%S}  {c.author}  {c.changes} changes, {c.rows} examples{merge}\n    {c.message}")


@cli.command()
@click.argument("name")
@click.argument("rev_a")
@click.argument("rev_b")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: added, removed, relabeled, modified.")
def diff(name: str, rev_a: str, rev_b: str, as_json: bool) -> None:
    """Show what changes from REV_A to REV_B, by key."""
    from server.datasets.diff import diff as compute

    store = blobs()
    result = run_in_transaction(lambda db: compute(db, store, dataset=name, rev_a=rev_a, rev_b=rev_b))
    if as_json:
        print_json(result.as_json())
        return
    for key in result.added:
        click.echo(f"+ {key}")
    for key in result.removed:
        click.echo(f"- {key}")
    for r in result.relabeled:
        click.echo(f"~ {r.key}: {r.from_} -> {r.to}")
    for key in result.modified:
        click.echo(f"M {key}")
    click.echo(f"{len(result.added)} added, {len(result.removed)} removed, {len(result.relabeled)} relabeled, {len(result.modified)} modified", err=True)


@cli.command()
@click.argument("name")
@click.argument("key")
@click.option("--rev", metavar="REV", help="Whose history to search (default: the default branch).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def blame(name: str, key: str, rev: str | None, as_json: bool) -> None:
    """List every commit that changed example KEY, oldest first."""
    from server.datasets.service import blame as who_changed

    entries = run_in_transaction(lambda db: who_changed(db, dataset=name, key=key, rev=rev))
    if as_json:
        print_json([e.model_dump(mode="json") for e in entries])
        return
    for e in entries:
        what = "removed" if e.removed else f"label={e.label} input={e.input[:12]}"
        click.echo(f"{e.commit[:12]}  {e.created_at:%Y-%m-%d %H:%M:%S}  {e.author}  {what}  {e.message}")


@cli.command()
@click.argument("name")
@click.argument("key")
@click.option("--rev", metavar="REV", help="Revision (default: the default branch).")
def show(name: str, key: str, rev: str | None) -> None:
    """Print example KEY as JSON: label, split, input blob, metadata."""
    import json

    from server.datasets.history import resolve_rev
    from server.datasets.service import get_dataset
    from server.datasets.lookup import lookup
    from server.errors import NotFound

    store = blobs()

    def find(db):
        ds = get_dataset(db, name)
        found = lookup(db, store, resolve_rev(db, ds, rev or ds.default_branch).pk, [key])
        if key not in found:
            raise NotFound(f"no example '{key}' at '{rev or ds.default_branch}' of dataset '{name}'")
        return found[key]

    row = run_in_transaction(find)
    print_json({"key": row.key, "label": row.label, "split": row.split, "input": row.input,
                "meta": json.loads(row.meta) if row.meta else {}})
