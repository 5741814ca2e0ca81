"""`s2 dataset`, `branch`, `tag`, `label`, `rm`, `status`, `unstage`, `commit`, `merge`."""

import csv
import re
from pathlib import Path

import click

from server.cli.common import fail, print_json
from server.cli.main import cli
from server.client import backend
from server.errors import InvalidInput, NotFound


@cli.group()
def dataset() -> None:
    """Create, list and inspect datasets."""


@dataset.command("create")
@click.argument("name")
@click.option("--modality", required=True, type=click.Choice(["image", "text", "tabular"]), help="What the inputs are.")
@click.option("--labels", required=True, help="Comma-separated label set, e.g. cat,dog.")
def dataset_create(name: str, modality: str, labels: str) -> None:
    """Create an empty dataset NAME with branch main."""
    ds = backend().create_dataset(name, modality, labels.split(","))
    click.echo(f"created dataset {ds.name} ({ds.modality}; labels {', '.join(ds.labels)})")


@dataset.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def dataset_list(as_json: bool) -> None:
    """List datasets."""
    found = backend().list_datasets()
    if as_json:
        print_json([d.model_dump(mode="json") for d in found])
    for d in [] if as_json else found:
        click.echo(f"{d.name}\t{d.modality}\t{','.join(d.labels)}")


@cli.command()
@click.argument("name")
@click.argument("new", required=False)
@click.option("--from", "from_rev", metavar="REV", help="Where the branch starts (default: the default branch).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (listing only).")
def branch(name: str, new: str | None, from_rev: str | None, as_json: bool) -> None:
    """Create branch NEW in dataset NAME, or list branches when NEW is omitted."""
    if new is None:
        found = backend().list_branches(name)
        if as_json:
            print_json([b.model_dump() for b in found])
        for b in [] if as_json else found:
            click.echo(f"{b.name}\t{b.head[:12]}{'  (protected)' if b.protected else ''}")
        return
    made = backend().create_branch(name, new, from_rev)
    click.echo(f"created branch {made.name} at {made.head[:12]}")


@cli.command()
@click.argument("name")
@click.argument("branch_name", metavar="BRANCH")
@click.option("--off", is_flag=True, help="Unprotect it instead (the default branch always stays protected).")
def protect(name: str, branch_name: str, off: bool) -> None:
    """Protect BRANCH of NAME: over the API it then changes only by an engineer's merge or import."""
    done = backend().set_protected(name, branch_name, not off)
    click.echo(f"branch {done.name} of {name} is {'protected' if done.protected else 'not protected'}")


@cli.command()
@click.argument("name")
@click.argument("tag_name", metavar="TAG")
@click.argument("rev")
def tag(name: str, tag_name: str, rev: str) -> None:
    """Tag revision REV of dataset NAME as TAG (tags never move)."""
    commit_id = backend().create_tag(name, tag_name, rev)
    click.echo(f"tagged {commit_id[:12]} as {tag_name}")


def _read_edits(path: Path) -> tuple[list[tuple[str, str | None, bool]], list[int]]:
    """The (key, label, remove) edits of a CSV with columns key,label, and the line each one is on."""
    edits, lines, first_line = [], [], {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                fail(f"edits file '{path}' is empty: it needs a header line key,label and one line per edit")
            if not {"key", "label"} <= set(reader.fieldnames):
                fail(f"edits file '{path}' needs columns key,label (found: {', '.join(reader.fieldnames) or 'nothing'})")
            for row in reader:
                at, key = f"'{path}' line {reader.line_num}", row["key"]
                if None in row or row["label"] is None:
                    fail(f"{at}: {'more' if None in row else 'fewer'} cells than header columns")
                if not key:
                    fail(f"{at}: no key")
                if key in first_line:
                    fail(f"{at}: key '{key}' is edited twice (first at line {first_line[key]})")
                first_line[key] = reader.line_num
                edits.append((key, row["label"] or None, False))
                lines.append(reader.line_num)
    except OSError as exc:
        fail(f"cannot read edits file '{path}': {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        fail(f"edits file '{path}': not UTF-8 text ({exc.reason})")
    except csv.Error as exc:
        fail(f"edits file '{path}': malformed CSV ({exc})")
    if not edits:
        fail(f"edits file '{path}' has no rows")
    return edits, lines


def _at_line(message: str, path: Path, edits: list[tuple[str, str | None, bool]], lines: list[int]) -> str | None:
    """A staging error about edit N or an unknown key, restated at the file line it came from (None: not about one edit)."""
    number = re.match(r"edit (\d+)\b", message)
    if number and 1 <= int(number[1]) <= len(edits):
        i = int(number[1]) - 1
        key = edits[i][0]
        for prefix in (f"edit {i + 1} (key '{key}'): ", f"edit {i + 1}: "):
            if message.startswith(prefix):
                return f"'{path}' line {lines[i]}: key '{key}': {message[len(prefix) :]}"
    for (key, _, _), line in zip(edits, lines):
        if message.startswith(f"no example '{key}'"):
            return f"'{path}' line {line}: {message}"
    return None


def _stage_file(name: str, branch: str | None, path: Path) -> list:
    """Stage every edit of the CSV at path at once; an error names the file and line, and stages nothing."""
    edits, lines = _read_edits(path)
    try:
        return backend().stage(name, branch, edits)
    except (InvalidInput, NotFound) as exc:
        located = _at_line(str(exc), path, edits, lines)
        if located is None:  # about the dataset or branch, not a line of the file
            raise
        fail(located)


@cli.command()
@click.argument("name")
@click.argument("key", required=False)
@click.argument("label", required=False)
@click.option("--file", "edits_file", type=click.Path(path_type=Path), help="CSV of edits with columns key,label.")
@click.option("--branch", "-b", help="Branch to stage on (default: the default branch).")
def label(name: str, key: str | None, label: str | None, edits_file: Path | None, branch: str | None) -> None:
    """Stage a label edit (KEY LABEL), or many (--file EDITS.csv); `s2 commit` records them."""
    if edits_file is not None and key is not None:
        fail("give either KEY LABEL or --file, not both")
    if edits_file is None and (key is None or label is None):
        fail("give KEY LABEL, or --file EDITS.csv")
    staged = _stage_file(name, branch, edits_file) if edits_file is not None else backend().stage(name, branch, [(key, label, False)])
    click.echo(f"staged {len(staged)} edit(s); record them with: s2 commit {name} -m MESSAGE")


@cli.command()
@click.argument("name")
@click.argument("keys", nargs=-1, required=True)
@click.option("--branch", "-b", help="Branch to stage on (default: the default branch).")
def rm(name: str, keys: tuple[str, ...], branch: str | None) -> None:
    """Stage the removal of examples KEYS."""
    backend().stage(name, branch, [(k, None, True) for k in keys])
    click.echo(f"staged removal of {len(keys)} example(s)")


@cli.command()
@click.argument("name")
@click.option("--branch", "-b", help="Branch (default: the default branch).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(name: str, branch: str | None, as_json: bool) -> None:
    """Show the staged (uncommitted) edits on a branch."""
    staged = backend().list_staged(name, branch)
    if as_json:
        print_json([s.model_dump() for s in staged])
        return
    for s in staged:
        click.echo(f"{'remove' if s.remove else 'label '}\t{s.key}\t{s.label or ''}\t{s.author}")
    click.echo(f"{len(staged)} staged edit(s)", err=True)


@cli.command()
@click.argument("name")
@click.argument("keys", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Drop every staged edit on the branch.")
@click.option("--branch", "-b", help="Branch (default: the default branch).")
def unstage(name: str, keys: tuple[str, ...], all_: bool, branch: str | None) -> None:
    """Drop staged edits of KEYS (or --all)."""
    if not keys and not all_:
        fail("give the KEYS to unstage, or --all")
    dropped, kept = backend().unstage(name, branch, None if all_ else list(keys))
    click.echo(f"dropped {dropped} staged edit(s)" + (f"; kept {kept} by others (dropping them needs an engineer)" if kept else ""))


@cli.command()
@click.argument("name")
@click.option("-m", "--message", required=True, help="What the commit changes and why.")
@click.option("--branch", "-b", help="Branch (default: the default branch).")
def commit(name: str, message: str, branch: str | None) -> None:
    """Commit the staged edits of a branch; prints the new commit id last."""
    outcome = backend().commit(name, branch, message)
    made = outcome.commit
    if made is None:
        fail(
            f"nothing to commit on dataset '{name}': the {outcome.dropped} staged edit(s) match the branch head already (they were dropped)"
        )
    click.echo(f"committed {made.changes} change(s); {made.rows} examples")
    click.echo(made.id)


@cli.command()
@click.argument("name")
@click.argument("source", metavar="SRC")
@click.option("--into", required=True, metavar="BRANCH", help="Branch that receives the changes.")
@click.option("-m", "--message", help="Merge commit message.")
def merge(name: str, source: str, into: str, message: str | None) -> None:
    """Merge revision SRC into branch BRANCH, three-way by key; conflicts are listed, never guessed."""
    how, head, changes = backend().merge(name, source, into, message)
    click.echo(
        {
            "up-to-date": f"{into} already contains {source}",
            "fast-forward": f"fast-forwarded {into} to {source}",
            "merge": f"merged {source} into {into}: {changes} change(s)",
        }[how]
    )
    click.echo(head)
