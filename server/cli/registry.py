"""`s2 runs`, `run`, `cancel`, `models`, `compare`, `promote`, `worker`.

A run is named by its number (`s2 runs` lists them: 12), a model version by DATASET@N (`pets@3`), or
DATASET@production, DATASET@staging, DATASET@latest.
"""

import click

from server.cli.common import emit, listing, print_json, write_options
from server.cli.main import cli
from server.client import backend

SHOWN = 20  # rows of a list in a text report before "and N more"


@cli.command()
@click.argument("name", required=False)
@click.option("-n", "--limit", default=50, show_default=True, help="How many runs to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs(name: str | None, limit: int, as_json: bool) -> None:
    """List training runs, newest first (of dataset NAME if given); a run's id is its number."""
    found = backend().list_runs(name, limit)
    if as_json:
        print_json([r.model_dump(mode="json") for r in found])
        return
    rows = []
    for r in found:
        covers = f" (covers {len(r.covers)} commits)" if len(r.covers) > 1 else ""
        error = " ".join((r.error or "").split())
        rows.append([r.id, r.state, f"{r.dataset}@{r.dataset_commit[:12]}{covers}", r.spec.get("template"), r.model or "", error[:80]])
    listing(["RUN", "STATE", "DATASET@COMMIT", "TEMPLATE", "MODEL", "ERROR"], rows)


def _figure(value: object, digits: int = 4) -> str:
    """A metric for people: rounded, '-' when there is none."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _analysis_text(a: dict, dataset: str) -> str:
    """The data engine's analysis of the run's model, in one line: state, what it cost, where its queues are."""
    cost = []
    if a.get("crossfit_s") is not None:
        cost.append(f"{a['folds']}-fold cross-fitting of {a['labeled']} labeled examples {a['crossfit_s']:.1f} s")
    if a.get("analysis_s") is not None:
        cost.append(f"{a['examples']} examples scored and ranked {a['analysis_s']:.1f} s")
    text = a["state"] + (": " + ", ".join(cost) if cost else "")
    if a["state"] == "done":
        text += f" (s2 queue {dataset} --kind label-errors|uncertain)"
    if a.get("error"):
        text += f": {a['error']}"
    return text


def _when(stamp) -> str:  # noqa: ANN001  (a datetime or None)
    return "-" if stamp is None else f"{stamp:%Y-%m-%d %H:%M:%S} UTC"


def _progress_text(p: dict) -> str:
    """Where a run is, from its progress (the curve's points are for the run page and --json)."""
    parts = []
    if p.get("epoch") is not None:
        parts.append(f"epoch {p['epoch']}/{p.get('epochs', '?')}")
    if p.get("step") is not None:
        parts.append(f"step {p['step']}/{p.get('total_steps', '?')}")
    for key, name in (("loss", "loss"), ("eval_loss", "eval loss"), ("eval_accuracy", "eval accuracy")):
        if p.get(key) is not None:
            parts.append(f"{name} {_figure(p[key])}")
    if p.get("elapsed_s") is not None:
        parts.append(f"{p['elapsed_s']:.1f}s elapsed")
    if p.get("eta_s") and not p.get("done"):
        parts.append(f"eta {p['eta_s']:.0f}s")
    return ", ".join(parts) or "-"


def _tail(text: str, run_id: int, lines: int = 10) -> list[str]:
    """The last lines of a run's log, with how many came before them."""
    found = text.rstrip("\n").splitlines()
    cut = len(found) - lines
    return ([f"(... {cut} earlier line(s); all of them: s2 run {run_id} --json)"] if cut > 0 else []) + found[-lines:]


@cli.command()
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the whole run as JSON (spec, progress with its curve, the log tail).")
def run(run_id: int, as_json: bool) -> None:
    """Show training run RUN_ID (the number `s2 runs` and `s2 train` print): state, data, spec, timings, progress, model, error, log."""
    r = backend().get_run(run_id)
    if as_json:
        print_json(r.model_dump(mode="json"))
        return
    spec = r.spec or {}
    shown = ("epochs", "batch_size", "learning_rate", "seed", "max_time_s", "accelerator")  # the rest: --json
    set_keys = ", ".join(f"{k} {spec[k]}" for k in shown if spec.get(k) is not None)
    lines = [
        f"run {r.id}: {r.state}" + (f" (attempt {r.attempt})" if r.attempt > 1 else ""),
        (
            "data",
            f"{r.dataset}@{r.dataset_commit[:12]}"
            + (f" (branch {r.branch})" if r.branch else "")
            + (f", covers {len(r.covers)} commits" if len(r.covers) > 1 else ""),
        ),
        ("spec", f"{spec.get('template', '-')}" + (f" ({set_keys})" if set_keys else "")),
        ("queue", f"{r.queue}; requested by {r.requested_by or '-'}"),
        ("worker", f"{r.worker_host or '-'}" + (f" on {r.device}" if r.device else "")),
        ("queued", _when(r.created_at)),
        ("started", _when(r.started_at)),
        ("finished", _when(r.finished_at)),
    ]
    if r.progress:
        lines.append(("progress", _progress_text(r.progress)))
    if r.model:
        lines.append(("model", f"{r.model} (s2 models {r.dataset})"))
    if r.analysis:
        lines.append(("analysis", _analysis_text(r.analysis, r.dataset)))
    if r.error:
        lines.append(("error", r.error))
    click.echo(lines[0])
    for name, value in lines[1:]:
        click.echo(f"  {name:9} {value}")
    if r.log_tail:
        click.echo("  log:")
        for line in _tail(r.log_tail, r.id):
            click.echo(f"    {line}")


@cli.command()
@click.argument("run_id", type=int)
@write_options("the run id")
def cancel(run_id: int, as_json: bool, quiet: bool) -> None:
    """Cancel training run RUN_ID (a running one stops at its next step)."""
    r = backend().cancel_run(run_id)
    summary = f"run {r.id}: {'cancelled' if r.state == 'cancelled' else 'cancelling'}"
    emit(summary, r.id, r.model_dump(mode="json"), as_json=as_json, quiet=quiet)


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(name: str, as_json: bool) -> None:
    """List the model versions of dataset NAME, newest first; a model's id is NAME@N."""
    found = backend().list_models(name)
    if as_json:
        print_json([m.model_dump(mode="json") for m in found])
        return
    rows = [
        [m.id, m.stage or "-", m.dataset_commit[:12], m.template, _figure(m.metrics.get("accuracy")), _figure(m.metrics.get("macro_f1"))]
        for m in found
    ]
    listing(["MODEL", "STAGE", "COMMIT", "TEMPLATE", "ACCURACY", "MACRO-F1"], rows)


def _delta(v: dict) -> str:
    return "-" if v.get("delta") is None else f"{v['delta']:+.4f}"


def _columns(rows: list[list[str]], indent: str = "  ") -> None:
    """Rows as aligned columns (the first row is the section's header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo(indent + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


def _per_class(per_class: dict) -> None:
    """Precision, recall and F1 of each class, A -> B, the most changed first when there are many."""
    labels = list(per_class)
    if len(labels) > SHOWN:
        labels.sort(key=lambda label: -abs(per_class[label]["f1"].get("delta") or 0))
    rows = [["CLASS", "PRECISION", "RECALL", "F1", "F1 DELTA"]]
    for label in labels[:SHOWN]:
        c = per_class[label]
        rows.append([label, *(f"{_figure(c[m]['a'])} -> {_figure(c[m]['b'])}" for m in ("precision", "recall", "f1")), _delta(c["f1"])])
    _columns(rows)
    if len(labels) > SHOWN:
        click.echo(f"  ... and {len(labels) - SHOWN} more classes (these {SHOWN} changed most; all of them: --json)")


@cli.command()
@click.argument("model_a")
@click.argument("model_b")
@click.option("--json", "as_json", is_flag=True, help="Print the whole comparison as JSON (every flipped example, every eval set).")
def compare(model_a: str, model_b: str, as_json: bool) -> None:
    """Compare model versions MODEL_A and MODEL_B (DATASET@N): metric deltas, per class, flipped examples, the data change between them."""
    result = backend().compare(model_a, model_b)
    if as_json:
        print_json(result)
        return
    commits = result["commits"]
    click.echo(f"{result['a']} -> {result['b']} on eval set '{result['eval_set']}' (data {commits['a'][:12]} -> {commits['b'][:12]})")
    rows = [["METRIC", "A", "B", "DELTA"]]
    rows += [[metric, _figure(v["a"]), _figure(v["b"]), _delta(v)] for metric, v in result["metrics"].items()]
    _columns(rows)
    if result["per_class"]:
        click.echo("per class:")
        _per_class(result["per_class"])
    others = {name: s for name, s in result.get("eval_sets", {}).items() if name != result["eval_set"]}
    if others:
        click.echo("other eval sets:")
        rows = [["EVAL SET", "ACCURACY", "MACRO-F1", "DELTA (ACCURACY)"]]
        for name, s in others.items():
            acc, f1 = s["metrics"].get("accuracy", {}), s["metrics"].get("macro_f1", {})
            rows.append(
                [
                    name,
                    f"{_figure(acc.get('a'))} -> {_figure(acc.get('b'))}",
                    f"{_figure(f1.get('a'))} -> {_figure(f1.get('b'))}",
                    _delta(acc),
                ]
            )
        _columns(rows)
    flips = result["flips"]
    click.echo(f"flipped examples: {len(result['fixed'])} fixed, {len(result['broken'])} broken")
    if flips:
        rows = [["CHANGE", "KEY", "PREDICTED A -> B", "LABEL", "LABEL CHANGES BETWEEN"]]
        for flip in flips[:SHOWN]:
            changes = ", ".join(f"{h['commit'][:8]} {h['label']}" for h in flip["label_history"]) or "none"
            rows.append([flip["change"], flip["key"], f"{flip['predicted_a']} -> {flip['predicted_b']}", str(flip["label_b"]), changes])
        _columns(rows)
        if len(flips) > SHOWN:
            click.echo(f"  ... and {len(flips) - SHOWN} more (all of them: s2 compare {model_a} {model_b} --json)")
    d = result["data_diff"]
    click.echo(
        f"data: {len(d['added'])} added, {len(d['removed'])} removed, {len(d['relabeled'])} relabeled, {len(d['modified'])} modified"
    )


@cli.command()
@click.argument("model")
@click.option("--stage", default="production", show_default=True, type=click.Choice(["production", "staging", "archived"]))
@click.option("--force", is_flag=True, help="Promote even if it regresses on a pinned eval set.")
@click.option("--max-regression", type=float, help="Accuracy it may lose against production (default S2_PROMOTE_MAX_REGRESSION).")
@write_options("the model's id (DATASET@N)")
def promote(model: str, stage: str, force: bool, max_regression: float | None, as_json: bool, quiet: bool) -> None:
    """Move MODEL (DATASET@N) to a stage; production refuses a model that regresses."""
    done = backend().promote(model, stage, force, max_regression)
    summary = f"{done['model']} is now {stage}" + (f" (replacing {done['replaced']})" if done["replaced"] else "")
    emit(summary, done["model"], done, as_json=as_json, quiet=quiet)


LEVELS = click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False)


@cli.command()
@click.option("--queue", "-Q", "queues", default="cpu", show_default=True, help="Comma-separated queues: cpu, gpu.")
@click.option("--log-level", "log_level", default="INFO", show_default=True, type=LEVELS, help="How much the worker logs.")
@click.option("--loglevel", "celery_loglevel", type=LEVELS, hidden=True)  # Celery's spelling, for scripts that used it
@click.option("--isolate/--no-isolate", default=None, help="A fresh process per run (default: only on multi-GPU hosts).")
def worker(queues: str, log_level: str, celery_loglevel: str | None, isolate: bool | None) -> None:
    """Run a training worker (one run at a time, every GPU of the host)."""
    from server.runs.broker import Queue
    from workers.main import run_worker

    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in wanted if q not in {e.value for e in Queue}]
    if unknown or not wanted:
        raise click.BadParameter(f"unknown queue(s) {', '.join(unknown) or '(none)'}: use cpu and/or gpu", param_hint="--queue")
    run_worker(wanted, celery_loglevel or log_level, isolate)
