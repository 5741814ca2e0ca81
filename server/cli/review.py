"""`s2 review`: review queues, the examples put before labelers for a second look."""

import csv
import sys

import click

from server.cli.common import emit, fail, listing, print_json, write_options
from server.cli.main import cli
from server.client import backend

QUEUE = click.option("--queue", "-Q", default="review", show_default=True, help="Which review queue of the dataset.")


@cli.group()
def review() -> None:
    """Fill, list and empty review queues (labelers open them in the workbench: /d/NAME/label?queue=Q)."""


def _read_items(path: str, suggestions: dict[str, str]) -> list[tuple[str, float, str | None]]:
    """(key, score, reason) rows of a CSV with a header: key, and optional score, reason and suggested (into suggestions)."""
    source = sys.stdin if path == "-" else open(path, newline="", encoding="utf-8")  # noqa: SIM115 (closed below)
    try:
        reader = csv.DictReader(source)
        if not reader.fieldnames or "key" not in reader.fieldnames:
            fail(f"{path}: needs a header row with a 'key' column (and optional 'score', 'reason', 'suggested')")
        items = []
        for line, row in enumerate(reader, 2):
            try:
                score = float(row.get("score") or 0)
            except ValueError:
                fail(f"{path}, line {line}: score {row.get('score')!r} is not a number")
            items.append((row["key"], score, row.get("reason") or None))
            if row.get("suggested"):
                suggestions[row["key"]] = row["suggested"]
        return items
    finally:
        if source is not sys.stdin:
            source.close()


@review.command("add")
@click.argument("name")
@click.argument("keys", nargs=-1)
@click.option("--file", "-f", "path", help="A CSV with columns key[,score][,reason][,suggested] ('-': standard input).")
@click.option("--score", type=float, default=0.0, show_default=True, help="The score of KEYS given as arguments (higher first).")
@click.option("--reason", help="Why KEYS given as arguments are queued (shown to labelers).")
@click.option("--suggest", metavar="LABEL", help="A label to suggest for KEYS given as arguments (labelers accept it, or keep theirs).")
@QUEUE
@write_options(None, json_help='Print JSON: {"queue", "added", "updated"}.')
def review_add(
    name: str,
    keys: tuple[str, ...],
    path: str | None,
    score: float,
    reason: str | None,
    suggest: str | None,
    queue: str,
    as_json: bool,
    quiet: bool,
) -> None:
    """Queue examples of NAME for review: KEYS, or a CSV with --file. A queued key is re-scored."""
    suggestions = {k: suggest for k in keys} if suggest else {}
    items = [(k, score, reason) for k in keys] + (_read_items(path, suggestions) if path else [])
    if not items:
        fail("nothing to queue: give KEYS or --file FILE")
    added, updated = backend().review_add(name, queue, items, suggestions)
    data = {"queue": queue, "added": added, "updated": updated}
    emit(f"queue '{queue}' of {name}: {added} added, {updated} re-scored", None, data, as_json=as_json, quiet=quiet)


@review.command("list")
@click.argument("name")
@QUEUE
@click.option("-n", "--limit", default=50, show_default=True, help="How many, highest score first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def review_list(name: str, queue: str, limit: int, as_json: bool) -> None:
    """List a review queue of NAME, highest score first."""
    found = backend().review_list(name, queue, limit)
    if as_json:
        print_json(found)
        return
    listing(["SCORE", "KEY", "REASON"], [[f"{item['score']:.4g}", item["key"], item.get("reason") or ""] for item in found])


@review.command("clear")
@click.argument("name")
@click.argument("keys", nargs=-1)
@QUEUE
@write_options(None, json_help='Print JSON: {"queue", "removed"}.')
def review_clear(name: str, keys: tuple[str, ...], queue: str, as_json: bool, quiet: bool) -> None:
    """Take KEYS (or, without KEYS, every key) out of a review queue of NAME."""
    removed = backend().review_remove(name, queue, list(keys) or None)
    emit(f"queue '{queue}' of {name}: {removed} removed", None, {"queue": queue, "removed": removed}, as_json=as_json, quiet=quiet)
