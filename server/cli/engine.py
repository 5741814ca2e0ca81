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


QUEUE_NAME = click.option("--queue", "-Q", "queue_name", required=True, help="The review queue.")


@queue.command("consensus")
@click.argument("name")
@QUEUE_NAME
@click.option("--votes", type=click.IntRange(2, 20), required=True, help="Independent labels each example needs.")
@click.option("--branch", "-b", help="Where agreed labels are staged (default: the default branch).")
@write_options(None, json_help='Print JSON: {"dataset", "queue", "votes", "branch"}.')
def consensus(name: str, queue_name: str, votes: int, branch: str | None, as_json: bool, quiet: bool) -> None:
    """Make a review queue of NAME ask for N independent labels per example (labelers vote with `s2 queue vote`)."""
    done = backend().set_consensus(name, queue_name, votes, branch)
    emit(
        f"queue '{queue_name}' of {name} asks for {votes} labels per example; agreed ones are staged on {done['branch']}",
        None,
        done,
        as_json=as_json,
        quiet=quiet,
    )


@queue.command("vote")
@click.argument("name")
@click.argument("key")
@click.argument("label")
@QUEUE_NAME
@write_options(None, json_help='Print JSON: {"key", "votes", "required", "settled"}.')
def vote(name: str, key: str, label: str, queue_name: str, as_json: bool, quiet: bool) -> None:
    """Vote LABEL for example KEY of a consensus queue (the others' votes stay hidden until it is settled)."""
    done = backend().vote(name, queue_name, key, label)
    settled = done["settled"]
    if settled is None:
        summary = f"{key}: {done['votes']} of {done['required']} votes"
    elif settled["label"] is None:
        summary = f"{key}: the labelers disagree; it waits in the disputed queue (s2 queue resolve {name} {key} LABEL)"
    else:
        summary = f"{key}: agreed on {settled['label']!r}, staged ({settled['source']})"
    emit(summary, None, done, as_json=as_json, quiet=quiet)


@queue.command("resolve")
@click.argument("name")
@click.argument("key")
@click.argument("label")
@click.option("--branch", "-b", help="Stage on this branch (default: the consensus queue's).")
@write_options(None, json_help='Print JSON: {"key", "label", "source"}.')
def resolve(name: str, key: str, label: str, branch: str | None, as_json: bool, quiet: bool) -> None:
    """Pick the label of a disputed example (its labelers disagreed): staged with every labeler's choice."""
    done = backend().resolve_dispute(name, key, label, branch)
    emit(f"{key}: staged {label!r} ({done['source']})", None, done, as_json=as_json, quiet=quiet)


@queue.command("agreement")
@click.argument("name")
@QUEUE_NAME
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def agreement(name: str, queue_name: str, as_json: bool) -> None:
    """How far the labelers of a consensus queue agree: Krippendorff's alpha, Fleiss' and Cohen's kappa, per class and labeler."""
    found = backend().agreement(name, queue_name)
    if as_json:
        print_json(found)
        return

    def fmt(v):  # noqa: ANN001, ANN202
        return "-" if v is None else f"{v:.3f}"

    click.echo(f"{found['items']} example(s) with two or more votes in '{found['queue']}'", err=True)
    rows = [
        ["Krippendorff's alpha", fmt(found["krippendorff_alpha"])],
        [f"Fleiss' kappa ({found['fleiss_raters']} raters)", fmt(found["fleiss_kappa"])],
    ]
    rows += [[f"Cohen's kappa {c['a']} / {c['b']}", fmt(c["kappa"])] for c in found["cohen_kappa"]]
    rows += [[f"agreement on class {c}", fmt(v)] for c, v in found["per_class"].items() if v is not None]
    rows += [[f"{who} agrees with the verdict", fmt(v)] for who, v in found["per_labeler"].items()]
    listing(["STATISTIC", "VALUE"], rows)


@cli.group("slice")
def slice_() -> None:
    """Data unit tests: named slices of a dataset with a minimum accuracy; every model is scored on each,
    and a model failing one is refused promotion to production (unless --force)."""


@slice_.command("add")
@click.argument("name")
@click.argument("slice_name", metavar="SLICE")
@click.option("--keys", help="Comma-separated keys of the slice's examples.")
@click.option("--keys-file", type=click.File("r"), help="A file of keys, one per line ('-': standard input).")
@click.option("--query", help="label = 3, label != 3, label in (3, 5), meta.source = web; clauses joined by 'and'.")
@click.option("--rev", help="Read the slice at this revision (default: each model's own commit).")
@click.option("--min", "minimum", type=click.FloatRange(0, 1), required=True, help="The accuracy a model must reach on it.")
@write_options(None, json_help="Print JSON: the slice, with its newest model's score.")
def slice_add(
    name: str, slice_name: str, keys: str | None, keys_file, query: str | None, rev: str | None, minimum: float, as_json: bool, quiet: bool
) -> None:  # noqa: ANN001
    """Add (or replace) data unit test SLICE of NAME; the analysed models are scored on it at once."""
    listed = [k for k in (keys or "").split(",") if k] + ([line.strip() for line in keys_file if line.strip()] if keys_file else [])
    done = backend().add_slice(name, slice_name, listed or None, query, rev, minimum)
    latest = done["latest"]
    said = f"slice '{slice_name}' of {name} (minimum {minimum:g})" + (
        f": {latest['model']} {'passes' if latest['passed'] else 'FAILS'} with {latest['score'] if latest['score'] is None else round(latest['score'], 4)}"
        if latest
        else ": no analysed model yet"
    )
    emit(said, None, done, as_json=as_json, quiet=quiet)


@slice_.command("list")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def slice_list(name: str, as_json: bool) -> None:
    """NAME's data unit tests, each with its newest model's score."""
    found = backend().list_slices(name)
    if as_json:
        print_json(found)
        return
    rows = []
    for s in found:
        what = s["query"] or f"{s['keys']} key(s)"
        latest = s["latest"]
        result = (
            "-"
            if latest is None
            else ("pass" if latest["passed"] else "FAIL")
            + (f" ({latest['score']:.4f}, {latest['model']})" if latest["score"] is not None else f" (nothing scored, {latest['model']})")
        )
        rows.append([s["name"], what, f"{s['minimum']:g}", (s["rev"] or "")[:12] or "-", result])
    listing(["SLICE", "WHAT", "MINIMUM", "REV", "NEWEST MODEL"], rows)


@slice_.command("rm")
@click.argument("name")
@click.argument("slice_name", metavar="SLICE")
@write_options(None, json_help='Print JSON: {"removed"}.')
def slice_rm(name: str, slice_name: str, as_json: bool, quiet: bool) -> None:
    """Remove data unit test SLICE of NAME (and its scores)."""
    backend().remove_slice(name, slice_name)
    emit(f"removed slice '{slice_name}' of {name}", None, {"removed": slice_name}, as_json=as_json, quiet=quiet)
