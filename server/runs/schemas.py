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
    stage: str | None
    promoted_by: str | None = None
    created_at: datetime
