"""What the run and model services return."""

from datetime import datetime

from pydantic import BaseModel


class RunRead(BaseModel):
    """A training run as `s2 runs --json` shows it."""

    id: int
    dataset: str
    dataset_commit: str
    branch: str | None
    covers: list[str]
    spec: dict
    spec_hash: str
    queue: str
    state: str
    attempt: int
    progress: dict | None
    error: str | None
    log_tail: str | None
    worker_host: str | None
    device: str | None
    model: str | None
    requested_by: str | None = None
    reused: bool = False  # the model is an identical earlier build (same commit, spec, seed, code): nothing was trained
    parent_model: str | None = None  # warm start: the model it starts from (DATASET@N)
    scratch_reason: str | None = None  # warm start asked for, but trained from scratch: why
    folds: int | None = None  # the data engine's cross-fitting asked of this run (None: S2_ANALYSIS_FOLDS)
    # the data engine's analysis of its model after training: state (running, done, failed), folds, labeled,
    # examples, crossfit_s and analysis_s (what it cost), error; None until it starts (or for a reused build)
    analysis: dict | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ModelRead(BaseModel):
    """A model version as `s2 models --json` shows it: metrics are those of the `eval` set."""

    id: str
    dataset: str
    version: int
    dataset_commit: str
    run: int
    spec: dict
    spec_hash: str
    template: str
    code_version: str
    metrics: dict
    eval_sets: dict
    curves: dict
    weights: str
    predictions: str
    device: str
    duration_s: float
    parent_model: str | None = None  # the model it was fine-tuned from (DATASET@N); None: trained from scratch
    stage: str | None
    promoted_by: str | None = None
    created_at: datetime
