"""The public shape of merge requests (REST, `s2 mr --json`, and the pages)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class ConflictRead(BaseModel):
    """A key both branches changed differently since they parted, with each side's label (removed: absent there)."""

    key: str
    base_label: str | None
    base_removed: bool
    target_label: str | None
    target_removed: bool
    source_label: str | None
    source_removed: bool
    take: Literal["ours", "theirs"] | None = Field(description="The side chosen: ours keeps the target's, theirs takes the source's")
    taken_by: str | None = None


class CommentRead(BaseModel):
    author: str
    body: str
    created_at: datetime


class CheckRead(BaseModel):
    """The request's check: the newest model of the source's head against the target's production model."""

    source_head: str
    model: str | None = Field(description="The newest model trained on the source's head, e.g. digits@7")
    run: int | None = Field(description="The latest run of the source's head (or the run covering it)")
    run_state: str | None
    production: str | None = Field(description="The production model the request is measured against")
    metrics: dict[str, dict] = Field(description="accuracy, macro_f1, loss: {production, model, delta}")
    slices: list[dict] = Field(default_factory=list, description="the model's data unit tests: {slice, score, minimum, passed, failing}")


class MergeRequestRead(BaseModel):
    id: str = Field(description="DATASET!NUMBER, e.g. digits!3")
    dataset: str
    number: int
    title: str
    description: str
    source: str
    target: str
    author: str
    state: Literal["open", "merged", "closed"]
    approved_by: list[str]
    merged_by: str | None
    merge_commit: str | None
    created_at: datetime
    updated_at: datetime


class MergeRequestDetail(MergeRequestRead):
    """One request with what it would do now: commits ahead and behind, conflicts, the check, the discussion."""

    ahead: int
    behind: int
    base: str | None = Field(description="Where the branches parted (a merge base): the request's diff runs from it to the source's head")
    source_head: str | None
    target_head: str | None
    mergeable: Literal["merged", "closed", "up-to-date", "fast-forward", "clean", "resolved", "conflicts"]
    conflicts: list[ConflictRead]
    conflicts_left: int
    check: CheckRead | None
    comments: list[CommentRead]
