"""The examples behind a model's figures: a confusion cell's examples, and where flipped examples' inputs are.

Predictions hold keys; the pages show inputs. An example's input is looked up at the revision the
model was scored on (its own dataset commit for `eval`, the pinned revision for a pinned set), a
page of keys in one batched lookup, never one query per key.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.history import resolve_rev
from server.datasets.lookup import lookup
from server.datasets.models import Dataset
from server.datasets.rows import Row
from server.errors import InvalidInput, NotFound
from server.registry.schemas import ExampleInput, ModelExample
from server.registry.service import get_model
from server.runs.models import EvalPin, ModelVersion

SNIPPET = 240  # characters of a text or tabular input shown beside its key


def _source(db: Session, model: ModelVersion, eval_set: str) -> tuple[Dataset, str]:
    """The dataset and commit an eval set's examples come from: the model's own for `eval`, the pin's otherwise."""
    pin = None
    if eval_set != "eval":
        pin = db.scalar(select(EvalPin).where(EvalPin.dataset_id == model.dataset_id, EvalPin.name == eval_set))
    if pin is None:
        return db.get(Dataset, model.dataset_id), model.commit_id
    return db.get(Dataset, pin.source_dataset_id), pin.commit_id


def _snippet(blobs: BlobStore, modality: str, row: Row | None) -> str | None:
    """The start of a text or tabular input; None for images (they are shown from the media route)."""
    if row is None or modality == "image":
        return None
    text = row.inline if row.inline is not None else blobs.get(row.input)[: SNIPPET * 4].decode("utf-8", "replace")
    return text[:SNIPPET] + ("…" if len(text) > SNIPPET else "")


def scored_inputs(db: Session, blobs: BlobStore, model: ModelVersion, eval_set: str, keys: list[str]) -> dict[str, ExampleInput]:
    """Each key's input as the model was scored on it (absent keys get input None), in one batched lookup."""
    source, commit = _source(db, model, eval_set)
    rows = lookup(db, blobs, resolve_rev(db, source, commit).pk, keys) if keys else {}
    return {
        key: ExampleInput(
            key=key,
            dataset=source.name,
            rev=commit,
            input=rows[key].input if key in rows else None,
            snippet=_snippet(blobs, source.modality, rows.get(key)),
        )
        for key in keys
    }


def flip_inputs(db: Session, blobs: BlobStore, *, ref_a: str, ref_b: str, eval_set: str, keys: list[str]) -> dict[str, ExampleInput]:
    """The inputs of examples two models were scored on: as model B saw them, else (removed since) as model A did."""
    found = scored_inputs(db, blobs, get_model(db, ref_b), eval_set, keys)
    missing = [k for k, e in found.items() if e.input is None]
    if missing:
        found.update(scored_inputs(db, blobs, get_model(db, ref_a), eval_set, missing))
    return found


def _label_name(labels: list[str], value: object) -> str | None:
    """A stored label (a name, or an index in older predictions) as its name."""
    if isinstance(value, int) and 0 <= value < len(labels):
        return labels[value]
    return None if value is None else str(value)


def cell_examples(
    db: Session,
    blobs: BlobStore,
    *,
    ref: str,
    eval_set: str = "eval",
    label: str | None = None,
    predicted: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[ModelExample]:
    """The examples of eval_set the model was scored on with that label and that prediction (None: any), in key order.

    label=i, predicted=j are the examples behind cell (i, j) of the model's confusion matrix; up to
    limit keys after `after`, each with its input (as it was scored) to show it.
    """
    from server.registry.predictions import cell_rows, open_predictions

    model = get_model(db, ref)
    ds = db.get(Dataset, model.dataset_id)
    labels = list(ds.labels)
    for what, value in (("label", label), ("predicted", predicted)):
        if value is not None and value not in labels:
            raise InvalidInput(f"{what} {value!r} is not a label of dataset '{ds.name}' (its labels: {', '.join(labels)})")
    predictions = open_predictions(blobs, model.predictions_blob)
    if eval_set not in predictions.ranges:
        scored = ", ".join(sorted(predictions.ranges)) or "none"
        raise NotFound(f"model {ds.name}@{model.version} was not scored on eval set '{eval_set}' (its eval sets: {scored})")
    rows = cell_rows(predictions, eval_set, label=label, predicted=predicted, labels=labels, after=after, limit=limit)
    inputs = scored_inputs(db, blobs, model, eval_set, [r[0] for r in rows])
    return [
        ModelExample(**inputs[key].model_dump(), label=_label_name(labels, truth), predicted=_label_name(labels, guess))
        for key, truth, guess in rows
    ]
