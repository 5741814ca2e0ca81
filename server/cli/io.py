"""`s2 import`, `export`, `fsck`: moving examples in and out, checking the store."""
from pathlib import Path

import click

from server.cli.common import author, blobs, fail, print_json, progress
from server.cli.datasets import after_commit
from server.cli.main import cli
from server.db import run_in_transaction
from server.errors import NothingToCommit


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
    from server.datasets.commits import upsert_rows
    from server.datasets.importing import read_source
    from server.datasets.service import commit_read, get_branch, get_dataset

    store, who = blobs(), author()
    ds = run_in_transaction(lambda db: get_dataset(db, name))
    with progress(f"reading {source.name}") as bar:
        rows = read_source(source, ds.modality, ds.labels, store, tick=bar.update)

    def commit_rows(db):
        dataset = get_dataset(db, name)
        return commit_read(upsert_rows(db, store, dataset=dataset, branch=get_branch(db, dataset, branch), rows=rows,
                                       message=message or f"import {source.name}", author=who))

    try:
        made = run_in_transaction(commit_rows)
    except NothingToCommit as exc:
        click.echo(f"s2: {exc}", err=True)
        from server.datasets.history import resolve_rev

        head = run_in_transaction(lambda db: resolve_rev(db, get_dataset(db, name), branch or ds.default_branch).id)
        click.echo(head)
        return
    after_commit(made.id)
    click.echo(f"imported {len(rows)} examples: {made.changes} changed; {made.rows} examples now")
    click.echo(made.id)


@cli.command()
@click.argument("name")
@click.argument("rev")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--format", "fmt", required=True, type=click.Choice(["imagefolder", "parquet", "jsonl"]), help="Output layout.")
def export(name: str, rev: str, out: Path, fmt: str) -> None:
    """Write revision REV of NAME to OUT exactly as it was (inputs byte-identical)."""
    from server.datasets.exporting import check_target, export_rows, iter_rows
    from server.datasets.history import resolve_rev
    from server.datasets.service import get_dataset
    from server.datasets.snapshot import iter_snapshot

    store = blobs()
    check_target(out)

    def write(db):
        ds = get_dataset(db, name)
        commit = resolve_rev(db, ds, rev)
        with progress(f"exporting {commit.id[:12]}", total=commit.row_count) as bar:
            return export_rows(iter_rows(iter_snapshot(db, store, commit.pk)), out=out, fmt=fmt, modality=ds.modality,
                               labels=list(ds.labels), blobs=store, tick=bar.update), commit.id

    count, commit_id = run_in_transaction(write)
    click.echo(f"exported {count} examples of {commit_id[:12]} to {out}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def fsck(as_json: bool) -> None:
    """Verify every blob against its hash and every referenced blob's presence; exit 1 on any fault."""
    from server.datasets.fsck import check_store

    store = blobs()
    with progress("checking blobs", unit="blob") as bar:
        report = run_in_transaction(lambda db: check_store(db, store, tick=bar.update))
    if as_json:
        print_json(report.model_dump())
    else:
        for blob_id in report.corrupt:
            click.echo(f"corrupt: {blob_id}")
        for blob_id in report.missing:
            click.echo(f"missing: {blob_id}")
        click.echo(f"checked {report.checked} blobs: {len(report.corrupt)} corrupt, {len(report.missing)} missing")
    if report.corrupt or report.missing:
        fail(f"store is damaged: {len(report.corrupt)} corrupt and {len(report.missing)} missing blob(s)")
