"""The model registry: turning a finished run into a model version, listing and finding models."""

import hashlib
import re
from functools import lru_cache
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.datasets import get_dataset
from server.datasets.history import resolve_rev
from server.datasets.models import Dataset, utcnow
from server.db import read_scope, session_scope
from server.errors import InvalidInput, NotFound
from server.runs.models import EvalPin, ModelVersion, TrainingRun
from server.runs.schemas import ModelRead

MODEL_REF = re.compile(r"^(?P<dataset>[^@]+)@(?P<which>\d+|latest|production|staging)$")


@lru_cache(maxsize=1)
def code_version() -> str:
    """A digest of the trainer's source: two models with equal digests were built by the same code."""
    root = Path(__file__).resolve().parent.parent.parent / "trainer"
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def to_training_snapshot(db: Session, blobs: BlobStore, ds: Dataset, commit_id: str, eval_fraction: float | None = None):
    """A revision in the trainer's terms: keys, input ids, label indices, splits, and a verified reader.

    With eval_fraction, only the revision's eval split (as the trainer draws it) is kept.
    """
    from server.datasets.inputs import InputReader
    from server.datasets.snapshot import read_table  # Arrow: only where a snapshot is read, not to list models
    from trainer.data import TrainingSnapshot, assign_split

    table = read_table(db, blobs, resolve_rev(db, ds, commit_id).pk)
    index = {label: i for i, label in enumerate(ds.labels)}
    columns = {name: table.column(name).to_pylist() for name in ("key", "input", "label", "split", "inline")}
    rows = list(zip(columns["key"], columns["input"], columns["label"], columns["split"], columns["inline"]))
    if eval_fraction is not None:
        rows = [r for r in rows if assign_split(r[0], r[3], eval_fraction) == "eval"]
    inline = {r[1]: r[4] for r in rows if r[4] is not None}
    return TrainingSnapshot(
        dataset=ds.name,
        commit=commit_id,
        modality=ds.modality,
        labels=tuple(ds.labels),
        keys=[r[0] for r in rows],
        inputs=[r[1] for r in rows],
        targets=[index.get(r[2], -1) if r[2] is not None else -1 for r in rows],
        splits=[r[3] for r in rows],
        read_input=InputReader(blobs, inline),
    )


def training_inputs(run_id: int, blobs: BlobStore):
    """What the trainer needs for a run: the snapshot, the pinned eval sets, the resolved spec."""
    from server.runs.service import parse_spec

    with read_scope() as db:  # the whole snapshot is read: never hold a writer up meanwhile
        run = db.get(TrainingRun, run_id)
        ds = db.get(Dataset, run.dataset_id)
        spec = parse_spec(run.spec, ds.modality)
        snapshot = to_training_snapshot(db, blobs, ds, run.commit_id)
        eval_sets = {}
        for pin in db.scalars(select(EvalPin).where(EvalPin.dataset_id == ds.id).order_by(EvalPin.name)):
            source = db.get(Dataset, pin.source_dataset_id)
            if tuple(source.labels) != tuple(ds.labels):
                raise InvalidInput(f"pinned eval set '{pin.name}' has labels {source.labels}, the dataset {ds.labels}")
            fraction = spec.eval_fraction if pin.only_eval_split else None
            eval_sets[pin.name] = to_training_snapshot(db, blobs, source, pin.commit_id, eval_fraction=fraction)
        return snapshot, eval_sets, spec


def lock_models_of(db: Session, dataset_id: int) -> Dataset:
    """The dataset, its row locked until the transaction ends: one writer at a time numbers or stages its models.

    The dataset row always exists, unlike the rows being decided about (the next version, the current
    production model). FOR NO KEY UPDATE on PostgreSQL: it excludes other lockers of the row but not the
    key-share locks that inserts of commits and runs take through their foreign keys. SQLite transactions
    are serialized already (BEGIN IMMEDIATE), so there it adds nothing.
    """
    query = select(Dataset).where(Dataset.id == dataset_id).with_for_update(key_share=True)
    return db.scalars(query.execution_options(populate_existing=True)).one()


def register_model(run_id: int, result, blobs: BlobStore) -> str:
    """Store a finished training's weights and predictions and record the model version, atomically."""
    weights = blobs.put(result.weights)  # blobs first: a row never points at a missing blob
    predictions = blobs.put(result.predictions)
    with session_scope() as db:
        run = db.get(TrainingRun, run_id, with_for_update=True)
        ds = lock_models_of(db, run.dataset_id)  # two runs finishing together must not both take max + 1
        version = 1 + (db.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.dataset_id == ds.id)) or 0)
        model = ModelVersion(
            dataset_id=ds.id,
            version=version,
            run_id=run.id,
            commit_id=run.commit_id,
            spec=result.spec,
            spec_hash=result.spec_hash,
            template=result.spec["template"],
            code_version=code_version(),
            weights_blob=weights,
            predictions_blob=predictions,
            metrics=result.metrics,
            curves=result.curves,
            device=result.device,
            duration_s=result.duration_s,
            parent_model_id=run.parent_model_id,  # set by the worker when the run started from it (a warm start)
            stage=None,
        )
        db.add(model)
        db.flush()
        db.execute(
            update(TrainingRun)
            .where(TrainingRun.id == run.id)
            .values(
                state="succeeded",
                model_version_id=model.id,
                device=result.device,
                finished_at=utcnow(),
                progress={**(run.progress or {}), "done": True},
            )
            .execution_options(synchronize_session=False)
        )
        return f"{ds.name}@{version}"


def model_refs(db: Session, ids: set[int]) -> dict[int, tuple[str, int]]:
    """model version id -> (its reference DATASET@N, the run that built it), in one query; ids not found are left out."""
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    rows = db.execute(
        select(ModelVersion.id, Dataset.name, ModelVersion.version, ModelVersion.run_id)
        .join(Dataset, Dataset.id == ModelVersion.dataset_id)
        .where(ModelVersion.id.in_(ids))
    ).all()
    return {i: (f"{name}@{version}", run_id) for i, name, version, run_id in rows}


def model_read(db: Session, m: ModelVersion, name: str | None = None) -> ModelRead:
    """The public view of a model version (name: its dataset's, when the caller has it); `metrics` are its `eval` set's."""
    name = name or db.get(Dataset, m.dataset_id).name
    parent = model_refs(db, {m.parent_model_id}).get(m.parent_model_id) if m.parent_model_id else None
    return ModelRead(
        id=f"{name}@{m.version}",
        dataset=name,
        version=m.version,
        dataset_commit=m.commit_id,
        run=m.run_id,
        spec=m.spec,
        spec_hash=m.spec_hash,
        template=m.template,
        code_version=m.code_version,
        metrics=m.metrics.get("eval", {}),
        eval_sets=m.metrics,
        curves=m.curves,
        weights=m.weights_blob,
        predictions=m.predictions_blob,
        device=m.device,
        duration_s=m.duration_s,
        parent_model=parent[0] if parent else None,
        stage=m.stage,
        promoted_by=m.promoted_by,
        created_at=m.created_at,
    )


def get_model(db: Session, ref: str) -> ModelVersion:
    """The model a reference names: DATASET@N, DATASET@latest or DATASET@<stage>."""
    match = MODEL_REF.match(ref.strip())
    if not match:
        raise InvalidInput(f"invalid model reference {ref!r}: use DATASET@VERSION (e.g. digits@3), DATASET@latest or DATASET@production")
    ds = get_dataset(db, match["dataset"])
    which = match["which"]
    query = select(ModelVersion).where(ModelVersion.dataset_id == ds.id)
    if which.isdigit():
        query = query.where(ModelVersion.version == int(which))
    elif which != "latest":
        query = query.where(ModelVersion.stage == which)
    model = db.scalar(query.order_by(ModelVersion.version.desc()).limit(1))
    if model is None:
        raise NotFound(f"no model {ref} (list them with: s2 models {ds.name})")
    return model


def list_models(db: Session, *, dataset: str, before: int | None = None, limit: int | None = None) -> list[ModelRead]:
    """A dataset's model versions, newest first (versions below `before`, at most limit)."""
    ds = get_dataset(db, dataset)
    query = select(ModelVersion).where(ModelVersion.dataset_id == ds.id).order_by(ModelVersion.version.desc())
    if before is not None:
        query = query.where(ModelVersion.version < before)
    if limit is not None:
        query = query.limit(limit)
    return [model_read(db, m, ds.name) for m in db.scalars(query)]


def pin_eval(db: Session, *, dataset: str, name: str, source: str | None, rev: str, only_eval_split: bool) -> dict:
    """Pin an evaluation set: rev of dataset `source` (default: this dataset), its eval split or all of it."""
    from server.datasets.datasets import check_name

    ds = get_dataset(db, dataset)
    check_name("eval set", name)
    if name == "eval":
        raise InvalidInput("'eval' names the dataset's own held-out split; choose another name for a pinned set")
    src = get_dataset(db, source) if source else ds
    if src.modality != ds.modality:
        raise InvalidInput(
            f"dataset '{src.name}' holds {src.modality} data, but '{dataset}' holds {ds.modality}: an eval set needs the same modality"
        )
    if list(src.labels) != list(ds.labels):
        raise InvalidInput(
            f"dataset '{src.name}' has labels {src.labels}, but '{dataset}' has {ds.labels}: an eval set needs the same label set"
        )
    commit = resolve_rev(db, src, rev)
    pin = db.scalar(select(EvalPin).where(EvalPin.dataset_id == ds.id, EvalPin.name == name))
    if pin is None:
        pin = EvalPin(dataset_id=ds.id, name=name, source_dataset_id=src.id, commit_id=commit.id, only_eval_split=only_eval_split)
        db.add(pin)
    pin.source_dataset_id, pin.commit_id, pin.only_eval_split = src.id, commit.id, only_eval_split
    db.flush()
    return {"dataset": dataset, "name": name, "source": src.name, "commit": commit.id, "only_eval_split": only_eval_split}
