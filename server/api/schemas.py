"""Request and response bodies of the HTTP API that the domain services do not already define."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.api.inputs import MESSAGE, find_nul
from server.maintenance.gc import Leftover


class Body(BaseModel):
    """Request bodies refuse unknown fields (a typo is an error, not silently ignored) and NUL characters."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: object) -> object:
        if (where := find_nul(data)) is not None:
            raise ValueError(f"{where or 'value'} {MESSAGE}")
        return data


class DatasetCreate(Body):
    name: str = Field(description="Letters, digits, '.', '_', '-'", examples=["pets"])
    modality: Literal["image", "text", "tabular"]
    labels: list[str] = Field(min_length=2, description="The label set", examples=[["cat", "dog"]])


class BranchCreate(Body):
    name: str = Field(examples=["fix-labels"])
    from_rev: str | None = Field(default=None, alias="from", description="Where it starts (default: the default branch)")
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class BranchUpdate(Body):
    protected: bool = Field(description="A protected branch changes only by an engineer's merge or import")


class TagCreate(Body):
    name: str
    rev: str


class TagRead(BaseModel):
    name: str
    commit: str


class MergeResolution(Body):
    """How one conflicting key is settled: take a side's row, or keep the source's row with a label of the dataset."""

    take: Literal["ours", "theirs"] | None = Field(default=None, description="ours: the target branch's row; theirs: the source's")
    label: str | None = Field(default=None, description="Keep the source's row (the target's where the source removed it) with this label")

    @model_validator(mode="after")
    def _one(self) -> "MergeResolution":
        if (self.take is None) == (self.label is None):
            raise ValueError("give exactly one of take (ours or theirs) or label")
        return self

    def as_dict(self) -> dict[str, str]:
        return {"take": self.take} if self.take is not None else {"label": self.label}


class MergeRequest(Body):
    source: str = Field(description="Revision to merge (a branch, tag or commit)")
    into: str = Field(description="Branch that receives it")
    message: str | None = None
    strategy: Literal["ours", "theirs"] | None = Field(default=None, description="Settle every conflict by taking this side")
    resolutions: dict[str, MergeResolution] | None = Field(
        default=None, description="Per conflicting key: {take: ours|theirs} or {label: LABEL}; they win over strategy"
    )


class MergeConflictRead(BaseModel):
    """One key both sides changed differently (a *_removed side holds no row; labels are None there)."""

    key: str
    base_label: str | None
    target_label: str | None
    source_label: str | None
    base_removed: bool
    target_removed: bool
    source_removed: bool
    unresolved_base: bool = False
    resolution: dict[str, str] | None = None


class PendingMergeRead(BaseModel):
    """A conflicted merge in progress: every current conflict, with the resolution recorded for it (or None)."""

    dataset: str
    into: str
    source: str
    source_commit: str
    target_head: str = Field(description="The branch's current head, which the conflicts are computed against")
    target_moved: bool = Field(description="The branch moved since the merge started (resolutions of keys it changed are dropped)")
    conflicts: list[MergeConflictRead]
    unresolved: int


class ResolveRead(BaseModel):
    """After recording a resolution: the merge completed (state merged), or conflicts remain (state pending)."""

    model_config = ConfigDict(extra="allow")
    state: Literal["pending", "merged"]
    outcome: str | None = None
    head: str | None = None
    changes: int | None = None


class MergeRead(BaseModel):
    outcome: Literal["up-to-date", "fast-forward", "merge"]
    head: str = Field(description="The branch's head after the merge")
    changes: int


class CommitCreate(Body):
    message: str = Field(min_length=1, description="What the commit changes and why")
    branch: str | None = Field(default=None, description="Default: the dataset's default branch")


class RelabelOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    key: str
    from_: str | None = Field(alias="from")
    to: str | None


class DiffOut(BaseModel):
    """The `s2 diff --json` shape, for one page of keys (in key order); follow next_cursor for the rest."""

    added: list[str]
    removed: list[str]
    relabeled: list[RelabelOut]
    modified: list[str]
    next_cursor: str | None = None


class EditIn(Body):
    label: str | None = Field(default=None, description="The new label (omit with remove=true)")
    remove: bool = False
    version: str | None = Field(default=None, description="The example's `version` you saw; a newer one makes this a 409")


class EditPut(EditIn):
    version: str = Field(description="The example's `version` you saw (GET .../examples/{key}?rev=BRANCH); a newer one makes this a 409")


class EditItem(EditIn):
    key: str


class EditBatch(Body):
    edits: list[EditItem] = Field(min_length=1, max_length=10_000)


class Dropped(BaseModel):
    dropped: int
    kept: int = Field(default=0, description="Other people's staged edits left in place (dropping them needs an engineer)")


class RunCreate(Body):
    rev: str | None = Field(default=None, description="Revision to train (default: the default branch)")
    spec: dict | None = Field(
        default=None,
        description="Training spec (default: the modality's template); {\"warm_start\": true} starts from the parent commit's model",
    )
    from_model: str | None = Field(default=None, description="Warm-start from this model (DATASET@N) instead of the parent commit's")
    force: bool = Field(
        default=False, description="Train even if an identical build exists (same commit, spec, seed, code, start); else it answers at once"
    )
    folds: int | None = Field(
        default=None,
        ge=0,
        le=20,
        description="The data engine's cross-fitting after training: K fold models (2-20), 0 off; default S2_ANALYSIS_FOLDS (5)",
    )


class WatchSet(Body):
    spec: dict | None = None
    folds: int | None = Field(
        default=None,
        ge=0,
        le=20,
        description="The data engine's cross-fitting after training: K fold models (2-20), 0 off; default S2_ANALYSIS_FOLDS (5)",
    )


class PromoteRequest(Body):
    stage: Literal["production", "staging", "archived"] = "production"
    force: bool = Field(default=False, description="Promote even if it regresses on a pinned eval set")


class EvalPinCreate(Body):
    name: str
    rev: str
    source: str | None = Field(default=None, description="Dataset the eval set comes from (default: this one)")
    only_eval_split: bool = False


class UserCreate(Body):
    name: str
    role: Literal["admin", "engineer", "labeler"]
    datasets: list[str] = Field(default_factory=list, description="Datasets to assign (labelers read only these)")


class UserUpdate(Body):
    role: Literal["admin", "engineer", "labeler"] | None = None
    disabled: bool | None = None


class PasswordSet(Body):
    password: str | None = Field(description="The new password (8 to 1024 characters); null removes it (API tokens only)")


class TokenCreate(Body):
    label: str | None = Field(default=None, max_length=128)


class Delta(BaseModel):
    """One metric of model A and model B, and B minus A (null when either is missing)."""

    a: float | None
    b: float | None
    delta: float | None


class LabelChange(BaseModel):
    commit: str
    message: str
    author: str
    label: str | None
    removed: bool


class Flip(BaseModel):
    """An example one model gets right and the other wrong, with the label edits between their dataset commits."""

    key: str
    change: Literal["fixed", "broken"]
    label_a: str | int | None
    label_b: str | int | None
    predicted_a: str | int | None
    predicted_b: str | int | None
    label_history: list[LabelChange]


class EvalSetComparison(BaseModel):
    metrics: dict[str, Delta] = Field(description="accuracy, macro_f1, loss")
    per_class: dict[str, dict[str, Delta]] = Field(description="label -> precision, recall, f1")
    confusion_matrix: dict[str, list[list[int]] | None] = Field(description="`a` and `b`: rows are true labels")


class CommitPair(BaseModel):
    a: str = Field(description="The dataset commit model a was trained on")
    b: str


class ModelComparison(BaseModel):
    """Two models compared: every shared eval set's figures, and one page of the examples that flipped.

    The top-level figures and the flips are of `eval_set`. Flips come in key order, a page at a
    time (follow next_cursor); the data change between the two dataset commits is
    `GET /datasets/{name}/diff?a={commits.a}&b={commits.b}`.
    """

    a: str
    b: str
    eval_set: str | None = Field(description="The eval set the top-level figures are of (`eval` when both have it)")
    metrics: dict[str, Delta]
    per_class: dict[str, dict[str, Delta]]
    confusion_matrix: dict[str, list[list[int]] | None]
    fixed: list[str]
    broken: list[str]
    flips: list[Flip]
    eval_sets: dict[str, EvalSetComparison]
    commits: CommitPair
    next_cursor: str | None


class RegressionCheck(BaseModel):
    eval_set: str
    production: float | None = Field(description="The current production model's accuracy")
    candidate: float | None


class PromoteRead(BaseModel):
    model: str = Field(examples=["digits@3"])
    stage: Literal["production", "staging", "archived"]
    replaced: str | None = Field(description="The model that held the stage before (now archived)")
    checked: list[RegressionCheck]


class EvalPinRead(BaseModel):
    dataset: str
    name: str
    source: str = Field(description="Dataset the eval set comes from")
    commit: str
    only_eval_split: bool


class WatchRead(BaseModel):
    dataset: str
    branch: str
    spec: dict = Field(description="The resolved training spec")
    folds: int | None = Field(default=None, description="The data engine's cross-fitting after each training (null: the default)")


class FsckRead(BaseModel):
    """What the store check found; `ok` is false when any blob is corrupt or missing (leftovers are not damage)."""

    checked: int
    corrupt: list[str]
    missing: list[str]
    leftovers: list[Leftover] = Field(description="What killed processes left behind; s2 gc removes them")
    ok: bool
