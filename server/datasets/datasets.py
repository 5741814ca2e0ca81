"""Datasets: creating, finding and listing them, and the names s2 accepts."""

import re
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.datasets.models import Branch, Commit, Dataset
from server.datasets.paths import check_label_name
from server.datasets.schemas import DatasetRead
from server.errors import AlreadyExists, InvalidInput, NotFound

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
REF_NAME = re.compile(r"(?!.*\.\.)(?!.*~)[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")
MODALITIES = ("image", "text", "tabular")
MAX_LABELS = 10_000


def check_name(kind: str, name: str, pattern: re.Pattern = NAME) -> str:
    """Refuse names that would be ambiguous in revisions or unsafe in paths (the whole name must match)."""
    if not isinstance(name, str) or not pattern.fullmatch(name):
        raise InvalidInput(f"invalid {kind} name {name!r}: use letters, digits, '.', '_', '-' (start with a letter or digit)")
    return name


def dataset_read(ds: Dataset) -> DatasetRead:
    """The public view of a dataset row."""
    return DatasetRead(
        name=ds.name, modality=ds.modality, task=ds.task, labels=list(ds.labels), default_branch=ds.default_branch, created_at=ds.created_at
    )


def get_dataset(db: Session, name: str) -> Dataset:
    """The dataset called name, or NotFound."""
    ds = db.scalar(select(Dataset).where(Dataset.name == name))
    if ds is None:
        close = did_you_mean(name, db.scalars(select(Dataset.name).order_by(Dataset.name).limit(SUGGEST_AMONG)))
        if close:
            raise NotFound(f"no dataset named '{name}'; {close}")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise NotFound(f"no dataset named {name!r} (list them with: s2 dataset list)")
        raise NotFound(
            f"no dataset named '{name}' (list them with: s2 dataset list; create it with: s2 dataset create {name} --modality ... --labels ...)"
        )
    return ds


SUGGEST_AMONG = 10_000  # names read to suggest from, at most


def did_you_mean(name: str, candidates) -> str:
    """ "did you mean 'x'?" (or 'x' or 'y') for the names close to name among candidates, or ''."""
    import difflib

    if not isinstance(name, str):
        return ""
    pool = [c for c in candidates if c != name]
    close = difflib.get_close_matches(name, pool, n=3, cutoff=0.6)
    if not close:  # a different case only ('Digits' for 'digits') is as close as names get
        close = [c for c in pool if c.lower() == name.lower()][:3]
    if not close:
        return ""
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


def check_labels(name: str, labels: list[str]) -> list[str]:
    """A label set: at least two distinct labels, each a plain name (labels are folders in exports)."""
    labels = [label.strip() for label in labels if label.strip()]
    if len(labels) < 2:
        raise InvalidInput(f"dataset '{name}' needs at least two labels, got {labels!r} (e.g. --labels cat,dog)")
    if len(labels) > MAX_LABELS:
        raise InvalidInput(f"dataset '{name}' has {len(labels)} labels; at most {MAX_LABELS} are supported")
    duplicates = sorted(label for label, n in Counter(labels).items() if n > 1)
    if duplicates:
        raise InvalidInput(f"label set of dataset '{name}' repeats {', '.join(duplicates[:10])}")
    for label in labels:
        check_label_name(label, name)
    return labels


def create_dataset(db: Session, *, name: str, modality: str, labels: list[str], author: str) -> DatasetRead:
    """A new empty dataset with a root commit and its default branch `main`."""
    from server.datasets.commits import commit_id_of

    check_name("dataset", name)
    if modality not in MODALITIES:
        raise InvalidInput(f"invalid modality {modality!r}: choose one of {', '.join(MODALITIES)}")
    labels = check_labels(name, labels)
    if db.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
        raise AlreadyExists(f"dataset '{name}' already exists")
    ds = Dataset(name=name, modality=modality, task="classification", labels=labels, default_branch="main")
    db.add(ds)
    try:
        db.flush()
    except IntegrityError:
        raise AlreadyExists(f"dataset '{name}' already exists") from None
    when = datetime.now(UTC)
    message = f"create dataset {name}"
    root = Commit(
        id=commit_id_of(name, [], author, message, when, ""),
        dataset_id=ds.id,
        first_parent_pk=None,
        generation=0,
        author=author,
        message=message,
        created_at=when,
        change_count=0,
        row_count=0,
        checkpoint_blob=None,
        chain_rows=0,
        chain_length=0,
        label_counts={},
    )
    db.add(root)
    db.flush()
    db.add(Branch(dataset_id=ds.id, name="main", head_pk=root.pk, protected=True))  # the default branch always is
    db.flush()
    return dataset_read(ds)


def list_datasets(
    db: Session, *, after: str | None = None, limit: int | None = None, only: frozenset[str] | None = None
) -> list[DatasetRead]:
    """Datasets by name after the cursor (only those named in `only`, when given)."""
    query = select(Dataset).order_by(Dataset.name)
    if after is not None:
        query = query.where(Dataset.name > after)
    if only is not None:
        query = query.where(Dataset.name.in_(sorted(only)))
    if limit is not None:
        query = query.limit(limit)
    return [dataset_read(ds) for ds in db.scalars(query)]


def delete_dataset(db: Session, *, name: str) -> dict:
    """Delete a dataset and everything recorded about it: commits, refs, staged edits, runs, models,
    watch rules, eval pins, review items, merge requests, import jobs, memberships (their tables
    reference the dataset ON DELETE CASCADE). Blobs stay until `s2 gc` reclaims the unreferenced ones;
    the audit trail stays.

    Refused while a run trains it or an import writes to it, and while another dataset's pinned
    eval set takes its examples from it. Returns {"name", "commits", "branches", "tags", "runs", "models"}.
    """
    from sqlalchemy import delete, func, update

    from server.datasets.models import CommitParent, Tag
    from server.imports.models import ImportJob
    from server.imports.service import _stale
    from server.runs.models import EvalPin, ModelVersion, TrainingRun

    ds = get_dataset(db, name)
    running = db.scalar(select(TrainingRun.id).where(TrainingRun.dataset_id == ds.id, TrainingRun.state == "running").limit(1))
    if running is not None:
        raise InvalidInput(f"dataset '{name}' is being trained by run {running}: cancel it first (s2 cancel {running}) or wait for it")
    jobs = db.scalars(select(ImportJob).where(ImportJob.dataset_id == ds.id, ImportJob.state.in_(("queued", "running"))))
    job = next((j for j in jobs if not _stale(j)), None)
    if job is not None:
        raise InvalidInput(f"dataset '{name}' is receiving import job {job.id}: wait for it to finish")
    pin = db.execute(
        select(Dataset.name, EvalPin.name)
        .join(EvalPin, EvalPin.dataset_id == Dataset.id)
        .where(EvalPin.source_dataset_id == ds.id, EvalPin.dataset_id != ds.id)
        .limit(1)
    ).first()
    if pin is not None:
        raise InvalidInput(
            f"dataset '{name}' holds the examples of eval set '{pin[1]}' pinned by dataset '{pin[0]}': delete that dataset first"
        )

    def count(model, column) -> int:
        return db.scalar(select(func.count()).select_from(model).where(column == ds.id)) or 0

    gone = {
        "name": name,
        "commits": count(Commit, Commit.dataset_id),
        "branches": count(Branch, Branch.dataset_id),
        "tags": count(Tag, Tag.dataset_id),
        "runs": count(TrainingRun, TrainingRun.dataset_id),
        "models": count(ModelVersion, ModelVersion.dataset_id),
    }
    # Children first, so no constraint waits on the cascade's order: models before the runs they name,
    # refs before the commits they point at; the rest goes with the dataset row (ON DELETE CASCADE).
    db.execute(delete(ModelVersion).where(ModelVersion.dataset_id == ds.id))
    db.execute(delete(EvalPin).where((EvalPin.dataset_id == ds.id) | (EvalPin.source_dataset_id == ds.id)))
    db.execute(delete(Tag).where(Tag.dataset_id == ds.id))
    db.execute(delete(Branch).where(Branch.dataset_id == ds.id))
    # Links between the dataset's commits (PostgreSQL checks them row by row during the cascade).
    mine = select(Commit.pk).where(Commit.dataset_id == ds.id).scalar_subquery()
    db.execute(delete(CommitParent).where(CommitParent.commit_pk.in_(mine)))
    db.execute(update(Commit).where(Commit.dataset_id == ds.id).values(first_parent_pk=None))
    db.execute(delete(Dataset).where(Dataset.id == ds.id))
    db.flush()
    return gone
