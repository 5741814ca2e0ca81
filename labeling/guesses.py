"""The model's guess for examples being labeled: predicted label, confidence and the top classes.

The guessing model is the dataset's production model, else its newest. Its predictions table
(written by the trainer, sorted by (eval_set, key) in the host's Arrow cache) is read by key, so
a page of guesses costs a binary search per key whatever the dataset's size.
"""

import bisect
from dataclasses import dataclass

import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.arrow_cache import open_cached
from server.registry.predictions import Predictions
from server.runs.models import ModelVersion

COLUMNS = ["eval_set", "key", "label", "predicted", "probabilities"]
TOP = 3


@dataclass(frozen=True)
class Guess:
    """What a model predicted for one example."""

    model: int  # the model's version number
    label: str
    confidence: float  # the predicted label's probability
    top: list[tuple[str, float]]  # the likeliest labels, most likely first


def _sorted_with_probabilities(source: pq.ParquetFile):
    names = [c for c in COLUMNS if c in source.schema_arrow.names]
    table = source.read(columns=names).sort_by([("eval_set", "ascending"), ("key", "ascending")]).combine_chunks()
    yield from table.to_batches(max_chunksize=65_536)


class _Scored(Predictions):
    def find(self, key: str) -> tuple[str, list[float] | None] | None:
        """(predicted, probabilities) of key in the first eval set that scored it."""
        for start, end in self.ranges.values():
            i = bisect.bisect_left(self.keys, key, lo=start, hi=end)
            if i < end and self.keys[i] == key:
                probs = self.table.column("probabilities")[i].as_py() if "probabilities" in self.table.column_names else None
                return self.table.column("predicted")[i].as_py(), probs
        return None


def guessing_model(db: Session, dataset_id: int) -> ModelVersion | None:
    """The production model of a dataset, else its newest model (None: no model yet)."""
    query = select(ModelVersion).where(ModelVersion.dataset_id == dataset_id)
    return db.scalar(query.where(ModelVersion.stage == "production").order_by(ModelVersion.version.desc()).limit(1)) or db.scalar(
        query.order_by(ModelVersion.version.desc()).limit(1)
    )


def guesses(model: ModelVersion | None, blobs: BlobStore, labels: list[str], keys: list[str]) -> dict[str, Guess]:
    """The guesses model made for these keys (keys it never scored are absent)."""
    if model is None or not keys:
        return {}
    scored = open_cached(blobs, model.predictions_blob, _sorted_with_probabilities, _Scored, variant=".guesses")
    found: dict[str, Guess] = {}
    for key in keys:
        hit = scored.find(key)
        if hit is None:
            continue
        predicted, probs = hit
        if probs:
            ranked = sorted(range(min(len(probs), len(labels))), key=lambda i: -probs[i])[:TOP]
            top = [(labels[i], round(float(probs[i]), 4)) for i in ranked]
            confidence = next((p for name, p in top if name == predicted), top[0][1] if top else 0.0)
        else:
            top, confidence = [(predicted, 1.0)], 1.0
        found[key] = Guess(model=model.version, label=predicted, confidence=confidence, top=top)
    return found
