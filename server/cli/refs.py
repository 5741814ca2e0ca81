"""`s2 branch` and `s2 tag`: create, list and delete the refs of a dataset, as git's verbs do."""

import click

from server.cli.common import emit, header, print_json, write_options
from server.cli.main import cli
from server.client import backend


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
@write_options("the commit the branch starts at")
def branch_create(name: str, new: str | None, from_rev: str | None, as_json: bool, quiet: bool) -> None:
    """Create branch NEW in dataset NAME (prints the commit it starts at), or list branches when NEW is omitted."""
    if new is None:
        _list_branches(name, as_json)
        return
    made = backend().create_branch(name, new, from_rev)
    emit(f"created branch {made.name} at {made.head[:12]}", made.head, made.model_dump(), as_json=as_json, quiet=quiet)


@branch.command("list")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def branch_list(name: str, as_json: bool) -> None:
    """List the branches of dataset NAME and their heads."""
    _list_branches(name, as_json)


@branch.command("delete")
@click.argument("name")
@click.argument("branch_name", metavar="BRANCH")
@write_options("the commit it pointed at", json_help="Print JSON: name, head, dropped_staged.")
def branch_delete(name: str, branch_name: str, as_json: bool, quiet: bool) -> None:
    """Delete BRANCH of dataset NAME (its commits stay; the default and protected branches are refused); prints its head."""
    done = backend().delete_branch(name, branch_name)
    dropped = f"; dropped {done['dropped_staged']} staged edit(s)" if done["dropped_staged"] else ""
    summary = (
        f"deleted branch {done['name']} (was {done['head'][:12]}){dropped}\n"
        f"bring it back with: s2 branch {name} {done['name']} --from {done['head']}"
    )
    emit(summary, done["head"], done, as_json=as_json, quiet=quiet)


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
@write_options("the tagged commit", json_help="Print JSON: name, commit.")
def tag_create(name: str, tag_name: str | None, rev: str | None, as_json: bool, quiet: bool) -> None:
    """Tag revision REV of dataset NAME as TAG (tags never move; prints the commit); list the tags when TAG is omitted."""
    if tag_name is None:
        _list_tags(name, as_json)
        return
    if rev is None:
        raise click.UsageError(f"give the revision to tag: s2 tag {name} {tag_name} REV (e.g. main or HEAD)")
    commit_id = backend().create_tag(name, tag_name, rev)
    emit(f"tagged {commit_id[:12]} as {tag_name}", commit_id, {"name": tag_name, "commit": commit_id}, as_json=as_json, quiet=quiet)


@tag.command("list")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: [{name, commit}].")
def tag_list(name: str, as_json: bool) -> None:
    """List the tags of dataset NAME and the commits they name."""
    _list_tags(name, as_json)


@tag.command("delete")
@click.argument("name")
@click.argument("tag_name", metavar="TAG")
@write_options("the commit it named", json_help="Print JSON: name, commit.")
def tag_delete(name: str, tag_name: str, as_json: bool, quiet: bool) -> None:
    """Delete TAG of dataset NAME (the commit it names stays; it is printed)."""
    done = backend().delete_tag(name, tag_name)
    emit(f"deleted tag {done['name']} (was {done['commit'][:12]})", done["commit"], done, as_json=as_json, quiet=quiet)
