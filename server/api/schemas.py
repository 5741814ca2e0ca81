"""Request and response bodies of the HTTP API that the domain services do not already define."""
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.api.inputs import MESSAGE, find_nul


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


class MergeRequest(Body):
    source: str = Field(description="Revision to merge (a branch, tag or commit)")
    into: str = Field(description="Branch that receives it")
    message: str | None = None


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
    """The `s2 diff --json` shape."""

    added: list[str]
    removed: list[str]
    relabeled: list[RelabelOut]
    modified: list[str]


class EditIn(Body):
    label: str | None = Field(default=None, description="The new label (omit with remove=true)")
    remove: bool = False
    version: str | None = Field(default=None, description="The example's `version` you saw; a newer one makes this a 409")


class EditItem(EditIn):
    key: str


class EditBatch(Body):
    edits: list[EditItem] = Field(min_length=1, max_length=10_000)


class Dropped(BaseModel):
    dropped: int


class ImportRead(BaseModel):
    commit: str
    examples: int = Field(description="Examples in the upload")
    changes: int = Field(description="Examples the commit changed (0: the upload changed nothing)")
    rows: int = Field(description="Examples in the branch afterwards")


class RunCreate(Body):
    rev: str | None = Field(default=None, description="Revision to train (default: the default branch)")
    spec: dict | None = Field(default=None, description="Training spec (default: the modality's template)")


class WatchSet(Body):
    spec: dict | None = None


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


class TokenCreate(Body):
    label: str | None = Field(default=None, max_length=128)
