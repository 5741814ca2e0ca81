"""Training runs: submitting, watching branches, coalescing, cancelling, listing."""

import logging
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.config import get_settings
from server.datasets.datasets import get_dataset
from server.datasets.history import resolve_rev
from server.datasets.models import Dataset, utcnow
from server.datasets.refs import get_branch
from server.errors import Conflict, InvalidInput, NotFound
from server.runs.broker import Queue
from server.runs.models import TrainingRun, WatchRule, WorkerHeartbeat
from server.runs.schemas import RunRead

log = logging.getLogger(__name__)
TERMINAL = ("succeeded", "failed", "cancelled")


def parse_spec(raw: dict | None, modality: str):
    """The resolved TrainSpec for raw (None: defaults), or InvalidInput naming what is wrong."""
    from trainer.spec import resolve_spec

    try:
        return resolve_spec(raw or {}, modality)
    except ValueError as exc:
        raise InvalidInput(f"invalid training spec: {str(exc).splitlines()[0]}") from None


def queue_for(spec) -> Queue:
    """GPU specs go to GPU hosts; everything else to the cpu queue (which GPU hosts may serve too)."""
    return Queue.GPU if spec.accelerator == "gpu" else Queue.CPU


def run_reads(db: Session, runs: list[TrainingRun]) -> list[RunRead]:
    """The public view of runs: their datasets' names and their models' references read in two queries, not two per run."""
    from server.registry.service import model_refs

    names = dict(db.execute(select(Dataset.id, Dataset.name).where(Dataset.id.in_({r.dataset_id for r in runs}))).all()) if runs else {}
    refs = model_refs(db, {r.model_version_id for r in runs} | {r.parent_model_id for r in runs})
    analyses = _analyses(db, {r.model_version_id for r in runs if r.model_version_id is not None})
    return [_run_read(run, names[run.dataset_id], refs, analyses.get(run.model_version_id)) for run in runs]


def _analyses(db: Session, model_ids: set[int]) -> dict[int, dict]:
    """The data engine's analyses of these models, as runs show them (what each cost)."""
    from server.engine.models import ModelAnalysis

    if not model_ids:
        return {}
    fields = ("state", "folds", "labeled", "examples", "crossfit_s", "analysis_s", "error")
    return {
        a.model_id: {f: getattr(a, f) for f in fields}
        for a in db.scalars(select(ModelAnalysis).where(ModelAnalysis.model_id.in_(model_ids)))
    }


def run_read(db: Session, run: TrainingRun) -> RunRead:
    """The public view of a run."""
    return run_reads(db, [run])[0]


def _run_read(run: TrainingRun, dataset: str, refs: dict[int, tuple[str, int]], analysis: dict | None = None) -> RunRead:
    model, built_by = refs.get(run.model_version_id, (None, None))
    return RunRead(
        id=run.id,
        dataset=dataset,
        dataset_commit=run.commit_id,
        branch=run.branch,
        covers=list(run.covers),
        spec=run.spec,
        spec_hash=run.spec_hash,
        queue=run.queue,
        state=run.state,
        attempt=run.attempt,
        progress=run.progress,
        error=run.error,
        log_tail=run.log_tail,
        worker_host=run.worker_host,
        device=run.device,
        model=model,
        requested_by=run.requested_by,
        reused=model is not None and built_by != run.id,  # its model was built by another run
        parent_model=refs.get(run.parent_model_id, (None,))[0],
        scratch_reason=run.scratch_reason,
        folds=run.folds,
        analysis=analysis if not (model is not None and built_by != run.id) else None,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def _require_gpu_worker(db: Session) -> None:
    fresh = utcnow() - timedelta(seconds=get_settings().run_stale_after_s)
    gpu_workers = db.scalars(select(WorkerHeartbeat).where(WorkerHeartbeat.seen_at >= fresh, WorkerHeartbeat.gpus > 0)).all()
    if not [w for w in gpu_workers if Queue.GPU.value in w.queues]:
        raise InvalidInput(
            "the spec asks for accelerator 'gpu' but no worker with a GPU is listening on queue 'gpu' "
            "(start one on a GPU host with: s2 worker --queue gpu, or use accelerator 'auto')"
        )


def _check_runnable(db: Session, spec) -> None:
    """Refuse, at submission, a spec no listening worker can run."""
    if spec.num_nodes > 1:
        raise InvalidInput(
            f"num_nodes {spec.num_nodes}: an s2 worker trains on one host with all of its GPUs; "
            "a multi-node job needs every node started together (torchrun, SLURM), not a queued run"
        )
    if spec.accelerator == "gpu":
        _require_gpu_worker(db)


def run_row(ds: Dataset, commit_id: str, spec, branch: str | None, requested_by: str | None = None, **fields) -> TrainingRun:
    """A new run of commit_id with spec (not yet added to the session); fields: its state and what else it sets."""
    return TrainingRun(
        dataset_id=ds.id,
        commit_id=commit_id,
        branch=branch,
        covers=[commit_id],
        spec=spec.model_dump(mode="json"),
        spec_hash=spec.spec_hash(),
        queue=queue_for(spec).value,
        attempt=0,
        cancel_requested=False,
        requested_by=requested_by,
        **fields,
    )


def _new_run(
    db: Session,
    ds: Dataset,
    commit_id: str,
    spec,
    branch: str | None,
    requested_by: str | None = None,
    parent_model_id: int | None = None,
    folds: int | None = None,
) -> TrainingRun:
    run = run_row(ds, commit_id, spec, branch, requested_by, state="queued", parent_model_id=parent_model_id, folds=folds)
    db.add(run)
    db.flush()
    dispatch_after_commit(db, run.id)
    return run


def submit_run(
    db: Session,
    blobs,
    *,
    dataset: str,
    rev: str | None,
    spec: dict | None,
    requested_by: str | None = None,
    from_model: str | None = None,
    force: bool = False,
    folds: int | None = None,
) -> RunRead:
    """Queue a training of rev (default: the default branch) with spec, refusing what cannot train.

    from_model: a model reference to warm-start from (sets the spec's warm_start). Unless force, an identical
    earlier build (same commit, resolved spec, seed, trainer code and starting model) answers at once: the run
    is recorded as succeeded with that build's model (RunRead.reused) and nothing is trained.
    folds: the data engine's cross-fitting after training (K fold models, 0 off; None: S2_ANALYSIS_FOLDS).
    """
    check_folds(folds)
    from server.datasets.commits import label_counts
    from server.registry.lineage import identical_build, reused_run
    from server.registry.service import get_model

    ds = get_dataset(db, dataset)
    commit = resolve_rev(db, ds, rev or ds.default_branch)
    asked = get_model(db, from_model) if from_model else None
    if asked is not None:
        spec = {**(spec or {}), "warm_start": True}
    resolved = parse_spec(spec, ds.modality)
    if commit.row_count == 0:
        raise InvalidInput(f"revision '{rev or ds.default_branch}' of dataset '{dataset}' has no examples to train on")
    labels = label_counts(db, blobs, commit)  # kept per commit: no snapshot read
    if len(labels) < 2:
        raise InvalidInput(
            f"revision '{rev or ds.default_branch}' of dataset '{dataset}' has {len(labels)} labeled class(es); training needs at least two"
        )
    if not force:
        built = identical_build(db, ds, commit, resolved, asked)
        if built is not None:
            return run_read(db, reused_run(db, ds, commit.id, resolved, built, branch=None, requested_by=requested_by))
    _check_runnable(db, resolved)
    run = _new_run(
        db, ds, commit.id, resolved, branch=None, requested_by=requested_by, parent_model_id=asked.id if asked else None, folds=folds
    )
    return run_read(db, run)


def on_head_moved(db: Session, event) -> None:  # noqa: ANN001  (a server.events.HeadMoved)
    """A watched branch got a new head: queue its training, or fold it into the run still queued.

    Runs inside the commit's transaction. A head whose identical build exists (a merge fast-forwarded
    onto a commit another watched branch built with the same spec) is answered by that build, and a
    queued run it is folded into ends with it. A watch rule whose stored spec no longer validates (the
    trainer changed since it was set) becomes a failed run saying why, never a failed commit.
    """
    dataset_id, branch, commit_id = event.dataset_id, event.branch, event.commit_id
    rule = db.scalar(select(WatchRule).where(WatchRule.dataset_id == dataset_id, WatchRule.branch == branch))
    if rule is None:
        return
    from server.registry.lineage import identical_build_for_rule, reused_run  # only for watched branches: not on every commit

    ds = db.get(Dataset, dataset_id)
    built = identical_build_for_rule(db, ds, commit_id, rule.spec)
    waiting = db.scalar(
        select(TrainingRun)
        .where(
            TrainingRun.dataset_id == dataset_id,
            TrainingRun.branch == branch,
            TrainingRun.state == "queued",
            TrainingRun.cancel_requested.is_(False),
        )
        .order_by(TrainingRun.id.desc())
        .limit(1)
    )
    if waiting is not None:
        # Coalesce: the queued run has not started, so it trains the newest commit instead (or ends with its build).
        values = {"commit_id": commit_id, "covers": [*waiting.covers, commit_id]}
        if built is not None:
            values |= {"state": "succeeded", "model_version_id": built.id, "parent_model_id": built.parent_model_id}
            values |= {"device": built.device, "finished_at": utcnow()}
        folded = db.execute(
            update(TrainingRun)
            .where(TrainingRun.id == waiting.id, TrainingRun.state == "queued")
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if folded:
            return
    try:
        spec = parse_spec(rule.spec, ds.modality)
    except InvalidInput as exc:
        now = utcnow()
        db.add(
            TrainingRun(
                dataset_id=ds.id,
                commit_id=commit_id,
                branch=branch,
                covers=[commit_id],
                spec=rule.spec or {},
                spec_hash="",
                queue=Queue.CPU.value,
                state="failed",
                attempt=0,
                cancel_requested=False,
                error=f"the watch rule of branch '{branch}' has a spec that no longer validates ({exc}); "
                f"set a new one with: s2 dataset watch {ds.name} --branch {branch} --spec FILE",
                finished_at=now,
            )
        )
        return
    if built is not None:
        reused_run(db, ds, commit_id, spec, built, branch=branch)
        return
    _new_run(db, ds, commit_id, spec, branch=branch, folds=rule.folds)


def check_folds(folds: int | None) -> None:
    """Refuse a fold count the data engine cannot cross-fit with."""
    if folds is not None and (folds < 0 or folds == 1 or folds > 20):
        raise InvalidInput(f"folds {folds}: the data engine cross-fits with 2 to 20 folds, or 0 to turn it off")


def watch(db: Session, *, dataset: str, branch: str, spec: dict | None, folds: int | None = None) -> dict:
    """Train every new head of branch with spec from now on; replaces an earlier rule.

    folds: the data engine's cross-fitting after each training (K, 0 off; None: S2_ANALYSIS_FOLDS).
    """
    check_folds(folds)
    ds = get_dataset(db, dataset)
    get_branch(db, ds, branch)
    resolved = parse_spec(spec, ds.modality)
    _check_runnable(db, resolved)
    rule = db.scalar(select(WatchRule).where(WatchRule.dataset_id == ds.id, WatchRule.branch == branch))
    if rule is None:
        rule = WatchRule(dataset_id=ds.id, branch=branch, spec=spec or {})
        db.add(rule)
    rule.spec = spec or {}
    rule.folds = folds
    db.flush()
    return {"dataset": dataset, "branch": branch, "spec": resolved.model_dump(mode="json"), "folds": folds}


def watched_branches(db: Session, *, dataset: str) -> set[str]:
    """The branches of a dataset whose every new head is trained."""
    ds = get_dataset(db, dataset)
    return set(db.scalars(select(WatchRule.branch).where(WatchRule.dataset_id == ds.id)))


def unwatch(db: Session, *, dataset: str, branch: str) -> None:
    """Stop training new heads of branch."""
    ds = get_dataset(db, dataset)
    rule = db.scalar(select(WatchRule).where(WatchRule.dataset_id == ds.id, WatchRule.branch == branch))
    if rule is None:
        raise NotFound(f"branch '{branch}' of dataset '{dataset}' is not watched")
    db.delete(rule)
    db.flush()


def list_runs(
    db: Session, *, dataset: str | None = None, limit: int = 50, before: int | None = None, state: str | None = None
) -> list[RunRead]:
    """Recent runs, newest first (ids below `before`, in `state`, when given)."""
    query = select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit)
    if dataset:
        query = query.where(TrainingRun.dataset_id == get_dataset(db, dataset).id)
    if before is not None:
        query = query.where(TrainingRun.id < before)
    if state is not None:
        query = query.where(TrainingRun.state == state)
    return run_reads(db, list(db.scalars(query)))


def get_run(db: Session, run_id: int) -> TrainingRun:
    """The run with this id, or NotFound."""
    run = db.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"no training run {run_id} (list them with: s2 runs)")
    return run


def cancel_run(db: Session, run_id: int) -> RunRead:
    """Cancel a run: a queued one at once, a running one at its next step."""
    run = get_run(db, run_id)
    if run.state in TERMINAL:
        raise InvalidInput(f"run {run_id} already {run.state}; nothing to cancel")
    run.cancel_requested = True
    if run.state == "queued":
        run.state, run.finished_at = "cancelled", utcnow()
    db.flush()
    return run_read(db, run)


def dispatch_after_commit(db: Session, run_id: int) -> None:
    """Send the run to its queue once the transaction that created it has committed."""
    db.info.setdefault("after_commit", []).append(lambda: dispatch(run_id))


def dispatch(run_id: int) -> None:
    """Send a queued run to the broker and note when; a failure leaves it for the workers' sweep."""
    from server.db import session_scope
    from server.runs.broker import TRAIN_TASK, sender

    with session_scope() as db:
        run = db.get(TrainingRun, run_id)
        if run is None or run.state != "queued":
            return
        try:
            sender().send_task(TRAIN_TASK, args=[run.id, run.attempt], queue=run.queue)
        except Exception as exc:  # broker down: the run stays queued and a worker's sweep re-sends it
            log.warning("could not send run %s to the broker: %s", run_id, exc)
            return
        run.dispatched_at = utcnow()


def run_counts(db: Session) -> dict:
    """Runs by state, queued runs by queue, and live workers (for /metrics)."""
    from sqlalchemy import func

    states = dict(db.execute(select(TrainingRun.state, func.count()).group_by(TrainingRun.state)).all())
    queued = dict(
        db.execute(select(TrainingRun.queue, func.count()).where(TrainingRun.state == "queued").group_by(TrainingRun.queue)).all()
    )
    fresh = utcnow() - timedelta(seconds=get_settings().run_stale_after_s)
    workers = db.scalar(select(func.count()).select_from(WorkerHeartbeat).where(WorkerHeartbeat.seen_at >= fresh))
    return {"states": states, "queued": queued, "workers": workers}


def workers_listening(db: Session, queue: str) -> dict:
    """The live workers (heartbeat within S2_RUN_STALE_AFTER_S) that serve queue: {"queue", "workers", "names"}."""
    fresh = utcnow() - timedelta(seconds=get_settings().run_stale_after_s)
    live = db.scalars(select(WorkerHeartbeat).where(WorkerHeartbeat.seen_at >= fresh).order_by(WorkerHeartbeat.name)).all()
    names = [w.name for w in live if queue in (w.queues or [])]
    return {"queue": queue, "workers": len(names), "names": names}


def retry_run(db: Session, run_id: int, requested_by: str | None = None) -> RunRead:
    """A new run of a failed or cancelled run's commit and spec; the old run stays as it ended.

    The new run trains that commit exactly (no branch: a watch rule's later commits are not folded into it).
    """
    run = get_run(db, run_id)
    if run.state not in ("failed", "cancelled"):
        raise Conflict(f"run {run_id} is {run.state}; only a failed or cancelled run can be retried")
    ds = db.get(Dataset, run.dataset_id)
    spec = parse_spec(run.spec, ds.modality)  # the trainer may have changed since: refuse what no longer validates
    _check_runnable(db, spec)
    # a retry starts from the same parent model, if the run had one (asked for, or chosen when it began)
    again = _new_run(db, ds, run.commit_id, spec, branch=None, requested_by=requested_by, parent_model_id=run.parent_model_id)
    return run_read(db, again)
