"""`s2 import`, `export`: moving examples in and out."""

from pathlib import Path

import click

from server.cli.common import emit, fail, listing, write_options
from server.cli.main import cli
from server.client import backend

FORMATS = ("imagefolder", "parquet", "jsonl")


@cli.command("import")
@click.argument("name")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--branch", "-b", help="Branch to commit on (default: the default branch).")
@click.option("-m", "--message", help="Commit message (default: 'import SOURCE').")
@write_options("the commit id", json_help='Print JSON: {"id" (the commit), "examples", "changes", "rows"}.')
def import_(name: str, source: Path, branch: str | None, message: str | None, as_json: bool, quiet: bool) -> None:
    """Import SOURCE into dataset NAME as one commit (upsert by key); prints the commit id.

    SOURCE is an ImageFolder folder (SOURCE/<label>/<file>; key = path below SOURCE) or a
    .csv / .jsonl / .parquet file with columns key, label, optional split, and the input:
    `image` (a path relative to the file), `text`, or feature columns (tabular).
    Nothing is committed unless every example is valid.
    """
    done = backend().import_(name, source, branch, message)
    if done["changes"] == 0:
        where = f"branch '{branch}'" if branch else "the default branch"
        summary = f"s2: the import matches {where} of dataset '{name}' already; nothing to commit (the head is printed)"
    else:
        summary = f"imported {done['examples']} examples: {done['changes']} changed; {done['rows']} examples now"
    data = {"id": done["commit"], "examples": done["examples"], "changes": done["changes"], "rows": done["rows"]}
    emit(summary, done["commit"], data, as_json=as_json, quiet=quiet)


def export_format(out: Path, fmt: str | None) -> str:
    """--format, or the one OUT's name says: .jsonl, .parquet, or a folder (an existing one, or a name without a suffix)."""
    if fmt is not None:
        return fmt
    suffix = out.suffix.lower()
    if suffix in (".jsonl", ".parquet"):
        return suffix[1:]
    if out.is_dir() or (not suffix and not out.exists()):
        return "imagefolder"
    fail(
        f"cannot tell the export format from '{out}'"
        + (f" (its suffix '{out.suffix}' is none of .jsonl, .parquet)" if suffix else " (it is a file)")
        + ": give --format imagefolder|parquet|jsonl, or name OUT NAME.jsonl, NAME.parquet or a new folder"
    )


@cli.command()
@click.argument("name")
@click.argument("rev")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Output layout (default: from OUT: NAME.jsonl, NAME.parquet, or a folder for imagefolder).",
)
@write_options("the exported commit id", json_help='Print JSON: {"id" (the commit), "examples", "out", "format"}.')
def export(name: str, rev: str, out: Path, fmt: str | None, as_json: bool, quiet: bool) -> None:
    """Write revision REV of NAME to OUT exactly as it was (inputs byte-identical); prints the commit id."""
    fmt = export_format(out, fmt)
    count, commit_id = backend().export(name, rev, out, fmt)
    data = {"id": commit_id, "examples": count, "out": str(out), "format": fmt}
    emit(f"exported {count} examples of {commit_id[:12]} to {out} ({fmt})", commit_id, data, as_json=as_json, quiet=quiet)


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
    rows = [
        [
            j["id"],
            j["state"],
            j["rows_done"],
            j["changes"],
            j["commit"][:12] if j["commit"] else " ".join((j["error"] or "").split())[:60],
            j["source"],
        ]
        for j in jobs
    ]
    listing(["ID", "STATE", "ROWS", "CHANGES", "COMMIT OR ERROR", "SOURCE"], rows)


@cli.command()
@click.argument("name")
@click.argument("rev")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files edited by hand in FOLDER.")
@write_options("the checked-out commit id")
def checkout(name: str, rev: str, folder: Path, force: bool, as_json: bool, quiet: bool) -> None:
    """Write revision REV of NAME as files in FOLDER (a working folder, like git's); prints the commit id.

    The first time, every example is written in the ImageFolder layout of exports (tabular
    datasets: one NAME.jsonl). Run again with another REV, only the examples that differ are
    renamed (a relabel), rewritten, added or removed. Files edited by hand are reported and the
    checkout refused, unless --force.
    """
    done = backend().checkout(name, rev, folder, force)
    if done["previous"] == done["commit"]:
        summary = f"{folder} already holds {done['commit'][:12]} ({done['rows']} examples)"
    else:
        moved = f", {done['moved']} moved" if done["moved"] else ""
        removed = f", {done['removed']} removed" if done["removed"] else ""
        summary = f"checked out {done['commit'][:12]} into {folder}: {done['written']} written{moved}{removed}; {done['rows']} examples"
    if done["edited"] and not as_json:  # said even with -q: files were overwritten
        more = f" and {len(done['edited']) - 5} more" if len(done["edited"]) > 5 else ""
        click.echo(f"s2: overwrote {len(done['edited'])} file(s) edited by hand: {', '.join(done['edited'][:5])}{more}", err=True)
    emit(summary, done["commit"], {"id": done["commit"], **done}, as_json=as_json, quiet=quiet)
