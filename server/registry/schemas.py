"""What the registry's example reads return: plain Pydantic models, never ORM objects."""

from pydantic import BaseModel, Field


class ExampleInput(BaseModel):
    """Where an example a model was scored on lives, to show it: its input id and, for text, its start."""

    key: str
    dataset: str = Field(
        description="The dataset holding it (a pinned eval set may come from another): GET /datasets/{dataset}/media/{input}"
    )
    rev: str = Field(description="The commit it was scored at (the model's own, or the pinned eval set's)")
    input: str | None = Field(description="Its input id at that commit (null: not found there)")
    snippet: str | None = Field(default=None, description="The start of a text or tabular input (null for images)")


class ModelExample(ExampleInput):
    """One example of an eval set with the label it was scored against and what the model predicted."""

    label: str | None = Field(description="The label it was scored against (null: unlabeled)")
    predicted: str | None
