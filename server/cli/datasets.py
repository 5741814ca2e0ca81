"""`s2 dataset`, `branch`, `tag`, `label`, `rm`, `status`, `unstage`, `commit`, `merge`."""

import csv
import re
import sys
from pathlib import Path

import click

from server.cli.common import emit, fail, header, listing, print_json, write_options
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
@write_options("the dataset's name")
def dataset_create(name: str, modality: str, labels: str, as_json: bool, quiet: bool) -> None:
    """Create an empty dataset NAME with branch main."""
    ds = backend().create_dataset(name, modality, labels.split(","))
    summary = f"created dataset {ds.name} ({ds.modality}; labels {', '.join(ds.labels)})"
    emit(summary, ds.name, ds.model_dump(mode="json"), as_json=as_json, quiet=quiet)


@dataset.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def dataset_list(as_json: bool) -> None:
    """List datasets."""
    found = backend().list_datasets()
    if as_json:
        print_json([d.model_dump(mode="json") for d in found])
        return
    listing(["NAME", "MODALITY", "LABELS"], [[d.name, d.modality, ",".join(d.labels)] for d in found])


@dataset.command("delete")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@write_options(None, json_help="Print JSON: what was deleted.")
def dataset_delete(name: str, yes: bool, as_json: bool, quiet: bool) -> None:
    """Delete dataset NAME with its history, refs, runs, models and requests (blobs stay until `s2 gc`)."""
    import sys

    if not yes:
        if not sys.stdin.isatty():
            fail(f"deleting dataset '{name}' cannot be undone: confirm with --yes (stdin is not a terminal to ask on)")
        backend().list_branches(name)  # an unknown name fails here, before the question
        click.confirm(f"Delete dataset '{name}' and all its history, runs and models? This cannot be undone", abort=True, err=True)
    done = backend().delete_dataset(name)
    summary = (
        f"deleted dataset {done['name']}: {done['commits']} commit(s), {done['branches']} branch(es), {done['tags']} tag(s), "
        f"{done['runs']} run(s), {done['models']} model(s); reclaim its blobs with: s2 gc"
    )
    emit(summary, None, done, as_json=as_json, quiet=quiet)


@cli.command()
@click.argument("name")
@click.argument("branch_name", metavar="BRANCH")
@click.option("--off", is_flag=True, help="Unprotect it instead (the default branch always stays protected).")
@write_options(None)
def protect(name: str, branch_name: str, off: bool, as_json: bool, quiet: bool) -> None:
    """Protect BRANCH of NAME: over the API it then changes only by an engineer's merge or import."""
    done = backend().set_protected(name, branch_name, not off)
    summary = f"branch {done.name} of {name} is {'protected' if done.protected else 'not protected'}"
    emit(summary, None, done.model_dump(mode="json"), as_json=as_json, quiet=quiet)


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
@write_options(None, json_help="Print the staged edits as JSON.")
def label(name: str, key: str | None, label: str | None, edits_file: Path | None, branch: str | None, as_json: bool, quiet: bool) -> None:
    """Stage a label edit (KEY LABEL), or many (--file EDITS.csv); `s2 commit` records them.

    Against a server, each edit carries the version of the example as it is now on the branch (read
    first), as the workbench's do: an edit someone staged meanwhile is a conflict, never overwritten.
    """
    if edits_file is not None and key is not None:
        fail("give either KEY LABEL or --file, not both")
    if edits_file is None and (key is None or label is None):
        fail("give KEY LABEL, or --file EDITS.csv")
    staged = _stage_file(name, branch, edits_file) if edits_file is not None else backend().stage(name, branch, [(key, label, False)])
    summary = f"staged {len(staged)} edit(s); record them with: s2 commit {name} -m MESSAGE"
    emit(summary, None, [s.model_dump(mode="json") for s in staged], as_json=as_json, quiet=quiet)


@cli.command()
@click.argument("name")
@click.argument("keys", nargs=-1, required=True)
@click.option("--branch", "-b", help="Branch to stage on (default: the default branch).")
@write_options(None, json_help="Print the staged edits as JSON.")
def rm(name: str, keys: tuple[str, ...], branch: str | None, as_json: bool, quiet: bool) -> None:
    """Stage the removal of examples KEYS."""
    staged = backend().stage(name, branch, [(k, None, True) for k in keys])
    emit(f"staged removal of {len(keys)} example(s)", None, [s.model_dump(mode="json") for s in staged], as_json=as_json, quiet=quiet)


@cli.command()
@click.argument("name")
@click.option("--branch", "-b", help="Branch (default: the default branch).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(name: str, branch: str | None, as_json: bool) -> None:
    """Show the staged (uncommitted) edits on a branch."""
    staged = backend().list_staged(name, branch)
    if as_json:
        print_json([s.model_dump(mode="json") for s in staged])
        return
    listing(["EDIT", "KEY", "LABEL", "AUTHOR"], [["remove" if s.remove else "label", s.key, s.label or "", s.author] for s in staged])
    click.echo(f"{len(staged)} staged edit(s)", err=True)


@cli.command()
@click.argument("name")
@click.argument("keys", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Drop every staged edit on the branch.")
@click.option("--branch", "-b", help="Branch (default: the default branch).")
@write_options(None, json_help='Print JSON: {"dropped", "kept"}.')
def unstage(name: str, keys: tuple[str, ...], all_: bool, branch: str | None, as_json: bool, quiet: bool) -> None:
    """Drop staged edits of KEYS (or --all)."""
    if not keys and not all_:
        fail("give the KEYS to unstage, or --all")
    dropped, kept = backend().unstage(name, branch, None if all_ else list(keys))
    summary = f"dropped {dropped} staged edit(s)" + (f"; kept {kept} by others (dropping them needs an engineer)" if kept else "")
    emit(summary, None, {"dropped": dropped, "kept": kept}, as_json=as_json, quiet=quiet)


@cli.command()
@click.argument("name")
@click.option("-m", "--message", required=True, help="What the commit changes and why.")
@click.option("--branch", "-b", help="Branch (default: the default branch).")
@write_options("the new commit id", json_help="Print the new commit as JSON (as in s2 log --json, with dropped).")
def commit(name: str, message: str, branch: str | None, as_json: bool, quiet: bool) -> None:
    """Commit the staged edits of a branch; prints the new commit id."""
    outcome = backend().commit(name, branch, message)
    made = outcome.commit
    if made is None:
        fail(
            f"nothing to commit on dataset '{name}': the {outcome.dropped} staged edit(s) match the branch head already (they were dropped)"
        )
    summary = f"committed {made.changes} change(s); {made.rows} examples"
    emit(summary, made.id, {**made.model_dump(mode="json"), "dropped": outcome.dropped}, as_json=as_json, quiet=quiet)


@cli.command()
@click.argument("name")
@click.argument("source", metavar="SRC", required=False)
@click.option("--into", required=True, metavar="BRANCH", help="Branch that receives the changes.")
@click.option("-m", "--message", help="Merge commit message.")
@click.option("--ours", "strategy", flag_value="ours", help="Settle every conflict with BRANCH's row.")
@click.option("--theirs", "strategy", flag_value="theirs", help="Settle every conflict with SRC's row.")
@click.option("--abort", is_flag=True, help="Drop the merge in progress into BRANCH (SRC not needed).")
@write_options("the commit BRANCH ends at", json_help='Print JSON: the outcome, or {"conflicts": [...]} (exit status 1).')
def merge(
    name: str, source: str | None, into: str, message: str | None, strategy: str | None, abort: bool, as_json: bool, quiet: bool
) -> None:
    """Merge revision SRC into branch BRANCH, three-way by key; conflicts are listed, never guessed.

    With conflicts (and neither --ours nor --theirs) nothing is written: every conflict is printed
    (KEY BASE TARGET SOURCE), exit status 1, and the merge stays in progress: settle each key with
    `s2 resolve NAME KEY LABEL --into BRANCH` (the merge completes with the last one), rerun with
    --ours/--theirs, or drop it with `s2 merge --abort NAME --into BRANCH`.
    """
    from server.errors import Conflict

    if abort:
        target = backend().abort_merge(name, into)
        emit(f"aborted the merge in progress into {target}", None, {"aborted": True, "into": target}, as_json=as_json, quiet=quiet)
        return
    if source is None:
        fail("give the revision to merge: s2 merge NAME SRC --into BRANCH (or --abort)")
    try:
        how, head, changes = backend().merge(name, source, into, message, strategy=strategy)
    except Conflict as exc:
        if "conflicts" not in exc.extra:
            raise
        conflicts = exc.extra["conflicts"]
        if as_json:
            print_json({"conflicts": conflicts, "into": into, "source": source})
        else:
            _print_conflicts(conflicts)
        click.echo(
            f"s2: error: merge of '{source}' into '{into}' conflicts on {len(conflicts)} example(s): resolve each with "
            f"`s2 resolve {name} KEY LABEL --into {into}` (or --ours/--theirs), or rerun with --ours or --theirs, "
            f"or drop it with `s2 merge --abort {name} --into {into}`",
            err=True,
        )
        sys.exit(1)
    summary = {
        "up-to-date": f"{into} already contains {source}",
        "fast-forward": f"fast-forwarded {into} to {source}",
        "merge": f"merged {source} into {into}: {changes} change(s)",
    }[how]
    emit(summary, head, {"outcome": how, "id": head, "head": head, "changes": changes}, as_json=as_json, quiet=quiet)


def _cell(c: dict, side: str) -> str:
    if side == "base" and c.get("unresolved_base"):
        return "(bases disagree)"
    if c[f"{side}_removed"]:
        return "(absent)" if side == "base" else "(removed)"
    return c[f"{side}_label"] if c[f"{side}_label"] is not None else "(unlabeled)"


def _print_conflicts(conflicts: list[dict], with_resolution: bool = False) -> None:
    """Every conflict as a table with a header, all rows."""
    columns = ["KEY", "BASE", "TARGET", "SOURCE"] + (["RESOLUTION"] if with_resolution else [])
    rows = []
    for c in conflicts:
        row = [c["key"], _cell(c, "base"), _cell(c, "target"), _cell(c, "source")]
        if with_resolution:
            r = c.get("resolution")
            row.append("-" if not r else f"take {r['take']}" if "take" in r else f"label {r['label']}")
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [columns, *rows]) for i in range(len(columns))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in [columns, *rows]]
    header(lines[0])
    for line in lines[1:]:
        click.echo(line)


@cli.command()
@click.argument("name")
@click.argument("key", required=False)
@click.argument("label", required=False)
@click.option("--into", metavar="BRANCH", help="Branch of the merge in progress (default: the dataset's only one).")
@click.option("--source", metavar="SRC", help="Check that the merge in progress is of SRC.")
@click.option("--ours", "take", flag_value="ours", help="Keep BRANCH's row for KEY instead of giving a LABEL.")
@click.option("--theirs", "take", flag_value="theirs", help="Keep SRC's row for KEY instead of giving a LABEL.")
@write_options("the commit BRANCH ends at when the merge completes")
def resolve(
    name: str, key: str | None, label: str | None, into: str | None, source: str | None, take: str | None, as_json: bool, quiet: bool
) -> None:
    """Resolve conflicting KEY of the merge in progress with LABEL (or --ours/--theirs); the merge completes with the last one.

    Without KEY, lists the merge in progress: every conflict and its resolution so far.
    """
    b = backend()
    if key is None:
        found = b.pending_merge(name, into)
        if as_json:
            print_json(found)
            return
        _print_conflicts(found["conflicts"], with_resolution=True)
        click.echo(f"merging {found['source']} into {found['into']}: {found['unresolved']} conflict(s) left", err=True)
        return
    if (label is None) == (take is None):
        fail("give the LABEL to keep for KEY, or one of --ours/--theirs")
    done = b.resolve_merge(name, into, key, {"label": label} if label is not None else {"take": take}, source)
    if as_json:
        print_json({**done, "id": done.get("head")} if done["state"] == "merged" else done)
        if done["state"] != "merged" and done.get("target_moved"):
            sys.exit(1)
        return
    if done["state"] == "merged":
        emit(f"resolved {key}; merge completed: {done['changes']} change(s)", done["head"], None, as_json=False, quiet=quiet)
        return
    left = [c for c in done["conflicts"] if c["resolution"] is None]
    if done.get("target_moved"):
        _print_conflicts(done["conflicts"], with_resolution=True)
        click.echo(
            f"s2: error: {done['into']} moved since the merge started: its conflicts were recomputed; "
            f"{len(left)} left to resolve with `s2 resolve {name} KEY LABEL --into {done['into']}`",
            err=True,
        )
        sys.exit(1)
    more = f" and {len(left) - 10} more" if len(left) > 10 else ""
    summary = f"resolved {key}; {len(left)} conflict(s) left: " + " ".join(c["key"] for c in left[:10]) + more
    emit(summary, None, None, as_json=False, quiet=quiet)


from server.cli import refs  # noqa: E402, F401  (`s2 branch` and `s2 tag` live there: importing this module registers them too)
