"""What the dataset services return: plain Pydantic models, never ORM objects."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Modality = Literal["image", "text", "tabular"]


class DatasetRead(BaseModel):
    """A dataset's description."""

    name: str
    modality: Modality
    task: str
    labels: list[str]
    default_branch: str
    created_at: datetime


class CommitRead(BaseModel):
    """One commit as `s2 log --json` shows it."""

    id: str
    parents: list[str]
    author: str
    message: str
    created_at: datetime
    changes: int
    rows: int


class CommitOutcome(BaseModel):
    """What committing staged edits made: the commit (null when every edit matched the head) and how many edits were dropped."""

    commit: CommitRead | None
    dropped: int  # staged edits that changed nothing and were cleared without a change row


class BranchRead(BaseModel):
    """A branch and the commit it points at."""

    name: str
    head: str
    protected: bool


class Relabel(BaseModel):
    """An example whose label changed between two revisions."""

    key: str
    from_: str | None
    to: str | None

    def as_json(self) -> dict:
        """The shape the CLI contract names: {"key", "from", "to"}."""
        return {"key": self.key, "from": self.from_, "to": self.to}


class DiffRead(BaseModel):
    """What separates two revisions, by key."""

    added: list[str]
    removed: list[str]
    relabeled: list[Relabel]
    modified: list[str]

    def as_json(self) -> dict:
        """The `s2 diff --json` shape."""
        return {"added": self.added, "removed": self.removed, "relabeled": [r.as_json() for r in self.relabeled], "modified": self.modified}


class BlameEntry(BaseModel):
    """One commit that changed an example, and what it made of it."""

    commit: str
    author: str  # who made the change (a labeler's staged edit keeps its author through the commit)
    committer: str  # who committed it
    created_at: datetime
    message: str
    removed: bool
    label: str | None
    input: str | None
    source: str | None = None  # where the edit came from when suggested ("suggested by digits@7, label-error queue")


class StagedRead(BaseModel):
    """An uncommitted edit."""

    key: str
    remove: bool
    label: str | None
    author: str
    version: int
    example_version: str | None = None  # the token an editor sends back to edit it again


class ExampleRead(BaseModel):
    """One example as an editor sees it: committed state, staged edit, and the version to send back."""

    key: str
    input: str  # sha256 of the input bytes: GET .../media/{input} serves them, unless they are inline
    inline: str | None = None  # the input itself when stored with the example (a short text, a tabular row as JSON)
    label: str | None
    split: str | None
    meta: dict
    staged_label: str | None
    staged_remove: bool
    staged_by: str | None
    version: str


class LabelCounts(BaseModel):
    """How many examples of a commit carry each label (every label of the dataset, zeros included)."""

    commit: str
    labels: dict[str, int]
    unlabeled: int
    total: int


DiffKind = Literal["added", "removed", "relabeled", "modified"]


class RelabelCount(BaseModel):
    """How many examples went from one label to another (None: unlabeled) between two revisions."""

    model_config = ConfigDict(populate_by_name=True)
    from_: str | None = Field(alias="from")
    to: str | None
    count: int


class DiffSummary(BaseModel):
    """The size of a diff: counts of each kind of change and the from-to matrix of relabels (non-zero cells)."""

    a: str  # the commit ids the two revisions named
    b: str
    added: int
    removed: int
    relabeled: int
    modified: int  # the input, split or metadata changed (a relabeled example may also be modified)
    relabels: list[RelabelCount]  # by from label then to label, in the dataset's label order, unlabeled last


class DiffExample(BaseModel):
    """One changed example with what a page shows of it: its labels on both sides and its input."""

    model_config = ConfigDict(populate_by_name=True)
    key: str
    kinds: list[DiffKind]  # added, removed, or relabeled and/or modified
    from_: str | None = Field(alias="from")  # label at a (None: unlabeled, or absent there)
    to: str | None  # label at b (None: unlabeled, or absent there)
    input: str  # input id at b (at a for a removed example): GET .../media/{input}
    text: str | None = None  # the start of a text or tabular input


class DiffExamplesPage(BaseModel):
    """Changed examples in key order, after a cursor, optionally of one kind or one class pair."""

    items: list[DiffExample]
    next_after: str | None  # the last key looked at: pass it back as `after` for the next page (None: no more)
