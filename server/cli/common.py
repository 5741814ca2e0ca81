"""Helpers every CLI command shares: output, author, progress bars."""

import getpass
import json
import socket
import sys
from typing import NoReturn

import click


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit non-zero."""
    click.echo(f"s2: error: {message}", err=True)
    sys.exit(code)


def author() -> str:
    """Who commits: S2_AUTHOR, else user@host."""
    from server.config import get_settings

    return get_settings().author or f"{getpass.getuser()}@{socket.gethostname()}"


def _json_default(value: object) -> object:
    """What json cannot write itself: a timestamp as ISO 8601 with its zone (UTC as Z, as the API writes it)."""
    from datetime import datetime

    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def print_json(value: object) -> None:
    """Write value as JSON on stdout (timestamps as ISO 8601 with their zone)."""
    click.echo(json.dumps(value, indent=2, default=_json_default, ensure_ascii=False))


def write_options(ident: str | None, json_help: str = "Print the whole result as JSON on stdout, and nothing else."):
    """--json and -q/--quiet for a write command; ident says what its id is (None: it makes nothing with one).

    Every write answers the same way (see emit): --json, the whole result; otherwise a summary on stderr
    and the id of what it made on stdout; -q, the id alone.
    """
    quiet_help = f"Print only {ident} (no summary on stderr)." if ident else "Print no summary (only warnings and errors, on stderr)."

    def decorate(f):
        f = click.option("-q", "--quiet", is_flag=True, help=quiet_help)(f)
        return click.option("--json", "as_json", is_flag=True, help=json_help)(f)

    return decorate


def emit(summary: str | None, ident: object, data: object, *, as_json: bool, quiet: bool) -> None:
    """A write's answer, alike in every command: data on stdout, messages on stderr.

    --json: data as JSON on stdout. Otherwise the one-line summary on stderr (not with -q) and, when the
    command made something with an id (a commit, run, model, token, ...), that id alone on stdout.
    """
    if as_json:
        print_json(data)
        return
    if summary and not quiet:
        click.echo(summary, err=True)
    if ident is not None:
        click.echo(ident)


def header(line: str) -> None:
    """A listing's column header: part of the table at a terminal, on stderr when stdout is piped (data stays data)."""
    click.echo(line, err=not sys.stdout.isatty())


def listing(columns: list[str], rows: list[list[object]]) -> None:
    """A list command's text: the header, then one tab-separated line per row (None shown as -)."""
    header("\t".join(columns))
    for row in rows:
        click.echo("\t".join("-" if v is None else str(v) for v in row))


def progress(desc: str, total: int | None = None, unit: str = "ex"):
    """A progress bar on stderr, shown only on a terminal."""
    from tqdm import tqdm

    return tqdm(desc=desc, total=total, unit=unit, unit_scale=True, file=sys.stderr, disable=None, leave=False)


def blobs():
    """The configured blob store."""
    from server.blobs import default_blob_store

    return default_blob_store()
