"""`s2 branch` and `s2 tag`: create, list and delete the refs of a dataset, as git's verbs do."""

import sys

import click

from server.cli.common import print_json
from server.cli.main import cli
from server.client import backend


def header(line: str) -> None:
    """A listing's column header: part of the table at a terminal, on stderr when stdout is piped (data stays data)."""
    click.echo(line, err=not sys.stdout.isatty())


class DefaultGroup(click.Group):
    """A group whose first argument, when it names no subcommand, goes to the default one.

    `s2 branch NAME NEW` (create) and `s2 branch NAME` (list) keep working next to `s2 branch delete NAME B`.
    """

    def __init__(self, *args, default: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.default = default

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default, *args]
        return super().parse_args(ctx, args)


def _list_branches(name: str, as_json: bool) -> None:
    found = backend().list_branches(name)
    if as_json:
        print_json([b.model_dump() for b in found])
        return
    header("BRANCH\tHEAD")
    for b in found:
        click.echo(f"{b.name}\t{b.head[:12]}{'  (protected)' if b.protected else ''}")


@cli.group(cls=DefaultGroup, default="create", context_settings={"help_option_names": ["-h", "--help"]})
def branch() -> None:
    """Branches: `s2 branch NAME NEW [--from REV]` creates, `s2 branch NAME` or `list NAME` lists,
    `s2 branch delete NAME BRANCH` deletes."""


@branch.command("create")
@click.argument("name")
@click.argument("new", required=False)
@click.option("--from", "from_rev", metavar="REV", help="Where the branch starts (default: the default branch).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def branch_create(name: str, new: str | None, from_rev: str | None, as_json: bool) -> None:
    """Create branch NEW in dataset NAME, or list branches when NEW is omitted."""
    if new is None:
        _list_branches(name, as_json)
        return
    made = backend().create_branch(name, new, from_rev)
    if as_json:
        print_json(made.model_dump())
        return
    click.echo(f"created branch {made.name} at {made.head[:12]}")


@branch.command("list")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def branch_list(name: str, as_json: bool) -> None:
    """List the branches of dataset NAME and their heads."""
    _list_branches(name, as_json)


@branch.command("delete")
@click.argument("name")
@click.argument("branch_name", metavar="BRANCH")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: name, head, dropped_staged.")
def branch_delete(name: str, branch_name: str, as_json: bool) -> None:
    """Delete BRANCH of dataset NAME (its commits stay; the default and protected branches are refused)."""
    done = backend().delete_branch(name, branch_name)
    if as_json:
        print_json(done)
        return
    dropped = f"; dropped {done['dropped_staged']} staged edit(s)" if done["dropped_staged"] else ""
    click.echo(f"deleted branch {done['name']} (was {done['head'][:12]}){dropped}")
    click.echo(f"bring it back with: s2 branch {name} {done['name']} --from {done['head']}", err=True)


def _list_tags(name: str, as_json: bool) -> None:
    found = backend().list_tags(name)
    if as_json:
        print_json([{"name": n, "commit": c} for n, c in found])
        return
    header("TAG\tCOMMIT")
    for n, c in found:
        click.echo(f"{n}\t{c[:12]}")


@cli.group(cls=DefaultGroup, default="create", context_settings={"help_option_names": ["-h", "--help"]})
def tag() -> None:
    """Tags: `s2 tag NAME TAG REV` tags, `s2 tag NAME` or `list NAME` lists, `s2 tag delete NAME TAG` deletes."""


@tag.command("create")
@click.argument("name")
@click.argument("tag_name", metavar="TAG", required=False)
@click.argument("rev", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tag_create(name: str, tag_name: str | None, rev: str | None, as_json: bool) -> None:
    """Tag revision REV of dataset NAME as TAG (tags never move); list the tags when TAG is omitted."""
    if tag_name is None:
        _list_tags(name, as_json)
        return
    if rev is None:
        raise click.UsageError(f"give the revision to tag: s2 tag {name} {tag_name} REV (e.g. main or HEAD)")
    commit_id = backend().create_tag(name, tag_name, rev)
    if as_json:
        print_json({"name": tag_name, "commit": commit_id})
        return
    click.echo(f"tagged {commit_id[:12]} as {tag_name}")


@tag.command("list")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: [{name, commit}].")
def tag_list(name: str, as_json: bool) -> None:
    """List the tags of dataset NAME and the commits they name."""
    _list_tags(name, as_json)


@tag.command("delete")
@click.argument("name")
@click.argument("tag_name", metavar="TAG")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: name, commit.")
def tag_delete(name: str, tag_name: str, as_json: bool) -> None:
    """Delete TAG of dataset NAME (the commit it names stays)."""
    done = backend().delete_tag(name, tag_name)
    if as_json:
        print_json(done)
        return
    click.echo(f"deleted tag {done['name']} (was {done['commit'][:12]})")
