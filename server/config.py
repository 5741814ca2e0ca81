"""The one Settings object: every knob of s2, read from S2_* environment variables."""
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where s2 keeps its state; everything defaults to the embedded store under S2_HOME."""

    model_config = SettingsConfigDict(env_prefix="S2_", extra="ignore")

    home: Path = Field(default=Path(".s2"), description="Embedded store: SQLite file and blob folder")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default sqlite:///$S2_HOME/s2.db")
    blob_url: str | None = Field(default=None, description="Blob store URL; default file://$S2_HOME/blobs")
    author: str | None = Field(default=None, description="Commit author; default $USER@hostname")
    # A snapshot is rebuilt from its checkpoint plus the deltas since; when the deltas pass
    # this fraction of the table (or the chain passes checkpoint_max_chain commits) a new
    # checkpoint is written, so reads stay bounded and commits stay O(changed rows) amortized.
    checkpoint_delta_fraction: float = 0.1
    checkpoint_min_rows: int = 1000
    checkpoint_max_chain: int = 64

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to the SQLite file in S2_HOME."""
        return self.database_url or f"sqlite:///{(self.home / 's2.db').resolve()}"

    @property
    def resolved_blob_url(self) -> str:
        """The blob store URL, defaulting to the blob folder in S2_HOME."""
        return self.blob_url or f"file://{(self.home / 'blobs').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
