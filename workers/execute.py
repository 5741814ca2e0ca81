"""What a worker does with a run: claim it, train it, register the model, or record why not."""

import logging
import socket
import threading
import traceback

from sqlalchemy.exc import OperationalError

from server.blobs import default_blob_store
from server.config import get_settings
from server.runs.lifecycle import RunHeartbeat, RunLog, RunReporter, claim, finish, record_start

log = logging.getLogger(__name__)


def execute_run(run_id: int, attempt: int, worker: str | None = None) -> dict:
    """Train run_id if it is still queued at `attempt`; returns a small summary for the task."""
    from server.registry.service import register_model, training_inputs
    from trainer.train import Cancelled, check_trainable, train

    worker = worker or f"{socket.gethostname()}:{threading.get_native_id()}"
    threads = get_settings().torch_threads
    if threads:
        import torch

        torch.set_num_threads(threads)
    if not claim(run_id, attempt, worker):
        return {"run": run_id, "skipped": "not queued at this attempt"}
    handler = RunLog()
    logging.getLogger().addHandler(handler)
    blobs = default_blob_store()
    reporter = RunReporter(run_id)
    try:
        with RunHeartbeat(run_id):
            snapshot, eval_sets, spec = training_inputs(run_id, blobs)
            check_trainable(snapshot, spec)
            log.info(
                "run %s: training %s@%s (%d examples) with %s",
                run_id,
                snapshot.dataset,
                snapshot.commit[:12],
                len(snapshot.keys),
                spec.template,
            )
            init_from = _warm_start(run_id, blobs, snapshot, spec)
            result = train(
                snapshot, spec, eval_sets=eval_sets, progress=reporter.progress, should_stop=reporter.should_stop, init_from=init_from
            )
            model = register_model(run_id, result, blobs)
        log.info("run %s: model %s", run_id, model)
        _analyze(run_id, result.weights, snapshot, spec, blobs)
        return {"run": run_id, "state": "succeeded", "model": model}
    except OperationalError:
        # The database went away (a transient fault, not the training's): the run is left running
        # without beats, so the sweep retries it once it goes stale, up to S2_RUN_MAX_ATTEMPTS.
        log.warning("run %s: database unreachable; left for the sweep to retry", run_id, exc_info=True)
        return {"run": run_id, "state": "interrupted"}
    except Cancelled:
        finish(run_id, state="cancelled", log_tail=handler.tail())
        return {"run": run_id, "state": "cancelled"}
    except Exception as exc:  # a failing training is recorded, never crashes the worker
        log.error("run %s failed:\n%s", run_id, traceback.format_exc())
        finish(run_id, state="failed", error=f"{type(exc).__name__}: {exc}"[:2000], log_tail=handler.tail())
        return {"run": run_id, "state": "failed"}
    finally:
        logging.getLogger().removeHandler(handler)


def _analyze(run_id: int, weights: bytes, snapshot, spec, blobs) -> None:  # noqa: ANN001
    """The data engine's analysis of the run's new model, on this worker, after the run succeeded."""
    from server.db import read_scope
    from server.engine.service import analysis_plan
    from workers.analyze import analyze_model

    with read_scope() as db:
        model_id, folds = analysis_plan(db, run_id)
    analyze_model(model_id, weights, snapshot, spec, folds, blobs)


def _warm_start(run_id: int, blobs, snapshot, spec) -> bytes | None:  # noqa: ANN001
    """The parent model's weights a run starts from (recorded on the run), or None: from scratch (why is recorded)."""
    from server.registry.lineage import NO_PARENT, warm_start_of
    from trainer.warm import warm_start_problem

    warm = warm_start_of(run_id, blobs)
    if warm is None:
        return None
    reason = warm.reason
    if reason is None:
        problem = warm_start_problem(warm.weights, snapshot, spec)
        reason = f"{NO_PARENT}: {warm.model} cannot start it: {problem}" if problem else None
    record_start(run_id, None if reason else warm.model_id, reason)
    if reason:
        log.info("run %s: training from scratch (%s)", run_id, reason)
        return None
    log.info("run %s: warm start from %s", run_id, warm.model)
    return warm.weights
