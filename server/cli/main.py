"""The `s2` command line: entry point, error reporting, shared helpers."""
import gc
import sys

import click

from server.cli.common import fail
from server.errors import S2Error


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="s2", prog_name="s2")
@click.option("--server", metavar="URL", help="Run against an s2 server (default: S2_SERVER; unset: the local store).")
@click.option("--token", metavar="TOKEN", help="API token for --server (default: S2_TOKEN).")
def cli(server: str | None, token: str | None) -> None:
    """s2: versioned labeled datasets (GitHub for Software 2.0).

    State lives in S2_HOME (default ./.s2: a SQLite file and a blob folder), or in
    S2_DATABASE_URL / S2_BLOB_URL; with --server URL --token T (or S2_SERVER, S2_TOKEN)
    every command runs against an s2 server instead. REV is a commit id (or a 7+ digit
    prefix), a branch, a tag, or REV~N (N first-parent steps back).
    """
    from server.client import configure

    configure(server, token)


def main() -> None:
    """Run the CLI, turning every domain error into one line on stderr and exit status 1."""
    from server.blobs import BlobCorrupt, BlobMissing
    from server.cli import datasets, history, io, registry, training, users, web  # noqa: F401  (registers the commands)
    from server.config import SettingsInvalid
    from server.db import DatabaseUnavailable

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", code=130)
    except click.UsageError as exc:
        fail(exc.format_message(), code=2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (S2Error, SettingsInvalid, DatabaseUnavailable, BlobCorrupt, BlobMissing) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    finally:
        # Interpreter teardown garbage-collects every object of every module loaded (SQLAlchemy,
        # pydantic, Celery): 0.1-0.15 s after a command's work is done. Frozen objects are left to
        # the process's exit instead; atexit handlers still run, so connections still close cleanly.
        gc.freeze()
