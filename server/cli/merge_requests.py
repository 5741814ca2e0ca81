"""`s2 mr`: merge requests, pull requests for data (open, list, show, comment, approve, resolve, merge, close)."""

from datetime import datetime
from urllib.parse import quote

import click

from server.cli.common import emit, header, print_json, write_options
from server.cli.main import cli
from server.client import backend

NUMBER = click.argument("number", type=int, metavar="N")
AS_JSON = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
API_JSON = "Print the API's JSON."
METRICS = ("accuracy", "macro_f1", "loss")


@cli.group("mr")
def mr() -> None:
    """Merge requests: propose merging one branch of a dataset into another, discuss, resolve, merge.

    A request is named DATASET!N (e.g. digits!3) and shown at /d/DATASET/merge-requests/N. Over a
    server, anyone who reads a dataset opens, comments and (its author) resolves or closes;
    engineers approve and merge. On the local store the CLI user (S2_AUTHOR) may do all of it.
    """


def _page(name: str, number: int) -> str:
    return f"/d/{quote(name, safe='')}/merge-requests/{number}"


def _one_line(text: str) -> str:
    """text with its runs of whitespace (newlines, tabs) made single spaces: one table row per request."""
    return " ".join(text.split())


def _when(stamp: str) -> str:
    return f"{datetime.fromisoformat(stamp):%Y-%m-%d %H:%M}"


def _table(columns: list[str], rows: list[list[str]], indent: str = "", listing: bool = False) -> None:
    """Rows under a header, each column as wide as its widest cell (the last one left ragged).

    listing: the table is a list command's whole output, whose header goes to stderr when piped (common.header);
    inside a report (mr show) it stays with its rows."""
    widths = [max(len(r[i]) for r in [columns, *rows]) for i in range(len(columns) - 1)]
    lines = [indent + "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]).rstrip() for row in [columns, *rows]]
    (header if listing else click.echo)(lines[0])
    for line in lines[1:]:
        click.echo(line)


@mr.command("open")
@click.argument("name")
@click.option("--source", "-s", required=True, metavar="BRANCH", help="The branch with the changes.")
@click.option("--into", "-i", "target", metavar="TARGET", help="The branch to merge into (default: the dataset's default branch).")
@click.option("--title", "-t", required=True, help="What the request does, in one line.")
@click.option("--description", "-d", default="", help="More words for reviewers.")
@write_options("the request's id (NAME!N)", json_help=API_JSON)
def mr_open(name: str, source: str, target: str | None, title: str, description: str, as_json: bool, quiet: bool) -> None:
    """Open a request to merge branch --source into --into; prints its id (NAME!N; its page on stderr)."""
    opened = backend().mr_open(name, source, target, title, description)
    summary = f"opened {opened['id']}: {opened['source']} → {opened['target']} ({_page(name, opened['number'])})"
    emit(summary, opened["id"], opened, as_json=as_json, quiet=quiet)


@mr.command("list")
@click.argument("name")
@click.option("--state", type=click.Choice(["open", "merged", "closed", "all"]), default="open", show_default=True, help="Which requests.")
@AS_JSON
def mr_list(name: str, state: str, as_json: bool) -> None:
    """List NAME's merge requests, newest first."""
    found = backend().mr_list(name, None if state == "all" else state)
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo(f"no {'' if state == 'all' else state + ' '}merge requests in {name}", err=True)
        return
    rows = [[f"!{r['number']}", r["state"], f"{r['source']} → {r['target']}", r["author"], _one_line(r["title"])] for r in found]
    _table(["NUMBER", "STATE", "SOURCE → TARGET", "AUTHOR", "TITLE"], rows, listing=True)


def _label(label: str | None, removed: bool) -> str:
    return "(removed)" if removed else ("(unlabeled)" if label is None else label)


def _show_check(check: dict, source: str) -> None:
    """The newest model of the source's head against production, each metric rounded, with its delta."""
    if check["model"]:
        model = f"model {check['model']}"
    else:
        run = f"run {check['run']} is {check['run_state']}" if check["run"] is not None else "none trained"
        model = f"no model of {source}'s head yet ({run})"
    against = f"production {check['production']}" if check["production"] else "no production model to compare with"
    click.echo(f"check: {model} vs {against}")
    for metric in METRICS:
        m = check["metrics"].get(metric) or {}
        if m.get("model") is None and m.get("production") is None:
            continue
        prod, new = (f"{m[k]:.4f}" if m.get(k) is not None else "-" for k in ("production", "model"))
        delta = f"{m['delta']:+.4f}" if m.get("delta") is not None else "-"
        click.echo(f"  {metric:9} production {prod:>7}  model {new:>7}  delta {delta}")


def _show_conflicts(d: dict) -> None:
    conflicts = d["conflicts"]
    if not conflicts:
        return
    unlisted = d["conflicts_left"] - sum(1 for c in conflicts if c["take"] is None)  # > 0 only when the server cut the list
    click.echo(f"\nconflicts ({len(conflicts) + max(unlisted, 0)}, {d['conflicts_left']} unresolved):")
    rows = [
        [
            c["key"],
            _label(c["base_label"], c["base_removed"]),
            _label(c["target_label"], c["target_removed"]),
            _label(c["source_label"], c["source_removed"]),
            "-" if c["take"] is None else f"{c['take']} ({c['taken_by']})" if c["taken_by"] else c["take"],
        ]
        for c in conflicts
    ]
    _table(["KEY", "BASE", f"TARGET ({d['target']})", f"SOURCE ({d['source']})", "TAKE"], rows, indent="  ")
    if unlisted > 0:
        click.echo(f"  ... and {unlisted} more unresolved (the server lists {len(conflicts)}; resolve these to see the rest)")
    if d["conflicts_left"]:
        click.echo(f"  resolve each with: s2 mr resolve {d['dataset']} {d['number']} KEY --ours|--theirs")


@mr.command("show")
@click.argument("name")
@NUMBER
@AS_JSON
def mr_show(name: str, number: int, as_json: bool) -> None:
    """Show request N of NAME: branches, what merging would do now, its check, conflicts, comments."""
    d = backend().mr_get(name, number)
    if as_json:
        print_json(d)
        return
    click.echo(f"{d['id']}: {_one_line(d['title'])}  [{d['state']}]")
    click.echo(f"{d['source']} → {d['target']}, opened by {d['author']} on {_when(d['created_at'])}  ({_page(name, d['number'])})")
    if d["description"]:
        click.echo("\n" + "\n".join(f"    {line}" for line in d["description"].splitlines()) + "\n")
    if d["approved_by"]:
        click.echo(f"approved by {', '.join(d['approved_by'])}")
    if d["state"] == "merged":
        click.echo(f"merged by {d['merged_by']} as {d['merge_commit']}")
    elif d["state"] == "open":
        click.echo(f"{d['ahead']} commit(s) ahead of {d['target']}, {d['behind']} behind; mergeable: {d['mergeable']}")
        if d["check"]:
            _show_check(d["check"], d["source"])
        _show_conflicts(d)
    if d["comments"]:
        click.echo(f"\ncomments ({len(d['comments'])}):")
        for c in d["comments"]:
            click.echo(f"  {c['author']}, {_when(c['created_at'])}:")
            click.echo("\n".join(f"    {line}" for line in c["body"].splitlines()))


@mr.command("comment")
@click.argument("name")
@NUMBER
@click.argument("message")
@write_options(None, json_help=API_JSON)
def mr_comment(name: str, number: int, message: str, as_json: bool, quiet: bool) -> None:
    """Add comment MESSAGE to request N of NAME."""
    done = backend().mr_comment(name, number, message)
    emit(f"commented on {name}!{number} as {done['author']}", None, done, as_json=as_json, quiet=quiet)


@mr.command("approve")
@click.argument("name")
@NUMBER
@write_options(None, json_help=API_JSON)
def mr_approve(name: str, number: int, as_json: bool, quiet: bool) -> None:
    """Approve request N of NAME (engineers)."""
    done = backend().mr_approve(name, number)
    emit(f"{done['id']} approved by {', '.join(done['approved_by'])}", None, done, as_json=as_json, quiet=quiet)


@mr.command("resolve")
@click.argument("name")
@NUMBER
@click.argument("key")
@click.option("--ours", "take", flag_value="ours", help="Keep the target branch's row of KEY.")
@click.option("--theirs", "take", flag_value="theirs", help="Take the source branch's row of KEY.")
@write_options(None, json_help=API_JSON)
def mr_resolve(name: str, number: int, key: str, take: str | None, as_json: bool, quiet: bool) -> None:
    """Resolve the conflict on KEY of request N of NAME: --ours keeps the target's label, --theirs takes the source's."""
    if take is None:
        raise click.UsageError("say which side wins: --ours (keep the target's label) or --theirs (take the source's)")
    done = backend().mr_resolve(name, number, key, take)
    side = "target" if take == "ours" else "source"
    label = _label(done[f"{side}_label"], done[f"{side}_removed"])
    emit(f"{name}!{number}: {key} takes the {side}'s label, {label}", None, done, as_json=as_json, quiet=quiet)


@mr.command("merge")
@click.argument("name")
@NUMBER
@write_options("the new head of the target", json_help=API_JSON)
def mr_merge(name: str, number: int, as_json: bool, quiet: bool) -> None:
    """Merge request N of NAME with its resolutions (engineers); prints the new head of the target."""
    done = backend().mr_merge(name, number)
    emit(f"merged {done['id']}: {done['source']} → {done['target']}", done["merge_commit"], done, as_json=as_json, quiet=quiet)


@mr.command("close")
@click.argument("name")
@NUMBER
@write_options(None, json_help=API_JSON)
def mr_close(name: str, number: int, as_json: bool, quiet: bool) -> None:
    """Close request N of NAME without merging (its author or an engineer)."""
    done = backend().mr_close(name, number)
    emit(f"closed {done['id']}", None, done, as_json=as_json, quiet=quiet)
