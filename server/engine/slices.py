"""Data unit tests: named slices with a minimum accuracy, scored on every model, gating promotion.

A slice is a list of keys or a query on labels and metadata (`label = 3`, `label != 3`,
`label in (3, 5)`, `meta.source = web`, clauses joined by `and`), read at a pinned revision or at
each model's own commit. A model's score on a slice is the accuracy of its predicted classes (from
its analysis after training) against the slice's labels; it passes when that reaches the slice's
minimum. A model failing a slice is refused promotion (unless forced), naming the slice and the
first failing examples.
"""

import json
import re
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.datasets import get_dataset
from server.datasets.history import resolve_rev
from server.datasets.lookup import lookup
from server.datasets.models import Dataset, utcnow
from server.engine.models import ModelAnalysis, Slice, SliceScore
from server.errors import InvalidInput, NotFound
from server.runs.models import ModelVersion

NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
CLAUSE = re.compile(r"\s*(label|meta\.[A-Za-z_][A-Za-z0-9_]*)\s*(=|!=|in)\s*(.+?)\s*")
MAX_KEYS = 10_000
FAILING_SHOWN = 20
MODELS_RESCORED = 20  # a new slice scores this many of the newest analysed models


@dataclass(frozen=True)
class Clause:
    field: str  # "label" or "meta.NAME"
    op: str  # =, !=, in
    values: tuple[str, ...]

    def holds(self, label: str | None, meta: dict) -> bool:
        value = label if self.field == "label" else meta.get(self.field[5:])
        value = None if value is None else str(value)
        return (value in self.values) if self.op in ("=", "in") else (value not in self.values)


def parse_query(query: str) -> list[Clause]:
    """The query's clauses, or InvalidInput saying what is wrong with it."""
    clauses = []
    for part in re.split(r"\s+and\s+", query.strip()):
        m = CLAUSE.fullmatch(part)
        if not m:
            raise InvalidInput(
                f"query {query!r}: cannot read {part.strip()!r}; write clauses like label = 3, label != 3, label in (3, 5), "
                "meta.source = web, joined by 'and'"
            )
        field, op, raw = m.groups()
        if op == "in":
            if not (raw.startswith("(") and raw.endswith(")")):
                raise InvalidInput(f"query {query!r}: 'in' takes a list in parentheses, e.g. label in (3, 5)")
            values = tuple(v.strip() for v in raw[1:-1].split(",") if v.strip())
        else:
            values = (raw.strip(),)
        if not values:
            raise InvalidInput(f"query {query!r}: {field} {op} needs a value")
        clauses.append(Clause(field, op, values))
    return clauses


def add_slice(
    db: Session,
    blobs: BlobStore,
    *,
    dataset: str,
    name: str,
    keys: list[str] | None,
    query: str | None,
    rev: str | None,
    minimum: float,
    by: str,
) -> dict:
    """Create (or replace) a slice, refusing unknown keys, a query it cannot read or labels the dataset lacks; then score the models."""
    if not NAME.fullmatch(name):
        raise InvalidInput(f"invalid slice name {name!r}: lowercase letters, digits, - and _, starting with a letter, at most 64")
    if (keys is None) == (query is None):
        raise InvalidInput("a slice is either a list of keys or a query: give exactly one")
    if not 0 <= minimum <= 1:
        raise InvalidInput(f"minimum {minimum}: an accuracy between 0 and 1")
    ds = get_dataset(db, dataset)
    at = resolve_rev(db, ds, rev) if rev else None
    if keys is not None:
        if not keys or len(keys) > MAX_KEYS:
            raise InvalidInput(f"a slice of keys holds 1 to {MAX_KEYS} keys, not {len(keys)}")
        where = at or resolve_rev(db, ds, ds.default_branch)
        found = lookup(db, blobs, where.pk, keys)
        missing = [k for k in keys if k not in found]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise InvalidInput(f"slice {name}: no example '{missing[0]}'{more} at {rev or ds.default_branch} of dataset '{dataset}'")
    else:
        for clause in parse_query(query):
            if clause.field == "label" and (bad := [v for v in clause.values if v not in ds.labels]):
                raise InvalidInput(f"query {query!r}: {bad[0]!r} is not a label of '{dataset}' ({', '.join(ds.labels)})")
    row = db.get(Slice, (ds.id, name))
    if row is None:
        row = Slice(dataset_id=ds.id, name=name, created_by=by, created_at=utcnow())
        db.add(row)
    row.keys, row.query, row.rev, row.minimum = (sorted(set(keys)) if keys else None), query, (at.id if at else None), minimum
    db.flush()
    db.execute(
        delete(SliceScore).where(
            SliceScore.slice == name, SliceScore.model_id.in_(select(ModelVersion.id).where(ModelVersion.dataset_id == ds.id))
        )
    )
    analysed = db.scalars(
        select(ModelVersion)
        .join(ModelAnalysis, ModelAnalysis.model_id == ModelVersion.id)
        .where(ModelVersion.dataset_id == ds.id, ModelAnalysis.state == "done")
        .order_by(ModelVersion.version.desc())
        .limit(MODELS_RESCORED)
    )
    for model in analysed:
        _score(db, blobs, ds, model, row)
    return slice_read(db, ds, row)


def _members(db: Session, blobs: BlobStore, ds: Dataset, s: Slice, commit_id: str) -> dict[str, str]:
    """key -> label of the slice's labeled examples, read at its pinned revision or at commit_id."""
    at = resolve_rev(db, ds, s.rev or commit_id)
    if s.keys is not None:
        rows = lookup(db, blobs, at.pk, s.keys)
        return {k: r.label for k, r in rows.items() if r.label is not None}
    from server.datasets.snapshot import read_table

    clauses = parse_query(s.query)
    table = read_table(db, blobs, at.pk)
    out = {}
    for key, label, meta in zip(*(table.column(c).to_pylist() for c in ("key", "label", "meta"))):
        fields = json.loads(meta) if meta else {}
        if label is not None and all(c.holds(label, fields) for c in clauses):
            out[key] = label
    return out


def _score(db: Session, blobs: BlobStore, ds: Dataset, model: ModelVersion, s: Slice) -> SliceScore:
    from server.engine.lineage import predicted_classes

    predicted = predicted_classes(db, blobs, model, f"{ds.name}@{model.version}")
    members = _members(db, blobs, ds, s, model.commit_id)
    scored = {k: lab for k, lab in members.items() if k in predicted}
    wrong = sorted(k for k, lab in scored.items() if ds.labels[predicted[k]] != lab)
    score = (len(scored) - len(wrong)) / len(scored) if scored else None
    row = db.get(SliceScore, (model.id, s.name)) or SliceScore(model_id=model.id, slice=s.name)
    row.score, row.examples, row.minimum, row.failing, row.scored_at = score, len(scored), s.minimum, wrong[:FAILING_SHOWN], utcnow()
    row.passed = score is not None and score >= s.minimum
    db.merge(row)
    db.flush()
    return row


def score_model(db: Session, blobs: BlobStore, model_id: int) -> dict[str, bool]:
    """Score a model on every slice of its dataset (after its analysis); returns slice -> passed."""
    model = db.get(ModelVersion, model_id)
    ds = db.get(Dataset, model.dataset_id)
    return {
        s.name: _score(db, blobs, ds, model, s).passed
        for s in db.scalars(select(Slice).where(Slice.dataset_id == ds.id).order_by(Slice.name))
    }


def slice_read(db: Session, ds: Dataset, s: Slice) -> dict:
    latest = db.execute(
        select(ModelVersion.version, SliceScore)
        .join(SliceScore, SliceScore.model_id == ModelVersion.id)
        .where(ModelVersion.dataset_id == ds.id, SliceScore.slice == s.name)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    ).first()
    return {
        "name": s.name,
        "keys": len(s.keys) if s.keys is not None else None,
        "query": s.query,
        "rev": s.rev,
        "minimum": s.minimum,
        "latest": None if latest is None else {"model": f"{ds.name}@{latest[0]}", **score_read(latest[1])},
    }


def score_read(r: SliceScore) -> dict:
    return {
        "slice": r.slice,
        "score": r.score,
        "examples": r.examples,
        "minimum": r.minimum,
        "passed": r.passed,
        "failing": list(r.failing),
    }


def list_slices(db: Session, *, dataset: str) -> list[dict]:
    ds = get_dataset(db, dataset)
    return [slice_read(db, ds, s) for s in db.scalars(select(Slice).where(Slice.dataset_id == ds.id).order_by(Slice.name))]


def remove_slice(db: Session, *, dataset: str, name: str) -> None:
    ds = get_dataset(db, dataset)
    row = db.get(Slice, (ds.id, name))
    if row is None:
        raise NotFound(f"no slice '{name}' in dataset '{dataset}'")
    db.execute(
        delete(SliceScore).where(
            SliceScore.slice == name, SliceScore.model_id.in_(select(ModelVersion.id).where(ModelVersion.dataset_id == ds.id))
        )
    )
    db.delete(row)
    db.flush()


def slices_of_models(db: Session, *, dataset: str, versions: list[int]) -> dict[int, list[dict]]:
    """Each listed model version's slice scores (one query), for a page of models."""
    ds = get_dataset(db, dataset)
    rows = db.execute(
        select(ModelVersion.version, SliceScore)
        .join(SliceScore, SliceScore.model_id == ModelVersion.id)
        .where(ModelVersion.dataset_id == ds.id, ModelVersion.version.in_(versions))
        .order_by(SliceScore.slice)
    ).all()
    out: dict[int, list[dict]] = {}
    for version, score in rows:
        out.setdefault(version, []).append(score_read(score))
    return out


def model_slices(db: Session, model: ModelVersion) -> list[dict]:
    """A model's score on each slice of its dataset (a slice added after its analysis, and not rescored: absent)."""
    rows = db.scalars(select(SliceScore).where(SliceScore.model_id == model.id).order_by(SliceScore.slice))
    return [score_read(r) for r in rows]
