"""A build's lineage: the model a commit's build starts from (a warm start), and the identical earlier build.

A warm start's parent is the newest model of the same dataset and template trained on the commit's first
parent, or else on the nearest first-parent ancestor that has one (the branch the commit was made on). Every
model of a dataset has the dataset's label list (fixed when it is created), so dataset and template decide here;
the worker then checks the weights themselves (trainer.warm.warm_start_problem) before it starts from them.

Two builds are identical when their commit, their resolved spec (seed and warm_start included: its hash), the
trainer's code and the model they start from are: the second would give the same weights, so it is not trained.
"""

from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.models import Commit, Dataset, utcnow
from server.db import read_scope
from server.errors import InvalidInput
from server.registry.service import code_version, model_refs
from server.runs.models import ModelVersion, TrainingRun

NO_PARENT = "no compatible parent model"


def warm_start_parent(db: Session, dataset_id: int, commit: Commit, template: str) -> ModelVersion | None:
    """The newest `template` model of the dataset on the nearest first-parent ancestor of commit that has one."""
    if commit.first_parent_pk is None:
        return None
    has_any = db.scalar(select(ModelVersion.id).where(ModelVersion.dataset_id == dataset_id, ModelVersion.template == template).limit(1))
    if has_any is None:  # no walk through a long history for a template never trained
        return None
    found = db.scalar(
        text(
            "WITH RECURSIVE chain(pk, id, first_parent_pk, depth) AS ("
            " SELECT pk, id, first_parent_pk, 1 FROM commits WHERE pk = :start"
            " UNION ALL"
            " SELECT c.pk, c.id, c.first_parent_pk, chain.depth + 1 FROM commits c JOIN chain ON c.pk = chain.first_parent_pk"
            " WHERE NOT EXISTS (SELECT 1 FROM model_versions m"
            "  WHERE m.dataset_id = :ds AND m.commit_id = chain.id AND m.template = :template))"
            " SELECT m.id FROM chain JOIN model_versions m ON m.commit_id = chain.id"
            " WHERE m.dataset_id = :ds AND m.template = :template ORDER BY chain.depth, m.version DESC LIMIT 1"
        ),
        {"start": commit.first_parent_pk, "ds": dataset_id, "template": template},
    )
    return db.get(ModelVersion, found) if found is not None else None


def identical_build(db: Session, ds: Dataset, commit: Commit, spec, asked: ModelVersion | None = None) -> ModelVersion | None:
    """The newest model of commit built with this resolved spec by this trainer code from the model a build would
    start from now: `asked` (--from-model), else the warm-start parent when the spec asks for one, else none."""
    models = db.scalars(
        select(ModelVersion)
        .where(
            ModelVersion.dataset_id == ds.id,
            ModelVersion.commit_id == commit.id,
            ModelVersion.spec_hash == spec.spec_hash(),
            ModelVersion.code_version == code_version(),
        )
        .order_by(ModelVersion.version.desc())
    ).all()
    if not models:
        return None
    if asked is not None:
        start = asked.id
    elif spec.warm_start:
        parent = warm_start_parent(db, ds.id, commit, spec.template)
        start = parent.id if parent is not None else None
    else:
        start = None
    return next((m for m in models if m.parent_model_id == start), None)


def identical_build_for_rule(db: Session, ds: Dataset, commit_id: str, rule_spec: dict | None) -> ModelVersion | None:
    """The identical earlier build of commit with a watch rule's spec (None also when that spec no longer validates)."""
    from server.runs.service import parse_spec

    try:
        spec = parse_spec(rule_spec, ds.modality)
    except InvalidInput:
        return None
    commit = db.scalars(select(Commit).where(Commit.dataset_id == ds.id, Commit.id == commit_id)).one()
    return identical_build(db, ds, commit, spec)


def reused_run(
    db: Session, ds: Dataset, commit_id: str, spec, model: ModelVersion, branch: str | None, requested_by: str | None = None
) -> TrainingRun:
    """A run answered at once by an identical earlier build: succeeded, its model that build's, nothing sent to a worker."""
    from server.runs.service import run_row

    run = run_row(
        ds,
        commit_id,
        spec,
        branch,
        requested_by,
        state="succeeded",
        model_version_id=model.id,
        parent_model_id=model.parent_model_id,
        device=model.device,
        finished_at=utcnow(),
    )
    db.add(run)
    db.flush()
    return run


@dataclass(frozen=True)
class WarmStart:
    """What a run asked to warm-start begins from: a parent model and its weights, or no parent and why."""

    model_id: int | None = None
    model: str | None = None  # DATASET@N
    weights: bytes | None = None
    reason: str | None = None  # set when there is no parent: the run trains from scratch


def warm_start_of(run_id: int, blobs: BlobStore) -> WarmStart | None:
    """The parent a run starts from: the one asked for (--from-model), else the commit's nearest; None when the
    run's spec does not ask for a warm start. A retried run keeps what its first attempt decided."""
    from server.runs.service import parse_spec

    with read_scope() as db:
        run = db.get(TrainingRun, run_id)
        if run.scratch_reason:
            return WarmStart(reason=run.scratch_reason)
        ds = db.get(Dataset, run.dataset_id)
        spec = parse_spec(run.spec, ds.modality)
        if not spec.warm_start and run.parent_model_id is None:
            return None
        if run.parent_model_id is not None:
            parent = db.get(ModelVersion, run.parent_model_id)
            if parent is None:
                return WarmStart(reason=f"{NO_PARENT}: model {run.parent_model_id}, asked for, no longer exists")
        else:
            commit = db.scalars(select(Commit).where(Commit.dataset_id == ds.id, Commit.id == run.commit_id)).one()
            parent = warm_start_parent(db, ds.id, commit, spec.template)
            if parent is None:
                return WarmStart(
                    reason=f"{NO_PARENT}: no {spec.template} model of '{ds.name}' on {run.commit_id[:12]}'s first parent or its ancestors"
                )
        ref = model_refs(db, {parent.id})[parent.id][0]
        blob = parent.weights_blob
    return WarmStart(model_id=parent.id, model=ref, weights=blobs.get(blob))
