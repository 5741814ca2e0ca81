"""The data engine's service: record a model's analysis, fill its queues, accept or keep a suggestion.

After a run's model is registered, the worker cross-fits K fold models and runs the model over
every example (trainer.crossfit); `record_analysis` stores the result as one Parquet blob and
refreshes two review queues of the dataset from it:

- `label-errors`: labeled examples whose given label the model, out of sample, confidently
  disagrees with (trainer.engine.label_errors), each with the label it suggests;
- `uncertain`: unlabeled examples to label next, by uncertainty with diversity (trainer.engine.active).

Accepting a suggestion stages it on a branch with its provenance ("suggested by digits@7,
label-error queue"), which the commit keeps on the change (history, blame). Keeping the given
label remembers it: the engine does not suggest another label for it again while it stays.
"""

import io
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from labeling.models import ReviewItem
from server.blobs import BlobStore
from server.datasets.datasets import get_dataset
from server.datasets.lookup import lookup
from server.datasets.models import Dataset, StagedEdit, utcnow
from server.datasets.refs import get_branch
from server.engine.models import KeptLabel, ModelAnalysis
from server.errors import Conflict, InvalidInput, NotFound
from server.runs.models import ModelVersion

LABEL_ERRORS, UNCERTAIN = "label-errors", "uncertain"
QUEUES = {LABEL_ERRORS: "label-error queue", UNCERTAIN: "active-learning queue"}
MAX_QUEUE = 10_000  # rows a refresh writes per queue: the most likely first
UNCERTAIN_BATCH = 1_000  # examples the active-learning queue picks per model version
LABELED_SAMPLE = 5_000  # labeled embeddings the diversity term measures against (a seeded sample)


@dataclass(frozen=True)
class AnalysisRead:
    model: str  # dataset@version
    state: str
    folds: int
    labeled: int | None
    examples: int | None
    crossfit_s: float | None
    analysis_s: float | None
    error: str | None
    queues: dict[str, int]


def analysis_plan(db: Session, run_id: int) -> tuple[int, int]:
    """(the run's model, the folds to cross-fit: the run's choice, else the watch rule's, else S2_ANALYSIS_FOLDS)."""
    from server.config import get_settings
    from server.runs.models import TrainingRun

    run = db.get(TrainingRun, run_id)
    return run.model_version_id, run.folds if run.folds is not None else get_settings().analysis_folds


def start_analysis(db: Session, model_id: int, folds: int) -> None:
    """Note that the workers are analysing model_id (a retried run starts it again)."""
    model = db.get(ModelVersion, model_id)
    row = db.get(ModelAnalysis, model_id)
    if row is None:
        db.add(ModelAnalysis(model_id=model_id, dataset_id=model.dataset_id, state="running", folds=folds, started_at=utcnow()))
    else:
        row.state, row.folds, row.error, row.started_at, row.finished_at = "running", folds, None, utcnow(), None
    db.flush()


def fail_analysis(db: Session, model_id: int, error: str) -> None:
    row = db.get(ModelAnalysis, model_id)
    if row is not None:
        row.state, row.error, row.finished_at = "failed", error[:2000], utcnow()


def _table(keys, labels, oos, probs, embeddings) -> bytes:  # noqa: ANN001
    import pyarrow as pa
    import pyarrow.parquet as pq

    def lists(matrix):  # noqa: ANN001, ANN202
        if matrix is None:
            return pa.nulls(len(keys), pa.list_(pa.float32()))
        return pa.array(list(np.asarray(matrix, dtype=np.float32)), type=pa.list_(pa.float32()))

    table = pa.table(
        {"key": keys, "label": labels, "oos": oos, "probabilities": lists(probs), "embedding": lists(embeddings)},
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def record_analysis(db: Session, blobs: BlobStore, model_id: int, snapshot, fit, seen) -> dict[str, int]:  # noqa: ANN001
    """Store a finished analysis (fit: trainer.crossfit.CrossFit or None; seen: its Analysis) and refresh the queues."""
    import pyarrow as pa

    from trainer.engine.active import select as pick
    from trainer.engine.label_errors import find_label_issues

    model = db.get(ModelVersion, model_id)
    ds = db.get(Dataset, model.dataset_id)
    labels = list(snapshot.labels)
    row_of = {k: i for i, k in enumerate(seen.keys)}
    oos = [None] * len(seen.keys)
    if fit is not None:
        for key, p in zip(fit.keys, np.asarray(fit.probabilities, dtype=np.float32).tolist()):  # one C call, not a float() each
            oos[row_of[key]] = p
    oos_column = pa.array(oos, type=pa.list_(pa.float32()))
    given = [labels[t] if t >= 0 else None for t in snapshot.targets]
    blob = blobs.put(_table(seen.keys, given, oos_column, seen.probabilities, seen.embeddings))
    started = utcnow()
    counts = {}
    newer = db.scalar(
        select(ModelVersion.id)
        .join(ModelAnalysis, ModelAnalysis.model_id == ModelVersion.id)
        .where(ModelVersion.dataset_id == ds.id, ModelVersion.version > model.version, ModelAnalysis.state == "done")
        .limit(1)
    )
    if newer is None:  # an older model finishing late never replaces a newer model's queues
        ref = f"{ds.name}@{model.version}"
        items: list[dict] = []
        if fit is not None:
            kept = {(k, lab) for k, lab in db.execute(select(KeptLabel.key, KeptLabel.label).where(KeptLabel.dataset_id == ds.id))}
            rows = [row_of[k] for k in fit.keys]
            targets = np.array([snapshot.targets[r] for r in rows], dtype=np.int64)
            keep = np.array([(snapshot.keys[r], labels[snapshot.targets[r]]) in kept for r in rows], dtype=bool)
            for issue in find_label_issues(targets, fit.probabilities, keep=keep)[:MAX_QUEUE]:
                r = rows[issue.index]
                items.append(
                    _item(ds, LABEL_ERRORS, snapshot, r, model, labels[issue.suggested], issue.confidence, 1.0 - issue.given_probability)
                    | {
                        "reason": f"{ref} gives {labels[issue.suggested]!r} {issue.confidence:.0%}, {given[r]!r} {issue.given_probability:.0%}"
                    }
                )
        unlabeled = [r for r, t in enumerate(snapshot.targets) if t < 0]
        if unlabeled:
            labeled = [r for r, t in enumerate(snapshot.targets) if t >= 0]
            if len(labeled) > LABELED_SAMPLE:
                labeled = sorted(np.random.default_rng(0).choice(labeled, LABELED_SAMPLE, replace=False).tolist())
            picks = pick(
                seen.probabilities[unlabeled],
                seen.embeddings[unlabeled],
                min(UNCERTAIN_BATCH, len(unlabeled)),
                labeled_embeddings=seen.embeddings[labeled] if labeled else None,
            )
            for rank, p in enumerate(picks):
                r = unlabeled[p.index]
                score = 1.0 - rank / max(1, len(picks))  # the order picked: uncertainty with diversity
                items.append(
                    _item(ds, UNCERTAIN, snapshot, r, model, labels[p.predicted], float(seen.probabilities[r][p.predicted]), score)
                    | {"reason": f"{ref} is unsure: margin {p.margin:.2f}, entropy {p.entropy:.2f}"}
                )
        db.execute(delete(ReviewItem).where(ReviewItem.dataset_id == ds.id, ReviewItem.queue.in_(list(QUEUES))))
        for start in range(0, len(items), 2000):
            db.execute(insert(ReviewItem), items[start : start + 2000])
        counts = {q: sum(1 for i in items if i["queue"] == q) for q in QUEUES}
    row = db.get(ModelAnalysis, model_id)
    row.state, row.blob, row.finished_at = "done", blob, utcnow()
    row.labeled, row.examples = (len(fit.keys) if fit is not None else 0), len(seen.keys)
    row.crossfit_s = fit.seconds if fit is not None else None
    row.analysis_s = seen.seconds + (utcnow() - started).total_seconds()
    db.flush()
    from server.engine.slices import score_model  # every data unit test of the dataset, on this model

    counts["slices failed"] = sum(not passed for passed in score_model(db, blobs, model_id).values())
    return counts


def _item(ds: Dataset, queue: str, snapshot, r: int, model: ModelVersion, suggested: str, confidence: float, score: float) -> dict:  # noqa: ANN001
    target = snapshot.targets[r]
    return {
        "dataset_id": ds.id,
        "queue": queue,
        "key": snapshot.keys[r],
        "score": float(score),
        "added_by": f"model {ds.name}@{model.version}",
        "added_at": utcnow(),
        "model_id": model.id,
        "suggested": suggested,
        "confidence": float(confidence),
        "given": snapshot.labels[target] if target >= 0 else None,
        "input": snapshot.inputs[r],
    }


def analysis_of(db: Session, model: ModelVersion) -> AnalysisRead | None:
    """The analysis of a model, or None when none ran (turned off, or an older model)."""
    row = db.get(ModelAnalysis, model.id)
    if row is None:
        return None
    ds = db.get(Dataset, model.dataset_id)
    counts = dict.fromkeys(QUEUES, 0)
    if row.state == "done":  # one grouped count, not a query per queue
        found = db.execute(
            select(ReviewItem.queue, func.count())
            .where(ReviewItem.dataset_id == ds.id, ReviewItem.queue.in_(list(QUEUES)), ReviewItem.model_id == model.id)
            .group_by(ReviewItem.queue)
        )
        counts.update(dict(found.all()))
    return AnalysisRead(
        model=f"{ds.name}@{model.version}",
        state=row.state,
        folds=row.folds,
        labeled=row.labeled,
        examples=row.examples,
        crossfit_s=row.crossfit_s,
        analysis_s=row.analysis_s,
        error=row.error,
        queues=counts,
    )


def list_matrix(column) -> np.ndarray:  # noqa: ANN001
    """An Arrow column of equal-length float lists (an analysis's probabilities or embeddings) as an (n, width) array."""
    flat = column.combine_chunks()
    width = len(flat[0]) if len(flat) else 0
    return flat.flatten().to_numpy(zero_copy_only=False).reshape(len(flat), width)


class _Embeddings:
    """A model's analysis as a mapped Arrow file: its keys, labels then, and unit-length embeddings (read once per process)."""

    def __init__(self, reader):  # noqa: ANN001
        from trainer.engine.neighbours import normalize

        table = reader.read_all()
        self.keys = table.column("key").to_pylist()
        self.labels = table.column("label").to_pylist()
        self.row = {k: i for i, k in enumerate(self.keys)}
        self.unit = normalize(list_matrix(table.column("embedding")))


def _embedding_batches(source):  # noqa: ANN001, ANN202
    yield from source.iter_batches(columns=["key", "label", "embedding"], batch_size=65_536)


def neighbours(db: Session, blobs: BlobStore, *, dataset: str, queue: str, key: str, k: int = 5) -> list[dict]:
    """The examples most like a queued one, by the embeddings of the model that queued it: [{key, label, similarity}].

    The label is the one each had when the model was trained: what a labeler compares a suspect with.
    """
    from server.datasets.arrow_cache import open_cached
    from trainer.engine.neighbours import nearest

    ds = get_dataset(db, dataset)
    item = _suggestion(db, ds, queue, key)
    analysis = db.get(ModelAnalysis, item.model_id) if item.model_id is not None else None
    if analysis is None or analysis.blob is None:
        raise NotFound(f"example '{key}' in the {queue} queue of dataset '{dataset}' was not queued by a model: it has no neighbours")
    seen = open_cached(blobs, analysis.blob, _embedding_batches, _Embeddings, variant=".embeddings")
    if key not in seen.row:
        raise NotFound(f"example '{key}' is not in the analysis of the model that queued it")
    idx, sims = nearest(seen.unit, [seen.row[key]], k=max(1, min(k, 50)), unit=True)
    return [{"key": seen.keys[i], "label": seen.labels[i], "similarity": round(float(s), 4)} for i, s in zip(idx[0], sims[0])]


def _suggestion(db: Session, ds: Dataset, queue: str, key: str) -> ReviewItem:
    item = db.scalar(select(ReviewItem).where(ReviewItem.dataset_id == ds.id, ReviewItem.queue == queue, ReviewItem.key == key))
    if item is None or item.suggested is None:
        raise NotFound(f"no suggestion for example '{key}' in the {queue} queue of dataset '{ds.name}'")
    return item


def accept_suggestions(
    db: Session, blobs: BlobStore, *, dataset: str, queue: str, keys: list[str], branch: str | None, author: str
) -> list[dict]:
    """Stage each key's suggested label on branch with its provenance, and take it out of the queue.

    An example whose label or input changed since the model ranked it (committed on the branch, or
    staged there by someone) is a Conflict: the suggestion was made for what it was then.
    """
    from server.datasets.staging import stage_edits

    if not keys:
        raise InvalidInput("no keys to accept: give at least one")
    ds = get_dataset(db, dataset)
    br = get_branch(db, ds, branch)
    items = {key: _suggestion(db, ds, queue, key) for key in keys}
    now = lookup(db, blobs, br.head_pk, list(items))
    staged = {e.key: e for e in db.scalars(select(StagedEdit).where(StagedEdit.branch_id == br.id, StagedEdit.key.in_(list(items))))}
    for key, item in items.items():
        row = now.get(key)
        edit = staged.get(key)
        label = edit.label if edit is not None else (row.label if row else None)
        if row is None or row.input != item.input or label != item.given or (edit is not None and edit.remove):
            what = (
                "removed"
                if row is None or (edit is not None and edit.remove)
                else f"labeled {label!r}"
                if label != item.given
                else "given a new input"
            )
            raise Conflict(
                f"example '{key}' changed on branch '{br.name}' since the model ranked it (it was labeled {item.given!r}; now {what}); "
                "the suggestion is not applied",
                extra={"key": key, "label": label},
            )
    models = {m.id: m.version for m in db.scalars(select(ModelVersion).where(ModelVersion.id.in_({i.model_id for i in items.values()})))}
    done, by_source = [], {}
    for key, item in items.items():
        by = f"{ds.name}@{models.get(item.model_id, '?')}" if item.model_id is not None else item.added_by
        source = f"suggested by {by}, {QUEUES.get(queue, f'review queue {queue}')}"
        by_source.setdefault(source, []).append((key, item.suggested, False))
        done.append({"key": key, "label": item.suggested, "was": item.given, "source": source})
    for source, edits in by_source.items():  # one staging per source (usually one model): not a lookup per key
        stage_edits(db, blobs, dataset=dataset, branch=br.name, edits=edits, author=author, source=source)
    db.execute(delete(ReviewItem).where(ReviewItem.id.in_([i.id for i in items.values()])).execution_options(synchronize_session=False))
    return done


def keep_labels(db: Session, *, dataset: str, queue: str, keys: list[str], by: str) -> int:
    """Keep each key's given label: remembered, so the engine does not suggest another for it again; out of the queue."""
    if not keys:
        raise InvalidInput("no keys to keep: give at least one")
    ds = get_dataset(db, dataset)
    items = [_suggestion(db, ds, queue, key) for key in keys]
    known = {
        (k, lab)
        for k, lab in db.execute(select(KeptLabel.key, KeptLabel.label).where(KeptLabel.dataset_id == ds.id, KeptLabel.key.in_(keys)))
    }
    fresh = [
        {"dataset_id": ds.id, "key": i.key, "label": i.given, "kept_by": by, "kept_at": utcnow()}
        for i in items
        if i.given is not None and (i.key, i.given) not in known
    ]
    if fresh:
        db.execute(insert(KeptLabel), fresh)
    db.execute(delete(ReviewItem).where(ReviewItem.id.in_([i.id for i in items])).execution_options(synchronize_session=False))
    return len(items)
