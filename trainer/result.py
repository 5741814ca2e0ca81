"""What a training run hands back; torch-free so the server and workers can type against it cheaply."""

from __future__ import annotations

from dataclasses import dataclass, field

PREDICTION_COLUMNS = ("eval_set", "key", "label", "predicted", "probabilities", "loss")


class Cancelled(Exception):
    """Raised by train() when should_stop() asked it to stop."""


@dataclass
class TrainResult:
    """The compiled model and everything measured about it."""

    weights: bytes  # safetensors of the net's state_dict; metadata: spec, labels, template, data_info, format
    spec: dict  # the resolved spec
    spec_hash: str
    metrics: dict[str, dict]  # eval set name ("eval" + pinned names) -> accuracy, macro_f1, loss, per_class, ...
    curves: dict[str, list[float]]  # "train/loss", "eval/loss", "eval/accuracy": one value per epoch run
    predictions: bytes  # Parquet with PREDICTION_COLUMNS, one row per scored example
    device: str  # e.g. "cpu", "cuda:0 x2"
    epochs_run: int
    duration_s: float
    labels: list[str] = field(default_factory=list)  # label names, the order of probabilities and confusion rows
