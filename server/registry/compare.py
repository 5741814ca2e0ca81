"""Comparing model versions like builds, and promoting one only if it does not regress."""

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.diff import diff_commits
from server.datasets.graph import separating_commits
from server.datasets.history import resolve_rev
from server.datasets.models import Change, Commit, Dataset
from server.errors import Conflict, InvalidInput, NotFound
from server.registry.service import get_model, lock_models_of, model_read
from server.runs.models import ModelVersion

SCALARS = ("accuracy", "macro_f1", "loss")


def _delta(a, b) -> dict:
    return {"a": a, "b": b, "delta": None if a is None or b is None else round(b - a, 6)}


def _label_history(db: Session, ds: Dataset, a_commit: str, b_commit: str, keys: list[str]) -> dict[str, list[dict]]:
    """For each key, the commits between the two dataset commits that changed it, oldest first."""
    if not keys or a_commit == b_commit:
        return {k: [] for k in keys}
    between = separating_commits(db, resolve_rev(db, ds, a_commit), resolve_rev(db, ds, b_commit))
    history: dict[str, list[dict]] = {k: [] for k in keys}
    for start in range(0, len(keys), 500):
        rows = db.execute(
            select(Commit, Change)
            .join(Change, Change.commit_pk == Commit.pk)
            .where(Change.dataset_id == ds.id, Change.key.in_(keys[start : start + 500]))
            .order_by(Commit.generation, Commit.pk)
        ).all()
        for commit, change in rows:
            if commit.pk in between:
                history[change.key].append(
                    {
                        "commit": commit.id,
                        "message": commit.message,
                        "author": change.author or commit.author,
                        "label": change.label,
                        "removed": change.removed,
                    }
                )
    return history


def _label(labels: list[str], value: object) -> object:
    """A label index as its name (predictions store indices; older ones names)."""
    return labels[value] if isinstance(value, int) and 0 <= value < len(labels) else value


def compare(
    db: Session, blobs: BlobStore, *, ref_a: str, ref_b: str, eval_set: str | None = None, after: str | None = None, limit: int = 1000
) -> dict:
    """Two model versions compared like builds, with one page of the examples that flipped.

    Metric deltas overall and per class and both confusion matrices of every shared eval set; the
    flips (fixed or broken) of one eval set (default: `eval`), up to limit keys after `after` in key
    order, each with its label history between the two dataset commits; `next_cursor` for the rest.
    The data change between the commits is `GET .../diff?a=&b=` of `commits` (compare_all adds it).
    """
    from server.registry.predictions import flips_page, open_predictions

    a, b = get_model(db, ref_a), get_model(db, ref_b)
    if a.dataset_id != b.dataset_id:
        raise InvalidInput(f"{ref_a} and {ref_b} belong to different datasets; compare versions of one dataset")
    ds = db.get(Dataset, a.dataset_id)
    labels = list(ds.labels)
    eval_sets = {}
    for name in sorted(set(a.metrics) & set(b.metrics)):
        ma, mb = a.metrics[name], b.metrics[name]
        per_class = {
            label: {
                m: _delta(ma.get("per_class", {}).get(label, {}).get(m), mb.get("per_class", {}).get(label, {}).get(m))
                for m in ("precision", "recall", "f1")
            }
            for label in labels
        }
        eval_sets[name] = {
            "metrics": {m: _delta(ma.get(m), mb.get(m)) for m in SCALARS},
            "per_class": per_class,
            "confusion_matrix": {"a": ma.get("confusion_matrix"), "b": mb.get("confusion_matrix")},
        }
    primary = eval_set or ("eval" if "eval" in eval_sets else next(iter(eval_sets), None))
    if eval_set is not None and eval_set not in eval_sets:
        raise NotFound(f"{ref_a} and {ref_b} were not both scored on eval set '{eval_set}' (shared: {', '.join(eval_sets) or 'none'})")
    found, cursor = [], None
    if primary is not None:
        found, cursor = flips_page(
            open_predictions(blobs, a.predictions_blob), open_predictions(blobs, b.predictions_blob), primary, after, limit
        )
    history = _label_history(db, ds, a.commit_id, b.commit_id, [f[0] for f in found])
    flips = [
        {
            "key": key,
            "change": "fixed" if predicted_b == label_b else "broken",
            "label_a": _label(labels, label_a),
            "label_b": _label(labels, label_b),
            "predicted_a": _label(labels, predicted_a),
            "predicted_b": _label(labels, predicted_b),
            "label_history": history[key],
        }
        for key, label_a, predicted_a, label_b, predicted_b in found
    ]
    main = eval_sets.get(primary, {})
    return {
        "a": model_read(db, a).id,
        "b": model_read(db, b).id,
        "eval_set": primary,
        "metrics": main.get("metrics", {}),
        "per_class": main.get("per_class", {}),
        "confusion_matrix": main.get("confusion_matrix", {}),
        "fixed": [f["key"] for f in flips if f["change"] == "fixed"],
        "broken": [f["key"] for f in flips if f["change"] == "broken"],
        "flips": flips,
        "eval_sets": eval_sets,
        "commits": {"a": a.commit_id, "b": b.commit_id},
        "next_cursor": cursor,
    }


def compare_all(db: Session, blobs: BlobStore, *, ref_a: str, ref_b: str) -> dict:
    """The whole comparison (`s2 compare --json`): every page of flips, and the data diff between the commits."""
    result = compare(db, blobs, ref_a=ref_a, ref_b=ref_b)
    while result["next_cursor"] is not None:
        page = compare(db, blobs, ref_a=ref_a, ref_b=ref_b, after=result["next_cursor"])
        for part in ("fixed", "broken", "flips"):
            result[part] += page[part]
        result["next_cursor"] = page["next_cursor"]
    ds = db.get(Dataset, get_model(db, ref_a).dataset_id)
    data = diff_commits(db, blobs, resolve_rev(db, ds, result["commits"]["a"]), resolve_rev(db, ds, result["commits"]["b"]))
    result["data_diff"] = data.as_json()
    del result["next_cursor"]
    return result


def promote(db: Session, *, ref: str, stage: str, max_regression: float, force: bool = False, by: str | None = None) -> dict:
    """Move a model to stage; production refuses a model worse than the current one on a pinned eval set."""
    model = get_model(db, ref)
    # Lock the dataset before reading who holds the stage: a lock on the holder's row locks nothing when
    # there is none, and two first promotions would both see an empty stage and both win it.
    ds = lock_models_of(db, model.dataset_id)
    current = db.scalar(
        select(ModelVersion)
        .where(ModelVersion.dataset_id == ds.id, ModelVersion.stage == stage)
        .order_by(ModelVersion.version.desc())
        .execution_options(populate_existing=True)
    )
    if stage == "production" and not force:
        from server.engine.slices import model_slices

        failing = [s for s in model_slices(db, model) if not s["passed"]]
        if failing:
            s = failing[0]
            got = "no example of it was scored" if s["score"] is None else f"accuracy {s['score']:.4f} < {s['minimum']:.4f}"
            raise Conflict(
                f"{ds.name}@{model.version} fails the data unit test '{s['slice']}' ({got}"
                + (f"; failing examples: {', '.join(s['failing'][:5])}" if s["failing"] else "")
                + (f"; and {len(failing) - 1} more slice(s)" if len(failing) > 1 else "")
                + "); fix the data or the model, or pass --force",
                extra={"candidate": f"{ds.name}@{model.version}", "slices": failing},
            )
    checked = []
    if stage == "production" and current is not None and current.id != model.id:
        pinned = sorted((set(model.metrics) & set(current.metrics)) - {"eval"}) or ["eval"]
        for name in pinned:
            old, new = current.metrics[name].get("accuracy"), model.metrics[name].get("accuracy")
            checked.append({"eval_set": name, "production": old, "candidate": new})
            if old is not None and new is not None and old - new > max_regression and not force:
                raise Conflict(
                    f"{ds.name}@{model.version} is worse than production {ds.name}@{current.version} on eval set "
                    f"'{name}': accuracy {new:.4f} vs {old:.4f} (-{old - new:.4f}, more than the allowed "
                    f"{max_regression:.4f}); improve it or pass --force",
                    # the gate's figures, for a page to show beside the message
                    extra={
                        "candidate": f"{ds.name}@{model.version}",
                        "production": f"{ds.name}@{current.version}",
                        "max_regression": max_regression,
                        "checked": checked,
                    },
                )
    if current is not None and current.id != model.id:
        db.execute(
            update(ModelVersion).where(ModelVersion.id == current.id).values(stage="archived").execution_options(synchronize_session=False)
        )
    model.stage, model.promoted_by = stage, by
    db.flush()
    return {
        "model": f"{ds.name}@{model.version}",
        "stage": stage,
        "replaced": f"{ds.name}@{current.version}" if current is not None and current.id != model.id else None,
        "checked": checked,
    }
