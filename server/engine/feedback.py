"""Feedback from production: what a deployed model predicted, back into the dataset and the queues.

Each posted prediction names an existing example (its key) or carries a new input (text, a tabular
row, or an image in base64). New inputs land as unlabeled examples in one commit (keys
`production/<sha256 prefix>`, so the same input posted twice is one example). Where production and
the dataset's current model (its production model, else its newest, as analysed after training)
predict different classes for an existing example, the example goes to the `production` review
queue with production's label as the suggestion: a labeler settles it like any suggestion.
"""

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from labeling.models import ReviewItem
from server.blobs import BlobStore
from server.datasets.datasets import get_dataset
from server.datasets.lookup import lookup
from server.datasets.models import Dataset, utcnow
from server.datasets.refs import get_branch
from server.errors import InvalidInput
from server.runs.models import ModelVersion

QUEUE = "production"
TOLERANCE = 0.01  # how far probabilities may sum from 1 (rounding in a client's JSON)


@dataclass(frozen=True)
class Prediction:
    """One prediction a deployed model made: for an existing example (key) or a new input (exactly one of them)."""

    predicted: str
    probabilities: list[float] | None = None
    key: str | None = None
    text: str | None = None
    features: dict | None = None
    image_base64: str | None = None


def _input_bytes(p: Prediction, modality: str, where: str) -> bytes | None:
    given = [name for name in ("key", "text", "features", "image_base64") if getattr(p, name) is not None]
    if len(given) != 1:
        raise InvalidInput(f"{where}: give exactly one of key, text, features, image_base64 (got {', '.join(given) or 'none'})")
    if p.key is not None:
        return None
    wanted = {"text": "text", "tabular": "features", "image": "image_base64"}[modality]
    if given[0] != wanted:
        raise InvalidInput(f"{where}.{given[0]}: a {modality} dataset takes new inputs as {wanted}")
    if p.text is not None:
        return p.text.encode("utf-8")
    if p.features is not None:
        return json.dumps(p.features, sort_keys=True, separators=(",", ":")).encode()
    try:
        data = base64.b64decode(p.image_base64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{where}.image_base64: not valid base64") from None
    from server.datasets.importing import check_image

    check_image(data, f"{where}.image_base64")
    return data


def check_predictions(
    db: Session, *, dataset: str, model: str, items: list[Prediction]
) -> tuple[Dataset, ModelVersion, list[bytes | None]]:
    """Refuse what does not fit, naming the field: the model, a label, the probabilities, the input."""
    from server.errors import NotFound
    from server.registry.service import get_model

    ds = get_dataset(db, dataset)
    try:
        deployed = get_model(db, model)
    except NotFound:
        raise InvalidInput(f"model: no model {model!r} (give one of {ds.name}'s, e.g. {ds.name}@1 or {ds.name}@production)") from None
    if deployed.dataset_id != ds.id:
        raise InvalidInput(f"model: {model} is not a model of dataset '{dataset}'")
    if not items:
        raise InvalidInput("items: give at least one prediction")
    inputs = []
    for i, p in enumerate(items):
        where = f"items[{i}]"
        if p.predicted not in ds.labels:
            raise InvalidInput(f"{where}.predicted: {p.predicted!r} is not a label of '{dataset}' ({', '.join(ds.labels)})")
        if p.probabilities is not None:
            if len(p.probabilities) != len(ds.labels):
                raise InvalidInput(f"{where}.probabilities: {len(p.probabilities)} values for {len(ds.labels)} classes")
            if any(not 0 <= v <= 1 for v in p.probabilities):
                raise InvalidInput(f"{where}.probabilities: every value must lie between 0 and 1")
            if abs(sum(p.probabilities) - 1) > TOLERANCE:
                raise InvalidInput(f"{where}.probabilities: they sum to {sum(p.probabilities):.4f}, not 1")
        inputs.append(_input_bytes(p, ds.modality, where))
    return ds, deployed, inputs


def production_key(data: bytes) -> str:
    return f"production/{hashlib.sha256(data).hexdigest()[:16]}"


def record_predictions(
    db_work, blobs: BlobStore, *, dataset: str, model: str, items: list[Prediction], branch: str | None, author: str
) -> dict:  # noqa: ANN001
    """Land new inputs as unlabeled examples (one commit) and queue the disagreements; returns what happened."""
    from server.datasets.ingest import ingest
    from server.datasets.inputs import store_input
    from server.datasets.rows import Row

    ds, deployed, inputs = db_work(lambda db: check_predictions(db, dataset=dataset, model=model, items=items))
    new: dict[str, Row] = {}
    for data in inputs:
        if data is not None and production_key(data) not in new:
            input_id, inline = store_input(blobs, data, ds.modality)
            new[production_key(data)] = Row(key=production_key(data), input=input_id, label=None, inline=inline)
    commit = None
    if new:
        existing = db_work(lambda db: lookup(db, blobs, get_branch(db, ds, branch).head_pk, list(new)))
        fresh = [(k, row) for k, row in sorted(new.items()) if k not in existing]
        if fresh:
            done = ingest(
                db_work, blobs, dataset=dataset, branch=branch, rows=fresh, author=author,
                message=f"{len(fresh)} new input(s) from production ({model})", source_name="the posted predictions",
            )  # fmt: skip
            commit = done.commit
        new = {k: v for k, v in new.items() if k not in existing}
    keyed = {p.key: p for p in items if p.key is not None}
    queued = db_work(lambda db: _queue_disagreements(db, blobs, ds, deployed, model, keyed, branch))
    return {"received": len(items), "new_examples": len(new), "commit": commit, "disagreements": queued}


def _queue_disagreements(db: Session, blobs: BlobStore, ds: Dataset, deployed: ModelVersion, ref: str, keyed: dict, branch) -> int:  # noqa: ANN001
    """Queue the existing examples where production and the current model disagree (missing keys: refused)."""
    from labeling.guesses import guessing_model
    from server.engine.lineage import predicted_classes
    from server.engine.models import ModelAnalysis
    from server.errors import NotFound

    if not keyed:
        return 0
    rows = lookup(db, blobs, get_branch(db, ds, branch).head_pk, list(keyed))
    missing = [k for k in keyed if k not in rows]
    if missing:
        raise NotFound(f"no example '{missing[0]}' on branch '{branch or ds.default_branch}' of dataset '{ds.name}' (items: key)")
    current = guessing_model(db, ds.id)
    analysed = current is not None and db.get(ModelAnalysis, current.id) is not None
    ours = predicted_classes(db, blobs, current, f"{ds.name}@{current.version}") if analysed else {}
    items = []
    for key, p in keyed.items():
        mine = ours.get(key)
        if mine is None or ds.labels[mine] == p.predicted:
            continue
        confidence = p.probabilities[ds.labels.index(p.predicted)] if p.probabilities else None
        items.append(
            {
                "dataset_id": ds.id, "queue": QUEUE, "key": key, "score": float(confidence if confidence is not None else 0.5),
                "reason": f"production ({ref}) predicted {p.predicted!r}; {ds.name}@{current.version} predicts {ds.labels[mine]!r}",
                "added_by": f"production {ref}", "added_at": utcnow(), "model_id": None, "suggested": p.predicted,
                "confidence": confidence, "given": rows[key].label, "input": rows[key].input,
            }
        )  # fmt: skip
    if items:
        db.execute(
            delete(ReviewItem).where(
                ReviewItem.dataset_id == ds.id, ReviewItem.queue == QUEUE, ReviewItem.key.in_([i["key"] for i in items])
            )
        )
        db.execute(insert(ReviewItem), items)
    return len(items)
