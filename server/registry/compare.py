"""Comparing model versions like builds, and promoting one only if it does not regress."""

import io

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.diff import diff_commits
from server.datasets.history import CommitGraph, resolve_rev
from server.datasets.models import Change, Commit, Dataset
from server.errors import Conflict, InvalidInput
from server.registry.service import get_model, lock_models_of, model_read
from server.runs.models import ModelVersion

SCALARS = ("accuracy", "macro_f1", "loss")


def _delta(a, b) -> dict:
    return {"a": a, "b": b, "delta": None if a is None or b is None else round(b - a, 6)}


def _predictions(blobs: BlobStore, model: ModelVersion, labels: list[str]) -> dict[str, dict[str, tuple]]:
    """eval set -> key -> (label, predicted), labels as names."""
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(blobs.get(model.predictions_blob)), columns=["eval_set", "key", "label", "predicted"])

    def name(v):
        return labels[v] if isinstance(v, int) and 0 <= v < len(labels) else v

    out: dict[str, dict[str, tuple]] = {}
    for eval_set, key, label, predicted in zip(*(table.column(c).to_pylist() for c in ("eval_set", "key", "label", "predicted"))):
        out.setdefault(eval_set, {})[key] = (name(label), name(predicted))
    return out


def _label_history(db: Session, ds: Dataset, a_commit: str, b_commit: str, keys: list[str]) -> dict[str, list[dict]]:
    """For each key, the commits between the two dataset commits that changed it, oldest first."""
    if not keys or a_commit == b_commit:
        return {k: [] for k in keys}
    graph = CommitGraph.load(db, ds.id)
    a, b = resolve_rev(db, ds, a_commit).pk, resolve_rev(db, ds, b_commit).pk
    base = graph.merge_base(a, b)
    between = graph.only_in(a, base) | graph.only_in(b, base)
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
                        "author": commit.author,
                        "label": change.label,
                        "removed": change.removed,
                    }
                )
    return history


def compare(db: Session, blobs: BlobStore, *, ref_a: str, ref_b: str) -> dict:
    """Metric deltas overall and per class, both confusion matrices, flipped examples and the data diff."""
    a, b = get_model(db, ref_a), get_model(db, ref_b)
    if a.dataset_id != b.dataset_id:
        raise InvalidInput(f"{ref_a} and {ref_b} belong to different datasets; compare versions of one dataset")
    ds = db.get(Dataset, a.dataset_id)
    labels = list(ds.labels)
    preds_a, preds_b = _predictions(blobs, a, labels), _predictions(blobs, b, labels)
    eval_sets, flips_by_set = {}, {}
    for name in sorted(set(a.metrics) & set(b.metrics)):
        ma, mb = a.metrics[name], b.metrics[name]
        per_class = {
            label: {
                m: _delta(ma.get("per_class", {}).get(label, {}).get(m), mb.get("per_class", {}).get(label, {}).get(m))
                for m in ("precision", "recall", "f1")
            }
            for label in labels
        }
        pa_, pb_ = preds_a.get(name, {}), preds_b.get(name, {})
        fixed, broken = [], []
        for key in sorted(set(pa_) & set(pb_)):
            right_a = pa_[key][1] == pa_[key][0]
            right_b = pb_[key][1] == pb_[key][0]
            if right_a != right_b:
                (fixed if right_b else broken).append(key)
        flips_by_set[name] = (fixed, broken)
        eval_sets[name] = {
            "metrics": {m: _delta(ma.get(m), mb.get(m)) for m in SCALARS},
            "per_class": per_class,
            "confusion_matrix": {"a": ma.get("confusion_matrix"), "b": mb.get("confusion_matrix")},
            "fixed": fixed,
            "broken": broken,
        }
    primary = "eval" if "eval" in eval_sets else next(iter(eval_sets), None)
    fixed, broken = flips_by_set.get(primary, ([], []))
    history = _label_history(db, ds, a.commit_id, b.commit_id, fixed + broken)
    flips = [
        {
            "key": k,
            "change": kind,
            "label_a": preds_a[primary][k][0],
            "label_b": preds_b[primary][k][0],
            "predicted_a": preds_a[primary][k][1],
            "predicted_b": preds_b[primary][k][1],
            "label_history": history[k],
        }
        for kind, keys in (("fixed", fixed), ("broken", broken))
        for k in keys
    ]
    data = diff_commits(db, blobs, ds, resolve_rev(db, ds, a.commit_id), resolve_rev(db, ds, b.commit_id))
    main = eval_sets.get(primary, {})
    return {
        "a": model_read(db, a).id,
        "b": model_read(db, b).id,
        "eval_set": primary,
        "metrics": main.get("metrics", {}),
        "per_class": main.get("per_class", {}),
        "confusion_matrix": main.get("confusion_matrix", {}),
        "fixed": fixed,
        "broken": broken,
        "flips": flips,
        "eval_sets": eval_sets,
        "data_diff": data.as_json(),
    }


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
                    f"{max_regression:.4f}); improve it or pass --force"
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
