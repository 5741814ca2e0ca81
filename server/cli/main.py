"""The `s2` command line: entry point, error reporting, shared helpers."""

import gc
import os
import sys

# pydantic looks for plugins in every installed distribution's entry points on its first model:
# ~15 ms of each command's start-up, for plugins s2 never uses.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

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
    prefix), a branch, a tag, or HEAD (the default branch, or the command's branch), each
    followed by any of ~N (N first-parent steps back), ^ (the first parent), ^N (the Nth
    parent: a merge has 2), as in git.
    """
    from server.client import configure

    configure(server, token)


def os_error_line(exc: OSError) -> str:
    """One line for a failed file operation: the path(s) and what the system said."""
    what = exc.strerror or str(exc) or exc.__class__.__name__
    if isinstance(exc, FileExistsError):  # s2 makes folders with exist_ok: what is there is not a folder
        what += " where s2 needs a folder; move it away or choose another path"
    if exc.filename is None:
        return what
    where = f"'{exc.filename}'" + (f" -> '{exc.filename2}'" if exc.filename2 is not None else "")
    return f"{where}: {what}"


def database_error_line(exc: Exception) -> str:
    """One line for a statement the database refused, naming the database (password hidden)."""
    from sqlalchemy.engine import make_url

    from server.config import get_settings

    orig = getattr(exc, "orig", None) or exc
    said = (str(orig).strip().splitlines() or [""])[0]
    database = make_url(get_settings().resolved_database_url).render_as_string(hide_password=True)
    return f"database {database} refused the operation: {orig.__class__.__name__}: {said}"


def unknown_command_line(exc: "click.exceptions.NoSuchCommand") -> str:
    """One line for a mistyped command, with the close ones, worded as an unknown dataset or branch is."""
    from server.datasets.datasets import did_you_mean  # the error path only: no start-up cost

    group = exc.ctx.command if exc.ctx is not None and isinstance(exc.ctx.command, click.Group) else cli
    path = exc.ctx.command_path if exc.ctx is not None else "s2"
    names = sorted(n for n, c in group.commands.items() if not c.hidden)
    close = did_you_mean(exc.command_name, names)
    return f"no command '{exc.command_name}' in {path}" + (f"; {close}" if close else f" (see: {path} --help)")


def _collect_after_start_up(seconds: float = 1.0) -> None:
    """Keep the cyclic garbage collector off while the command starts up, and on for the rest.

    Loading SQLAlchemy, pydantic and the models allocates hundreds of thousands of objects that
    live as long as the process, and the collector scans them again and again while they load:
    ~35 ms of every command's start-up (a tenth of an `s2 checkout`). A short command ends before
    the timer fires; a long one (an import, a server, a worker) collects again after a second,
    with what start-up built frozen so that no later collection scans it.
    """
    import threading

    def resume() -> None:
        gc.freeze()
        gc.enable()

    gc.disable()
    os.register_at_fork(after_in_child=gc.enable)  # a forked child (a worker's pool) collects from its start
    timer = threading.Timer(seconds, resume)
    timer.daemon = True
    timer.start()


def main() -> None:
    """Run the CLI, turning every domain error into one line on stderr and exit status 1."""
    _collect_after_start_up()
    from server.blobs import BlobCorrupt, BlobMissing
    from server.cli import (  # noqa: F401  (registers the commands)
        datasets,
        engine,
        history,
        io,
        labelstudio,
        maintenance,
        merge_requests,
        refs,
        registry,
        review,
        training,
        users,
        web,
    )
    from server.errors import DatabaseUnavailable, SettingsInvalid

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", code=130)
    except click.exceptions.NoSuchCommand as exc:
        fail(unknown_command_line(exc), code=2)
    except click.UsageError as exc:
        fail(exc.format_message(), code=2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (S2Error, SettingsInvalid, DatabaseUnavailable, BlobCorrupt, BlobMissing) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    except OSError as exc:  # a path s2 was given or configured with cannot be read or written
        fail(os_error_line(exc))
    except Exception as exc:
        refused = sys.modules.get("sqlalchemy.exc")  # loaded only by commands that used the database: no import here
        if refused is None or not isinstance(exc, refused.DBAPIError):
            raise
        fail(database_error_line(exc))  # the database refused a statement (read-only, out of space, ...)
    finally:
        # Interpreter teardown garbage-collects every object of every module loaded (SQLAlchemy,
        # pydantic, Celery): 0.1-0.15 s after a command's work is done. Frozen objects are left to
        # the process's exit instead; atexit handlers still run, so connections still close cleanly.
        gc.freeze()
