"""`s2 import`, `export`, `fsck`: moving examples in and out, checking the store."""

from pathlib import Path

import click

from server.cli.common import fail, print_json
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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def fsck(as_json: bool) -> None:
    """Verify every blob against its hash and every referenced blob's presence; exit 1 on any fault."""
    report = backend().fsck()
    if as_json:
        print_json(report)
    else:
        for blob_id in report["corrupt"]:
            click.echo(f"corrupt: {blob_id}")
        for blob_id in report["missing"]:
            click.echo(f"missing: {blob_id}")
        click.echo(f"checked {report['checked']} blobs: {len(report['corrupt'])} corrupt, {len(report['missing'])} missing")
    if report["corrupt"] or report["missing"]:
        fail(f"store is damaged: {len(report['corrupt'])} corrupt and {len(report['missing'])} missing blob(s)")
