"""`s2 import`, `export`: moving examples in and out."""

from pathlib import Path

import click

from server.cli.main import cli
from server.client import backend


@cli.command("import")
@click.argument("name")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--branch", "-b", help="Branch to commit on (default: the default branch).")
@click.option("-m", "--message", help="Commit message (default: 'import SOURCE').")
def import_(name: str, source: Path, branch: str | None, message: str | None) -> None:
    """Import SOURCE into dataset NAME as one commit (upsert by key); prints the commit id last.

    SOURCE is an ImageFolder folder (SOURCE/<label>/<file>; key = path below SOURCE) or a
    .csv / .jsonl / .parquet file with columns key, label, optional split, and the input:
    `image` (a path relative to the file), `text`, or feature columns (tabular).
    Nothing is committed unless every example is valid.
    """
    done = backend().import_(name, source, branch, message)
    if done["changes"] == 0:
        where = f"branch '{branch}'" if branch else "the default branch"
        click.echo(f"s2: the import matches {where} of dataset '{name}' already; nothing to commit", err=True)
    else:
        click.echo(f"imported {done['examples']} examples: {done['changes']} changed; {done['rows']} examples now")
    click.echo(done["commit"])


@cli.command()
@click.argument("name")
@click.argument("rev")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--format", "fmt", required=True, type=click.Choice(["imagefolder", "parquet", "jsonl"]), help="Output layout.")
def export(name: str, rev: str, out: Path, fmt: str) -> None:
    """Write revision REV of NAME to OUT exactly as it was (inputs byte-identical)."""
    count, commit_id = backend().export(name, rev, out, fmt)
    click.echo(f"exported {count} examples of {commit_id[:12]} to {out}")


@cli.command("imports")
@click.argument("name")
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 10_000), help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def imports(name: str, limit: int, as_json: bool) -> None:
    """List the import jobs of dataset NAME, newest first: state, rows done, commit or error."""
    from server.cli.common import print_json

    jobs = backend().list_imports(name, limit)
    if as_json:
        print_json(jobs)
        return
    click.echo("ID\tSTATE\tROWS\tCHANGES\tCOMMIT\tSOURCE")
    for job in jobs:
        result = job["commit"][:12] if job["commit"] else (job["error"] or "")[:60]
        click.echo(
            f"{job['id']}\t{job['state']}\t{job['rows_done']}\t{job['changes'] if job['changes'] is not None else '-'}\t{result}\t{job['source']}"
        )


@cli.command()
@click.argument("name")
@click.argument("rev")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files edited by hand in FOLDER.")
def checkout(name: str, rev: str, folder: Path, force: bool) -> None:
    """Write revision REV of NAME as files in FOLDER (a working folder, like git's); prints the commit id last.

    The first time, every example is written in the ImageFolder layout of exports (tabular
    datasets: one NAME.jsonl). Run again with another REV, only the examples that differ are
    renamed (a relabel), rewritten, added or removed. Files edited by hand are reported and the
    checkout refused, unless --force.
    """
    done = backend().checkout(name, rev, folder, force)
    if done["previous"] == done["commit"]:
        click.echo(f"{folder} already holds {done['commit'][:12]} ({done['rows']} examples)")
    else:
        moved = f", {done['moved']} moved" if done["moved"] else ""
        removed = f", {done['removed']} removed" if done["removed"] else ""
        click.echo(f"checked out {done['commit'][:12]} into {folder}: {done['written']} written{moved}{removed}; {done['rows']} examples")
    if done["edited"]:
        click.echo(f"s2: overwrote {len(done['edited'])} file(s) edited by hand: {', '.join(done['edited'][:5])}", err=True)
    click.echo(done["commit"])
