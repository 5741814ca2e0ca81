"""Scoring a trained net: probabilities per example, classification metrics, the predictions table."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from trainer.data import TrainingSnapshot
from trainer.datamodule import ExampleDataset, example_dataset, make_loader
from trainer.spec import TrainSpec

ScoredSet = tuple[TrainingSnapshot, list[int], list[int]]  # snapshot, rows to score, targets in training label order


@torch.no_grad()
def score(net: nn.Module, loader: DataLoader, device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (N, C) and per-example cross-entropy (N,; NaN for unlabeled) in loader order."""
    was_training = net.training
    net.eval().to(device)
    probs, losses = [], []
    for x, y in loader:
        log_p = F.log_softmax(net(x.to(device)).float(), dim=-1).cpu()
        probs.append(log_p.exp())
        picked = log_p.gather(1, y.clamp(min=0).unsqueeze(1)).squeeze(1)
        losses.append(torch.where(y >= 0, -picked, torch.full_like(picked, float("nan"))))
    net.train(was_training)
    if not probs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.float64)
    return torch.cat(probs).numpy(), torch.cat(losses).double().numpy()


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, losses: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """accuracy, macro_f1, loss, per_class precision/recall/f1/support, confusion_matrix (rows true), count."""
    n, c = len(y_true), len(labels)
    cm = np.zeros((c, c), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp, support, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
    precision = np.divide(tp, predicted, out=np.zeros(c), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(c), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(c), where=(precision + recall) > 0)
    seen = (support > 0) | (predicted > 0)  # as scikit-learn: macro over labels that occur in truth or prediction
    return {
        "accuracy": float(tp.sum() / n) if n else None,
        "macro_f1": float(f1[seen].mean()) if seen.any() else None,
        "loss": float(losses.mean()) if n else None,
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": cm.tolist(),
        "count": n,
    }


def predictions_parquet(rows: dict[str, list[Any]]) -> bytes:
    """Parquet bytes of the predictions table (columns as trainer.result.PREDICTION_COLUMNS)."""
    schema = pa.schema(
        [
            ("eval_set", pa.string()),
            ("key", pa.string()),
            ("label", pa.string()),
            ("predicted", pa.string()),
            ("probabilities", pa.list_(pa.float32())),
            ("loss", pa.float64()),
        ]
    )
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pydict(rows, schema=schema), buf)
    return buf.getvalue()


def score_sets(
    net: nn.Module,
    sets: dict[str, ScoredSet],
    encode: Callable[[bytes, str], Tensor],
    spec: TrainSpec,
    labels: list[str],
    device: torch.device,
    datasets: dict[str, ExampleDataset] | None = None,
) -> tuple[dict[str, dict], dict[str, list[Any]]]:
    """Metrics per named set, and the predictions table's columns over all of them.

    datasets: already made datasets for some sets (their decoded inputs are reused instead of decoded again).
    """
    metrics: dict[str, dict] = {}
    table: dict[str, list[Any]] = {"eval_set": [], "key": [], "label": [], "predicted": [], "probabilities": [], "loss": []}
    for name, (snap, rows, targets) in sets.items():
        dataset = (datasets or {}).get(name)
        if dataset is None:
            dataset = example_dataset(snap, rows, targets, encode, spec)
        probs, losses = score(net, make_loader(dataset, spec), device)
        predicted = probs.argmax(1) if len(rows) else np.zeros(0, np.int64)
        if any(t >= 0 for t in targets) or not rows:  # a set of unlabeled examples has predictions, not metrics
            metrics[name] = classification_metrics(np.asarray(targets, np.int64), predicted, losses, labels)
        table["eval_set"] += [name] * len(rows)
        table["key"] += [snap.keys[r] for r in rows]
        table["label"] += [labels[t] if t >= 0 else None for t in targets]
        table["predicted"] += [labels[p] for p in predicted]
        table["probabilities"] += probs.tolist()
        table["loss"] += losses.tolist()
    return metrics, table
