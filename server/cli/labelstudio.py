"""`s2 labelstudio`: a dataset branch linked to a Label Studio project; push examples as tasks, pull annotations back."""

import sys

import click

from server.cli.common import emit, listing, print_json, write_options
from server.cli.main import cli
from server.client import backend

SHOWN = 10  # the most conflicts, disagreements and invalid choices `pull` lists (--json has up to 100 of each)
STATES = ("conflict", "invalid", "disputed")


@cli.group("labelstudio")
def labelstudio() -> None:
    """Label Studio as a labeling front end: `connect` links a dataset branch to a project, `push` sends examples
    as tasks (with the current model's guesses), `pull` commits the annotations back with their provenance.

    Images reach Label Studio's browser at signed, expiring URLs of the s2 server: set S2_PUBLIC_URL to the
    address Label Studio reaches it at (also where its webhook calls s2).
    """


def _when(stamp) -> str:  # noqa: ANN001  (a datetime locally, ISO 8601 text from a server, or None)
    if stamp is None:
        return "-"
    if isinstance(stamp, str):
        return stamp[:19].replace("T", " ") + " UTC"
    return f"{stamp:%Y-%m-%d %H:%M:%S} UTC"


def _waiting(what: str, quiet: bool) -> None:
    """In remote mode a push or pull is one request with no progress to show: say so while it runs (on a terminal)."""
    if backend().remote and not quiet and sys.stderr.isatty():
        click.echo(f"{what} on the s2 server (one request: no progress shown) ...", err=True)


@labelstudio.command("connect")
@click.argument("name")
@click.option("--url", required=True, help="Label Studio's address, http(s)://host[:port].")
@click.option(
    "--token",
    envvar=["S2_LABEL_STUDIO_TOKEN", "LABEL_STUDIO_API_KEY"],
    help="A Label Studio API token (Account & Settings); default: S2_LABEL_STUDIO_TOKEN, else LABEL_STUDIO_API_KEY.",
)
@click.option("--branch", "-b", help="The branch to push from and pull into (default: the default branch).")
@click.option("--project", type=click.IntRange(1, 2**31 - 1), help="Link an existing project (default: make one for the dataset).")
@click.option("--title", help="A new project's title (default: 's2 NAME (BRANCH)').")
@click.option("--webhook", is_flag=True, help="Also register a webhook: annotations land in s2 within seconds (needs S2_PUBLIC_URL).")
@write_options("the Label Studio project id", json_help="Print JSON: the link (as `s2 labelstudio status --json`).")
def connect(
    name: str,
    url: str,
    token: str | None,
    branch: str | None,
    project: int | None,
    title: str | None,
    webhook: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Link dataset NAME (a branch of it) to a Label Studio project; connecting again keeps the linked project."""
    if not token:
        raise click.UsageError("give a Label Studio API token: --token T, or S2_LABEL_STUDIO_TOKEN / LABEL_STUDIO_API_KEY")
    done = backend().labelstudio_connect(name, url, token, branch, project, title, webhook)
    summary = (
        f"linked {name} (branch {done['branch']}) to Label Studio project {done['project']} '{done['title']}': {done['project_url']}"
        + ("; its webhook calls s2" if done["webhook"] else "")
    )
    emit(summary, done["project"], done, as_json=as_json, quiet=quiet)


@labelstudio.command("push")
@click.argument("name")
@click.option(
    "--queue", "-Q", default="unlabeled", show_default=True, help="Which examples: a labeling queue (unlabeled, all, a review queue)."
)
@click.option("--rev", help="Push a revision's examples instead of the linked branch's (with --queue unlabeled or all).")
@click.option("--limit", "-n", type=click.IntRange(1, 10_000_000), help="Push at most this many.")
@write_options(None, json_help="Print JSON: the link's status and pushed, with_predictions, recovered.")
def push(name: str, queue: str, rev: str | None, limit: int | None, as_json: bool, quiet: bool) -> None:
    """Send examples of NAME to its Label Studio project as tasks, each pre-annotated with the current model's guess.

    An example is pushed once: running it again sends only what is new (and finds the tasks of a push that was
    interrupted, so none is created twice).
    """
    _waiting(f"pushing {name} to Label Studio", quiet)
    done = backend().labelstudio_push(name, queue, rev, limit)
    summary = (
        f"pushed {done['pushed']} task(s) of {name} to Label Studio project {done['project']} "
        f"({done['with_predictions']} with the model's guess"
        + (f", {done['recovered']} recovered from an interrupted push" if done["recovered"] else "")
        + f"); {done['tasks']} in all: {done['project_url']}"
    )
    emit(summary, None, done, as_json=as_json, quiet=quiet)


def _not_applied(done: dict, name: str) -> list[str]:
    """Readable lines of what a pull did not apply: up to SHOWN conflicts, disagreements and invalid choices."""
    from server.engine.consensus import choices_text

    lines = []
    for c in done["conflicts_list"][:SHOWN]:
        lines.append(
            f"conflict {c['key']} (task {c['task']}): relabeled {c['s2']!r} in s2 since the push; "
            f"Label Studio says {c['labelstudio']!r} ({choices_text(c['choices'])})"
        )
    for d in done["disputed_list"][:SHOWN]:
        lines.append(f"disputed {d['key']} (task {d['task']}): {choices_text(d['choices'])}")
    for i in done["invalid_list"][:SHOWN]:
        lines.append(
            f"invalid  {i['key']} (task {i['task']}, annotation {i['annotation']}): {i['annotator']} chose {i['choice']!r}, "
            f"not a label of {name}"
        )
    for kind, state in (("conflicts", "conflict"), ("disputed", "disputed"), ("invalid", "invalid")):
        if done[kind] > SHOWN:
            lines.append(f"... {done[kind] - SHOWN} more {kind}: s2 labelstudio tasks {name} --state {state}")
    return lines


@labelstudio.command("pull")
@click.argument("name")
@write_options("the commit id", json_help="Print JSON: the pull's report (counts, lists, the link's status).")
def pull(name: str, as_json: bool, quiet: bool) -> None:
    """Commit the annotations of NAME's Label Studio project on the linked branch, each with its provenance.

    Several annotators of a task: the majority's label, else the example waits in the `disputed` review queue.
    An example relabeled in s2 since it was pushed is a conflict: listed, never overwritten. Prints what was
    not applied, then the commit id (last line).
    """
    _waiting(f"pulling {name} from Label Studio", quiet)
    done = backend().labelstudio_pull(name)
    if as_json:
        print_json(done)
        return
    counts = ", ".join(
        f"{done[k]} {what}"
        for k, what in (
            ("applied", "applied"),
            ("agreed", "agreed"),
            ("disputed", "disputed"),
            ("conflicts", "conflict(s)"),
            ("invalid", "invalid"),
            ("skipped", "skipped"),
            ("unchanged", "unchanged"),
        )
    )
    commit = done["commit"]
    if not quiet:
        click.echo(
            f"pulled Label Studio project {done['project']} into {name}: {counts}; "
            + (f"commit {commit}" if commit else "no commit (nothing changed)"),
            err=True,
        )
        for line in _not_applied(done, name):
            click.echo(line)
    if commit:
        click.echo(commit)


@labelstudio.command("status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the link (the token is never shown).")
def status(name: str, as_json: bool) -> None:
    """NAME's link to Label Studio: project, branch, webhook, the last push and pull, pushed examples by state."""
    found = backend().labelstudio_status(name)
    if as_json:
        print_json(found)
        return
    last = found["last_pull"] or {}
    lines = [
        ("project", f"{found['project']} '{found['title']}': {found['project_url']}"),
        ("branch", found["branch"]),
        ("webhook", "on" if found["webhook"] else "off (pull with: s2 labelstudio pull " + name + ")"),
        ("linked", f"{_when(found['connected_at'])} by {found['connected_by']}"),
        ("pushed", f"{found['tasks']} task(s), last {_when(found['last_push_at'])}"),
        ("pulled", _when(found["last_pull_at"]) + (f", commit {last['commit']}" if last.get("commit") else "")),
        ("states", ", ".join(f"{n} {state}" for state, n in sorted(found["states"].items())) or "-"),
    ]
    click.echo(f"{name}: linked to Label Studio at {found['url']}")
    for key, value in lines:
        click.echo(f"  {key:8} {value}")


@labelstudio.command("tasks")
@click.argument("name")
@click.option("--state", type=click.Choice(STATES), default="conflict", show_default=True, help="Which pushed examples.")
@click.option("-n", "--limit", default=100, show_default=True, type=click.IntRange(1, 1000), help="How many, in key order.")
@click.option("--json", "as_json", is_flag=True, help='Print JSON: [{"key", "task", "note", "synced_at"}].')
def tasks(name: str, state: str, limit: int, as_json: bool) -> None:
    """Pushed examples of NAME in one state, with why: conflict (relabeled in s2 since), invalid (a choice that is no
    label), disputed (annotators disagreed: settle with `s2 queue resolve NAME KEY LABEL`)."""
    found = backend().labelstudio_tasks(name, state, limit)
    if as_json:
        print_json(found)
        return
    listing(["KEY", "TASK", "WHY"], [[t["key"], t["task"], t["note"]] for t in found])


@labelstudio.command("webhook")
@click.argument("name")
@click.option("--on/--off", "on", required=True, help="Register the project's webhook to s2 (a new secret), or delete it.")
@write_options(None, json_help="Print JSON: the link.")
def webhook(name: str, on: bool, as_json: bool, quiet: bool) -> None:
    """Have Label Studio call s2 when an annotation is made (--on: it lands within seconds, no pull needed), or stop (--off)."""
    done = backend().labelstudio_webhook(name, on)
    summary = (
        f"Label Studio project {done['project']} calls s2 on each annotation of {name}"
        if on
        else f"Label Studio project {done['project']} no longer calls s2 for {name} (pull with: s2 labelstudio pull {name})"
    )
    emit(summary, None, done, as_json=as_json, quiet=quiet)


@labelstudio.command("disconnect")
@click.argument("name")
@click.option("--force", is_flag=True, help="Unlink even when Label Studio cannot be reached to delete the webhook.")
@write_options(None, json_help='Print JSON: {"dataset", "project", "url", "tasks_forgotten", "webhook_removed"}.')
def disconnect(name: str, force: bool, as_json: bool, quiet: bool) -> None:
    """Unlink NAME from Label Studio (its webhook is deleted there first); nothing in Label Studio or in NAME is deleted."""
    done = backend().labelstudio_disconnect(name, force)
    summary = (
        f"unlinked {name} from Label Studio project {done['project']} at {done['url']} "
        f"(forgot {done['tasks_forgotten']} pushed task(s)" + ("; deleted its webhook" if done["webhook_removed"] else "") + ")"
    )
    emit(summary, None, done, as_json=as_json, quiet=quiet)
