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
        raise NotFound(f"no dataset named '{name}' (create it with: s2 dataset create {name} --modality ... --labels ...)")
    return ds


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
