"""Lineage both ways: which models learned from an example (and the label it had then), and which commits
moved a model's predictions against the model before it.

An example was trained on by a model when, at the model's commit, it existed, had a label, and fell on
the train side of the split (an explicit split, else its key's hash and the spec's eval_fraction). A
model's predictions moved where its analysis and its predecessor's disagree on the predicted class;
the commits between the two models' commits that edited such keys are the ones that moved them.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.datasets import get_dataset
from server.datasets.graph import commits_since_base
from server.datasets.history import resolve_rev
from server.datasets.lookup import lookup_many
from server.datasets.models import Change, Commit, Dataset
from server.engine.models import ModelAnalysis
from server.errors import NotFound
from server.runs.models import ModelVersion

MODELS_SHOWN = 100  # the newest models an example's lineage reads
KEYS_SHOWN = 20  # moved keys listed per commit


def example_lineage(db: Session, blobs: BlobStore, *, dataset: str, key: str, limit: int = MODELS_SHOWN) -> list[dict]:
    """The dataset's models, newest first, each with the example as it was at the model's commit."""
    from trainer.data import assign_split

    ds = get_dataset(db, dataset)
    models = list(
        db.scalars(select(ModelVersion).where(ModelVersion.dataset_id == ds.id).order_by(ModelVersion.version.desc()).limit(limit))
    )
    commits = {m.id: resolve_rev(db, ds, m.commit_id) for m in models}
    rows = lookup_many(db, blobs, [commits[m.id].pk for m in models], [key]) if models else []
    out = []
    for m, found in zip(models, rows):
        row = found.get(key)
        side = assign_split(key, row.split, float(m.spec.get("eval_fraction", 0.2))) if row is not None and row.label is not None else None
        out.append(
            {
                "model": f"{ds.name}@{m.version}",
                "commit": m.commit_id,
                "present": row is not None,
                "label": row.label if row is not None else None,
                "side": side,  # train, eval, or None (absent or unlabeled then)
                "trained_on": side == "train",
            }
        )
    if not any(entry["present"] for entry in out):
        raise NotFound(f"no model of dataset '{dataset}' saw an example '{key}'")
    return out


class _Predicted:
    """A model analysis's predicted class per key (mapped once per process)."""

    def __init__(self, reader):  # noqa: ANN001
        from server.engine.service import list_matrix

        table = reader.read_all()
        matrix = list_matrix(table.column("probabilities"))
        self.predicted = dict(zip(table.column("key").to_pylist(), matrix.argmax(axis=1).tolist() if matrix.shape[1] else []))


def _probability_batches(source):  # noqa: ANN001, ANN202
    yield from source.iter_batches(columns=["key", "probabilities"], batch_size=65_536)


def predicted_classes(db: Session, blobs: BlobStore, model: ModelVersion, ref: str) -> dict[str, int]:
    from server.datasets.arrow_cache import open_cached

    analysis = db.get(ModelAnalysis, model.id)
    if analysis is None or analysis.blob is None:
        raise NotFound(f"model {ref} has no analysis of its examples (the data engine ran after it was trained, or was off)")
    return open_cached(blobs, analysis.blob, _probability_batches, _Predicted, variant=".predicted").predicted


def model_lineage(db: Session, blobs: BlobStore, *, ref: str) -> dict:
    """The commits since the model before this one whose edits moved this model's predictions, newest first."""
    from server.registry.service import get_model

    model = get_model(db, ref)
    ds = db.get(Dataset, model.dataset_id)
    before = db.scalar(
        select(ModelVersion)
        .where(ModelVersion.dataset_id == ds.id, ModelVersion.version < model.version)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )
    if before is None:
        return {"model": f"{ds.name}@{model.version}", "before": None, "moved": 0, "commits": []}
    before_ref = f"{ds.name}@{before.version}"
    now, then = predicted_classes(db, blobs, model, ref), predicted_classes(db, blobs, before, before_ref)
    moved = {k for k, p in now.items() if k in then and then[k] != p}
    a, b = resolve_rev(db, ds, before.commit_id), resolve_rev(db, ds, model.commit_id)
    _, since = commits_since_base(db, a, b)
    edited: dict[int, list[str]] = {}
    for pk, key in db.execute(select(Change.commit_pk, Change.key).where(Change.commit_pk.in_(since))):  # one read, not one per commit
        edited.setdefault(pk, []).append(key)
    commits = []
    for c in db.scalars(select(Commit).where(Commit.pk.in_(since)).order_by(Commit.generation.desc(), Commit.pk.desc())):
        hit = sorted(k for k in edited.get(c.pk, []) if k in moved)
        if hit:
            commits.append(
                {
                    "commit": c.id,
                    "message": c.message,
                    "author": c.author,
                    "edited": len(edited.get(c.pk, [])),
                    "moved": len(hit),
                    "keys": hit[:KEYS_SHOWN],
                }
            )
    return {"model": f"{ds.name}@{model.version}", "before": before_ref, "moved": len(moved), "commits": commits}
