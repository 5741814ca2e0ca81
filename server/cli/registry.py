"""`s2 runs`, `run`, `cancel`, `models`, `compare`, `promote`, `worker`."""

import click

from server.cli.common import print_json
from server.cli.main import cli
from server.client import backend


@cli.command()
@click.argument("name", required=False)
@click.option("-n", "--limit", default=50, show_default=True, help="How many runs to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs(name: str | None, limit: int, as_json: bool) -> None:
    """List training runs, newest first (of dataset NAME if given)."""
    found = backend().list_runs(name, limit)
    if as_json:
        print_json([r.model_dump(mode="json") for r in found])
        return
    for r in found:
        covers = f" (covers {len(r.covers)} commits)" if len(r.covers) > 1 else ""
        click.echo(
            f"{r.id}\t{r.state}\t{r.dataset}@{r.dataset_commit[:12]}{covers}\t{r.spec.get('template')}\t{r.model or ''}\t{r.error or ''}"
        )


@cli.command()
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def run(run_id: int, as_json: bool) -> None:
    """Show one training run: state, progress, error and the tail of its log."""
    r = backend().get_run(run_id)
    if as_json:
        print_json(r.model_dump(mode="json"))
        return
    click.echo(
        f"run {r.id}: {r.state} (attempt {r.attempt}) {r.dataset}@{r.dataset_commit[:12]} on {r.worker_host or '-'} {r.device or ''}"
    )
    if r.progress:
        # The curve's points are for the run page and --json; the text shows where the run is.
        shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in r.progress.items() if k not in ("points", "epoch_ends")}
        click.echo("progress: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
    for field in ("model", "error", "log_tail"):
        if getattr(r, field):
            click.echo(f"{field}: {getattr(r, field)}")


@cli.command()
@click.argument("run_id", type=int)
def cancel(run_id: int) -> None:
    """Cancel a training run (a running one stops at its next step)."""
    r = backend().cancel_run(run_id)
    click.echo(f"run {r.id}: {'cancelled' if r.state == 'cancelled' else 'cancelling'}")


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(name: str, as_json: bool) -> None:
    """List the model versions of dataset NAME, newest first."""
    found = backend().list_models(name)
    if as_json:
        print_json([m.model_dump(mode="json") for m in found])
        return
    for m in found:
        click.echo(
            f"{m.id}\t{m.stage or '-'}\t{m.dataset_commit[:12]}\t{m.template}\taccuracy {m.metrics.get('accuracy', 0):.4f}\tmacro-F1 {m.metrics.get('macro_f1', 0):.4f}"
        )


@cli.command()
@click.argument("model_a")
@click.argument("model_b")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def compare(model_a: str, model_b: str, as_json: bool) -> None:
    """Compare two model versions: metric deltas, per class, flipped examples, the data change between them."""
    result = backend().compare(model_a, model_b)
    if as_json:
        print_json(result)
        return
    click.echo(f"{result['a']} -> {result['b']} on eval set '{result['eval_set']}'")
    for metric, v in result["metrics"].items():
        click.echo(f"  {metric:9} {v['a']!s:>10} -> {v['b']!s:>10}  ({v['delta']:+.4f})" if v["delta"] is not None else f"  {metric}: n/a")
    click.echo(f"  fixed {len(result['fixed'])} examples, broke {len(result['broken'])}")
    for flip in result["flips"][:20]:
        changes = ", ".join(f"{h['commit'][:8]} {h['label']}" for h in flip["label_history"]) or "label unchanged"
        click.echo(
            f"    {flip['change']:6} {flip['key']}: {flip['predicted_a']} -> {flip['predicted_b']} (label {flip['label_b']}; {changes})"
        )
    d = result["data_diff"]
    click.echo(
        f"  data: {len(d['added'])} added, {len(d['removed'])} removed, {len(d['relabeled'])} relabeled, {len(d['modified'])} modified"
    )


@cli.command()
@click.argument("model")
@click.option("--stage", default="production", show_default=True, type=click.Choice(["production", "staging", "archived"]))
@click.option("--force", is_flag=True, help="Promote even if it regresses on a pinned eval set.")
@click.option("--max-regression", type=float, help="Accuracy it may lose against production (default S2_PROMOTE_MAX_REGRESSION).")
def promote(model: str, stage: str, force: bool, max_regression: float | None) -> None:
    """Move MODEL (DATASET@N) to a stage; production refuses a model that regresses."""
    done = backend().promote(model, stage, force, max_regression)
    click.echo(f"{done['model']} is now {stage}" + (f" (replacing {done['replaced']})" if done["replaced"] else ""))


@cli.command()
@click.option("--queue", "-Q", "queues", default="cpu", show_default=True, help="Comma-separated queues: cpu, gpu.")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--isolate/--no-isolate", default=None, help="A fresh process per run (default: only on multi-GPU hosts).")
def worker(queues: str, loglevel: str, isolate: bool | None) -> None:
    """Run a training worker (one run at a time, every GPU of the host)."""
    from server.runs.broker import Queue
    from workers.main import run_worker

    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in wanted if q not in {e.value for e in Queue}]
    if unknown or not wanted:
        raise click.BadParameter(f"unknown queue(s) {', '.join(unknown) or '(none)'}: use cpu and/or gpu", param_hint="--queue")
    run_worker(wanted, loglevel, isolate)
