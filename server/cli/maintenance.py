"""`s2 fsck`, `s2 gc`: checking the store, and reclaiming what nothing references."""

import re

import click

from server.cli.common import emit, fail, print_json, write_options
from server.cli.main import cli
from server.client import backend

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: str) -> float:
    """A duration like 90, 90s, 15m, 1h or 2d, in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration: use a number of seconds, or 15m, 1h, 2d")
    value = float(match[1]) * UNITS[match[2] or "s"]
    if value > 10 * 365 * 86400:
        raise click.BadParameter(f"{text!r} is longer than ten years")
    return value


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def fsck(as_json: bool) -> None:
    """Verify every blob against its hash and every referenced blob's presence; exit 1 on any fault.

    Also lists what killed processes left behind (partial blob writes, upload and spill folders):
    not damage, `s2 gc` removes them.
    """
    report = backend().fsck()
    if as_json:
        print_json(report)
    else:
        for blob_id in report["corrupt"]:
            click.echo(f"corrupt: {blob_id}")
        for blob_id in report["missing"]:
            click.echo(f"missing: {blob_id}")
        for item in report.get("leftovers", []):
            click.echo(f"leftover {item['kind']}: {item['path']} ({_size(item['bytes'])}; s2 gc removes it)")
        click.echo(f"checked {report['checked']} blobs: {len(report['corrupt'])} corrupt, {len(report['missing'])} missing")
    if report["corrupt"] or report["missing"]:
        fail(f"store is damaged: {len(report['corrupt'])} corrupt and {len(report['missing'])} missing blob(s)")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only report what would be freed.")
@click.option("--grace", metavar="DURATION", help="Leave alone what is younger than this: 90s, 15m, 1h (default S2_GC_GRACE_S, 1h).")
@write_options(None)
def gc(dry_run: bool, grace: str | None, as_json: bool, quiet: bool) -> None:
    """Delete blobs nothing references (inputs of failed imports) and what killed processes left behind.

    Every input of every revision, every checkpoint and every model's files are kept. Nothing
    younger than the grace period, or than the oldest import still running, is touched, so gc
    is safe beside running imports.
    """
    report = backend().gc(None if grace is None else seconds(grace), dry_run)
    verb = "would free" if report["dry_run"] else "freed"
    summary = (
        f"{verb} {_size(report['freed_bytes'])}: {report['blobs']} unreferenced blob(s) ({_size(report['blob_bytes'])}), "
        f"{report['temp_files']} partial write(s), {report['folders']} leftover folder(s); "
        f"nothing modified after {report['cutoff']} was considered"
    )
    emit(summary, None, report, as_json=as_json, quiet=quiet)
