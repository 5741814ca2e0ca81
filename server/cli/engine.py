"""`s2 queue`: the data engine's queues, and accepting or keeping their suggestions."""

import click

from server.cli.common import emit, listing, print_json, write_options
from server.cli.main import cli
from server.client import backend

KINDS = {"label-errors": "label-errors", "uncertain": "uncertain", "review": "review"}


class _QueueGroup(click.Group):
    """`s2 queue NAME ...` shows a queue; `s2 queue accept|keep ...` acts on it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=_QueueGroup)
def queue() -> None:
    """The data engine's queues: `s2 queue NAME --kind label-errors|uncertain|review`, then accept or keep.

    After each model version the workers rank the dataset's examples: label-errors (the given
    label the model, out of sample, confidently disagrees with, and the label it suggests) and
    uncertain (unlabeled examples to label next, uncertain and diverse). Labelers see them in
    the workbench's review queue (/d/NAME/label?queue=label-errors).
    """


KIND = click.option("--kind", "-k", default="label-errors", show_default=True, type=click.Choice(list(KINDS)), help="Which queue.")


@queue.command("show")
@click.argument("name")
@KIND
@click.option("-n", "--limit", default=50, show_default=True, type=click.IntRange(1, 10_000), help="How many, most likely first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the items with their suggestions.")
def show(name: str, kind: str, limit: int, as_json: bool) -> None:
    """List a queue of NAME, most likely first (label-errors: the given label, the suggestion and its confidence)."""
    items = backend().review_list(name, KINDS[kind], limit)
    if as_json:
        print_json(items)
        return
    if not items:
        click.echo(f"s2: the {kind} queue of {name} is empty (it fills after a model version is analysed)", err=True)
        return
    listing(
        ["KEY", "GIVEN", "SUGGESTED", "CONFIDENCE", "REASON"],
        [
            [
                i["key"],
                i.get("given"),
                i.get("suggested"),
                None if i.get("confidence") is None else f"{i['confidence']:.2f}",
                i.get("reason") or "",
            ]
            for i in items
        ],
    )


@queue.command("neighbours")
@click.argument("name")
@click.argument("key")
@KIND
@click.option("-n", "--count", "count", default=5, show_default=True, type=click.IntRange(1, 50), help="How many, most alike first.")
@click.option("--json", "as_json", is_flag=True, help='Print JSON: [{"key", "label", "similarity"}].')
def neighbours(name: str, key: str, kind: str, count: int, as_json: bool) -> None:
    """The examples most like queued KEY, by the embeddings of the model that queued it, with their labels then."""
    found = backend().queue_neighbours(name, KINDS[kind], key, count)
    if as_json:
        print_json(found)
        return
    listing(["KEY", "LABEL", "SIMILARITY"], [[n["key"], n["label"], f"{n['similarity']:.3f}"] for n in found])


@queue.command("accept")
@click.argument("name")
@click.argument("keys", nargs=-1, required=True)
@KIND
@click.option("--branch", "-b", help="Branch to stage on (default: the default branch).")
@write_options("the keys staged, one per line", json_help='Print JSON: [{"key", "label", "was", "source"}].')
def accept(name: str, keys: tuple[str, ...], kind: str, branch: str | None, as_json: bool, quiet: bool) -> None:
    """Stage the suggested labels of KEYS (with their provenance); commit them with `s2 commit`."""
    done = backend().accept_suggestions(name, KINDS[kind], list(keys), branch)
    if as_json:
        print_json(done)
        return
    if not quiet:
        for a in done:
            click.echo(f"staged {a['key']}: {a['was']!r} -> {a['label']!r} ({a['source']})", err=True)
    for a in done:
        click.echo(a["key"])


@queue.command("keep")
@click.argument("name")
@click.argument("keys", nargs=-1, required=True)
@KIND
@write_options(None, json_help='Print JSON: {"kept"}.')
def keep(name: str, keys: tuple[str, ...], kind: str, as_json: bool, quiet: bool) -> None:
    """Keep the given labels of KEYS: the engine does not suggest another label for them again."""
    kept = backend().keep_labels(name, KINDS[kind], list(keys))
    emit(f"kept the labels of {kept} example(s) of {name}; they leave the {kind} queue", None, {"kept": kept}, as_json=as_json, quiet=quiet)


@cli.command("lineage")
@click.argument("target")
@click.argument("key", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def lineage(target: str, key: str | None, as_json: bool) -> None:
    """Lineage both ways: `s2 lineage NAME KEY`, the models that trained on example KEY and its label for each;
    `s2 lineage NAME@N`, the commits whose edits moved model N's predictions against the model before it."""
    if key is not None:
        found = backend().example_lineage(target, key)
        if as_json:
            print_json(found)
            return
        listing(
            ["MODEL", "COMMIT", "LABEL THEN", "SIDE", "TRAINED ON IT"],
            [
                [e["model"], e["commit"][:12], e["label"] if e["present"] else "(absent)", e["side"], "yes" if e["trained_on"] else "no"]
                for e in found
            ],
        )
        return
    if "@" not in target:
        raise click.UsageError("give NAME KEY (an example's lineage) or a model NAME@N (what moved its predictions)")
    found = backend().model_lineage(target)
    if as_json:
        print_json(found)
        return
    if found["before"] is None:
        click.echo(f"s2: {found['model']} is the dataset's first model: nothing before it to compare with", err=True)
        return
    click.echo(f"{found['model']} against {found['before']}: {found['moved']} example(s) predicted differently", err=True)
    listing(
        ["COMMIT", "MOVED", "EDITED", "AUTHOR", "MESSAGE", "KEYS"],
        [
            [
                c["commit"][:12],
                c["moved"],
                c["edited"],
                c["author"],
                c["message"],
                ", ".join(c["keys"][:5]) + (" ..." if c["moved"] > 5 else ""),
            ]
            for c in found["commits"]
        ],
    )
