"""What the import job services return."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

JobState = Literal["queued", "running", "succeeded", "failed"]


class ImportJobRead(BaseModel):
    """An import job: its progress while it runs, then the commit it made or why it failed."""

    id: int
    dataset: str
    branch: str
    source: str = Field(description="What is imported (the uploaded file names, or the path)")
    state: JobState
    phase: str | None = Field(description="reading (validating rows) or committing")
    rows_done: int = Field(description="Rows read so far (reading), or written (committing)")
    examples: int | None = Field(description="Rows the source held (known once it is read)")
    changes: int | None = Field(description="Examples the commit changed; 0: the source changed nothing")
    commit: str | None = Field(description="The new head of the branch (with changes 0: the unchanged head)")
    rows: int | None = Field(description="Examples on the branch afterwards")
    error: str | None = Field(description="Why it failed, naming the bad file and line or row")
    author: str
    message: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
