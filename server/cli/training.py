"""`s2 dataset watch|pin-eval`, `train`, `runs`, `cancel`, `models`, `compare`, `promote`, `worker`."""

import json
import sys
from pathlib import Path

import click

from server.cli.common import emit, fail, write_options
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


FOLDS_OPTION = click.option(
    "--folds",
    type=click.IntRange(0, 20),
    help="The data engine's cross-fitting after training: K fold models score every labeled example out of sample "
    "(the label-error queue); 0 turns it off. Default: S2_ANALYSIS_FOLDS (5).",
)
SPEC_OPTION = click.option("--spec", "spec_file", type=click.Path(path_type=Path), help="JSON training spec (template, epochs, ...).")
WARM_START_HELP = (
    "Start from the model of the commit before (same template; the spec's warm_start): a shorter fine-tune. "
    "Trains from scratch, saying why, when there is none."
)


def _with_warm_start(spec: dict | None, warm_start: bool) -> dict | None:
    return {**(spec or {}), "warm_start": True} if warm_start else spec


@dataset.command("watch")
@click.argument("name")
@click.option("--branch", "-b", default="main", show_default=True, help="Branch whose every new head is trained.")
@SPEC_OPTION
@click.option("--off", is_flag=True, help="Stop watching the branch.")
@click.option("--warm-start", is_flag=True, help=WARM_START_HELP)
@FOLDS_OPTION
@write_options(None, json_help="Print the watch rule as JSON (with --off: {dataset, branch, watching: false}).")
def dataset_watch(
    name: str, branch: str, spec_file: Path | None, off: bool, warm_start: bool, folds: int | None, as_json: bool, quiet: bool
) -> None:
    """Train every commit on a branch from now on (a commit already built with the same spec is not trained again)."""
    if off:
        backend().unwatch(name, branch)
        emit(
            f"stopped watching {name}/{branch}", None, {"dataset": name, "branch": branch, "watching": False}, as_json=as_json, quiet=quiet
        )
        return
    spec = _with_warm_start(_read_spec(spec_file), warm_start)
    rule = backend().watch(name, branch, spec, folds)
    emit(f"watching {name}/{branch}: every new commit trains {rule['spec']['template']}", None, rule, as_json=as_json, quiet=quiet)
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
@write_options("the pinned commit id", json_help="Print the pin as JSON, with unscored: the models trained before it.")
def dataset_pin_eval(name: str, eval_name: str, rev: str, source: str | None, all_examples: bool, as_json: bool, quiet: bool) -> None:
    """Pin evaluation set EVAL: every model of NAME trained from now on is scored on it, so versions stay comparable.

    A model is scored when it is trained: the models NAME already has are not scored on EVAL (they are
    listed). To score the model of a revision on it, train that revision again: s2 train NAME --rev REV.
    """
    pin = backend().pin_eval(name, eval_name, rev, source, not all_examples and source is None)
    unscored = [m.id for m in backend().list_models(name) if eval_name not in m.eval_sets]
    summary = f"pinned eval set {eval_name}: {pin['source']}@{pin['commit'][:12]}; every model trained from now on is scored on it"
    if unscored:
        shown = ", ".join(unscored[:5]) + (f" and {len(unscored) - 5} more" if len(unscored) > 5 else "")
        summary += (
            f"\n{len(unscored)} existing model(s) are not scored on it ({shown}): models are scored when trained; "
            f"to score a revision's model on {eval_name}, train it again: s2 train {name} --rev REV"
        )
    emit(summary, pin["commit"], {**pin, "unscored": unscored}, as_json=as_json, quiet=quiet)


def _progress_line(run) -> str:
    p = run.progress or {}
    if run.state == "queued":
        return f"run {run.id}: queued on '{run.queue}'"
    if not p:
        return f"run {run.id}: {run.state} on {run.worker_host or '?'}"
    eta = f", eta {p['eta_s']:.0f}s" if p.get("eta_s") is not None else ""
    loss = f", loss {p['loss']:.4f}" if p.get("loss") is not None else ""
    return f"run {run.id}: epoch {p.get('epoch', 0)}/{p.get('epochs', '?')}, step {p.get('step', 0)}/{p.get('total_steps', '?')}{loss}{eta}"


def wait_for_run(run_id: int, show: bool = True):
    """Follow a run until it ends, showing its progress on stderr (unless not show); returns its final view."""
    shown, tty, run = "", sys.stderr.isatty(), None
    for run in backend().follow_run(run_id):
        line = _progress_line(run)
        if show and line != shown:
            click.echo(("\r\033[K" if tty else "") + line, err=True, nl=not tty)
            shown = line
    if tty and show:
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
@click.option("--warm-start", is_flag=True, help=WARM_START_HELP)
@click.option("--from-model", metavar="MODEL", help="Warm-start from this model (DATASET@N) instead of the commit before's.")
@click.option("--force", is_flag=True, help="Train even if this commit was built with this spec, seed and code already.")
@FOLDS_OPTION
@write_options("the run id (with --wait: the model's id, DATASET@N)", json_help="Print JSON (the run; with --wait, the model version).")
def train(
    name: str,
    rev: str | None,
    spec_file: Path | None,
    wait: bool,
    warm_start: bool,
    from_model: str | None,
    force: bool,
    folds: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Train a revision of NAME into a model version; prints the run's id (with --wait, the model's: NAME@N).

    A revision already built with the same spec, seed and code is not trained again: that model is the answer.
    """
    spec = _with_warm_start(_read_spec(spec_file), warm_start)
    run = backend().submit_run(name, rev, spec, from_model=from_model, force=force, folds=folds)
    if run.reused and not quiet:
        click.echo(f"s2: model {run.model} already built from this commit and spec; --force trains again", err=True)
    warn_if_no_worker(run)
    if not wait:
        summary = f"run {run.id}: reused model {run.model}" if run.reused else f"queued run {run.id} for {name}@{run.dataset_commit[:12]}"
        emit(summary, run.id, run.model_dump(mode="json"), as_json=as_json, quiet=quiet)
        return
    if not quiet and not run.reused:
        click.echo(f"run {run.id}: training {name}@{run.dataset_commit[:12]} with {run.spec['template']}", err=True)
    try:
        final = run if run.reused else wait_for_run(run.id, show=not quiet)
    except KeyboardInterrupt:
        click.echo(
            f"\ns2: stopped waiting; run {run.id} goes on without you (follow it with: s2 run {run.id}; cancel it with: s2 cancel {run.id})",
            err=True,
        )
        sys.exit(130)
    if final.state != "succeeded":
        fail(f"run {final.id} {final.state}" + (f": {final.error}" if final.error else ""))
    if not quiet and not final.reused and (final.parent_model or final.scratch_reason):
        start = f"warm start from {final.parent_model}" if final.parent_model else f"trained from scratch: {final.scratch_reason}"
        click.echo(f"run {final.id}: {start}", err=True)
    model = backend().get_model(final.model)
    figures = ", ".join(f"{k} {model.metrics[k]:.4f}" for k in ("accuracy", "macro_f1") if model.metrics.get(k) is not None)
    emit(f"model {model.id}: {figures or 'no metrics'}", model.id, model.model_dump(mode="json"), as_json=as_json, quiet=quiet)
