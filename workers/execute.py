"""What a worker does with a run: claim it, train it, register the model, or record why not."""

import logging
import socket
import threading
import traceback

from sqlalchemy.exc import OperationalError

from server.blobs import default_blob_store
from server.config import get_settings
from server.runs.lifecycle import RunHeartbeat, RunLog, RunReporter, claim, finish

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
            result = train(snapshot, spec, eval_sets=eval_sets, progress=reporter.progress, should_stop=reporter.should_stop)
            model = register_model(run_id, result, blobs)
        log.info("run %s: model %s", run_id, model)
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
