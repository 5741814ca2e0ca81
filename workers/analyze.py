"""What a worker does after a run's model is registered: the data engine's analysis of it.

K fold models are cross-fitted with the run's spec (trainer.crossfit), the model runs over every
example, and the result is recorded with the dataset's queues refreshed (server.engine.service).
A failure here is the analysis's, recorded on it, never the run's: the model stays registered.
"""

import logging
import traceback

log = logging.getLogger(__name__)


def analyze_model(model_id: int, weights: bytes, snapshot, spec, folds: int, blobs, progress=None, should_stop=None) -> None:  # noqa: ANN001
    """Cross-fit (folds > 0) and analyse the model; record the outcome."""
    from server.db import session_scope
    from server.engine.service import fail_analysis, record_analysis, start_analysis
    from trainer.crossfit import analyze, cross_fit

    with session_scope() as db:
        start_analysis(db, model_id, folds)
    try:
        fit = None
        labeled = sum(1 for t in snapshot.targets if t >= 0)
        if labeled and folds:
            log.info("model %s: cross-fitting %d folds over %d labeled examples", model_id, folds, labeled)
            fit = cross_fit(snapshot, spec, folds, progress=progress, should_stop=should_stop)
        seen = analyze(weights, snapshot)
        with session_scope() as db:
            counts = record_analysis(db, blobs, model_id, snapshot, fit, seen)
        log.info("model %s: analysed; queues and slices %s", model_id, counts)
    except Exception as exc:  # the model is registered already: an analysis that fails is recorded, not raised
        log.error("model %s: analysis failed:\n%s", model_id, traceback.format_exc())
        with session_scope() as db:
            fail_analysis(db, model_id, f"{type(exc).__name__}: {exc}")
