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


def print_json(value: object) -> None:
    """Write value as JSON on stdout (dates as ISO strings)."""
    click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def progress(desc: str, total: int | None = None, unit: str = "ex"):
    """A progress bar on stderr, shown only on a terminal."""
    from tqdm import tqdm

    return tqdm(desc=desc, total=total, unit=unit, unit_scale=True, file=sys.stderr, disable=None, leave=False)


def blobs():
    """The configured blob store."""
    from server.blobs import default_blob_store

    return default_blob_store()
