"""`s2 dataset watch|pin-eval`, `train`, `runs`, `cancel`, `models`, `compare`, `promote`, `worker`."""

import json
import sys
from pathlib import Path

import click

from server.cli.common import fail, print_json
from server.cli.datasets import dataset
from server.cli.main import cli
from server.client import backend


def _read_spec(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        spec = json.loads(path.read_text())
    except OSError as exc:
        fail(f"cannot read spec file '{path}': {exc.strerror or exc}")
    except json.JSONDecodeError as exc:
        fail(f"spec file '{path}' is not valid JSON: {exc.msg} at line {exc.lineno}")
    if not isinstance(spec, dict):
        fail(f"spec file '{path}' must hold a JSON object")
    return spec


SPEC_OPTION = click.option("--spec", "spec_file", type=click.Path(path_type=Path), help="JSON training spec (template, epochs, ...).")


@dataset.command("watch")
@click.argument("name")
@click.option("--branch", "-b", default="main", show_default=True, help="Branch whose every new head is trained.")
@SPEC_OPTION
@click.option("--off", is_flag=True, help="Stop watching the branch.")
def dataset_watch(name: str, branch: str, spec_file: Path | None, off: bool) -> None:
    """Train every commit on a branch from now on."""
    if off:
        backend().unwatch(name, branch)
        click.echo(f"stopped watching {name}/{branch}")
        return
    spec = _read_spec(spec_file)
    rule = backend().watch(name, branch, spec)
    click.echo(f"watching {name}/{branch}: every new commit trains {rule['spec']['template']}")
    queue = "gpu" if rule["spec"].get("accelerator") == "gpu" else "cpu"
    try:
        listening = backend().workers_listening(queue)
    except Exception:  # noqa: BLE001  (best effort, as for a run)
        return
    if listening.get("workers", 0) == 0:
        click.echo(
            f"s2: warning: no worker is listening on queue '{queue}': the runs of {name}/{branch} will wait until one starts "
            f"(start one with: s2 worker --queue {queue})",
            err=True,
        )


@dataset.command("pin-eval")
@click.argument("name")
@click.argument("eval_name", metavar="EVAL")
@click.option("--rev", required=True, help="Revision of the evaluation data (pinned to its commit).")
@click.option("--from-dataset", "source", help="Take the examples from this dataset (same labels) instead.")
@click.option("--all", "all_examples", is_flag=True, help="Use every example of the revision, not only its eval split.")
def dataset_pin_eval(name: str, eval_name: str, rev: str, source: str | None, all_examples: bool) -> None:
    """Pin evaluation set EVAL: every model of NAME is scored on it, so versions stay comparable."""
    pin = backend().pin_eval(name, eval_name, rev, source, not all_examples and source is None)
    click.echo(f"pinned eval set {eval_name}: {pin['source']}@{pin['commit'][:12]}")


def _progress_line(run) -> str:
    p = run.progress or {}
    if run.state == "queued":
        return f"run {run.id}: queued on '{run.queue}'"
    if not p:
        return f"run {run.id}: {run.state} on {run.worker_host or '?'}"
    eta = f", eta {p['eta_s']:.0f}s" if p.get("eta_s") is not None else ""
    loss = f", loss {p['loss']:.4f}" if p.get("loss") is not None else ""
    return f"run {run.id}: epoch {p.get('epoch', 0)}/{p.get('epochs', '?')}, step {p.get('step', 0)}/{p.get('total_steps', '?')}{loss}{eta}"


def wait_for_run(run_id: int):
    """Follow a run until it ends, showing its progress on stderr; returns its final view."""
    shown, tty, run = "", sys.stderr.isatty(), None
    for run in backend().follow_run(run_id):
        line = _progress_line(run)
        if line != shown:
            click.echo(("\r\033[K" if tty else "") + line, err=True, nl=not tty)
            shown = line
    if tty:
        click.echo("", err=True)
    return run if run is not None and run.state in ("succeeded", "failed", "cancelled") else backend().get_run(run_id)


def warn_if_no_worker(run) -> None:  # noqa: ANN001  (a RunRead)
    """Say at once, on stderr, when no live worker listens on the run's queue: it would wait for ever, silently."""
    if run.state != "queued":
        return
    try:
        listening = backend().workers_listening(run.queue)
    except Exception:  # noqa: BLE001  (a server without the read, a database blink: the warning is best effort)
        return
    if listening.get("workers", 0) == 0:
        where = " on the server's broker" if backend().remote else ""
        click.echo(
            f"s2: warning: no worker is listening on queue '{run.queue}'{where}: run {run.id} waits until one starts "
            f"(start one with: s2 worker --queue {run.queue})",
            err=True,
        )


@cli.command()
@click.argument("name")
@click.option("--rev", help="Revision to train (default: the default branch).")
@SPEC_OPTION
@click.option("--wait", is_flag=True, help="Wait for the run, showing progress; print the model at the end.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the run; with --wait, the model version).")
def train(name: str, rev: str | None, spec_file: Path | None, wait: bool, as_json: bool) -> None:
    """Train a revision of NAME into a model version."""
    run = backend().submit_run(name, rev, _read_spec(spec_file))
    warn_if_no_worker(run)
    if not wait:
        print_json(run.model_dump(mode="json")) if as_json else click.echo(f"queued run {run.id} for {name}@{run.dataset_commit[:12]}")
        return
    click.echo(f"run {run.id}: training {name}@{run.dataset_commit[:12]} with {run.spec['template']}", err=True)
    try:
        final = wait_for_run(run.id)
    except KeyboardInterrupt:
        click.echo(
            f"\ns2: stopped waiting; run {run.id} goes on without you (follow it with: s2 run {run.id}; cancel it with: s2 cancel {run.id})",
            err=True,
        )
        sys.exit(130)
    if final.state != "succeeded":
        fail(f"run {final.id} {final.state}" + (f": {final.error}" if final.error else ""))
    model = backend().get_model(final.model)
    if as_json:
        print_json(model.model_dump(mode="json"))
    else:
        click.echo(f"model {model.id}: accuracy {model.metrics.get('accuracy', 0):.4f}, macro-F1 {model.metrics.get('macro_f1', 0):.4f}")
