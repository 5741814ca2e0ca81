"""The one Settings object: every knob of s2, read from S2_* environment variables."""

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from server.errors import SettingsInvalid  # noqa: F401  (defined apart so the CLI can catch it without pydantic)

ENV_PREFIX = "S2_"


class Settings(BaseModel):
    """Where s2 keeps its state; everything defaults to the embedded store under S2_HOME.

    A plain pydantic model filled from the environment by `from_env` (pydantic-settings did
    the same, but importing it cost every CLI command about a tenth of a second).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Settings from `S2_<FIELD>` variables (names case-insensitive).

        Raises SettingsInvalid naming the first variable whose value does not fit.
        """
        environ = os.environ if environ is None else environ
        values, names = {}, {}
        for name, value in environ.items():
            upper = name.upper()
            if upper.startswith(ENV_PREFIX):
                field = upper[len(ENV_PREFIX) :].lower()
                if field in cls.model_fields:
                    values[field], names[field] = value, name
        try:
            return cls(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else ""
            raise SettingsInvalid(f"{names.get(field, ENV_PREFIX + field.upper())}={values.get(field)!r}: {err['msg']}") from None

    home: Path = Field(default=Path(".s2"), description="Embedded store: SQLite file and blob folder")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default sqlite:///$S2_HOME/s2.db")
    blob_url: str | None = Field(default=None, description="Blob store URL; default file://$S2_HOME/blobs")
    author: str | None = Field(default=None, description="Commit author; default $USER@hostname")
    # For S2_BLOB_URL=s3://bucket/prefix. Unset values fall back to boto3's own chain
    # (AWS_* variables, ~/.aws, instance roles); set the endpoint for MinIO, Ceph and the like.
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint URL, e.g. http://minio:9000; default AWS")
    s3_region: str | None = Field(default=None, description="S3 region; default boto3's")
    s3_access_key_id: str | None = Field(default=None, description="S3 access key id; default boto3's credential chain")
    s3_secret_access_key: SecretStr | None = Field(default=None, description="S3 secret key; default boto3's credential chain")
    # A snapshot is its nearest checkpoint plus the deltas since. Reads by key or key range cost
    # what they ask for whatever the chain's length (they go through the deltas' (dataset, key)
    # index); a whole-snapshot read streams the chain's rows. So a new checkpoint (O(table)) is
    # written only when those rows pass a fraction of the table, or the chain gets very long.
    checkpoint_delta_fraction: float = 0.1
    checkpoint_min_rows: int = 1000
    checkpoint_max_chain: int = 1000
    # Text and tabular inputs up to this size are stored with the example (a blob file would
    # take a whole 4 KiB block for a few dozen bytes); images and larger inputs are blobs.
    inline_max_bytes: int = Field(default=4096, ge=0)
    # Checkpoints are read through a per-host cache of uncompressed, memory-mapped Arrow files.
    checkpoint_cache_bytes: int = Field(default=8 << 30, ge=0)
    # Training. The embedded broker is kombu's filesystem transport (no server to run).
    broker_url: str | None = Field(default=None, description="Celery broker; default filesystem:// under S2_HOME")
    broker_poll_s: float = 0.05  # filesystem broker polling: the default 1 s would add a second per task
    run_stale_after_s: float = 60.0  # a running run whose heartbeat is older was lost with its worker
    torch_threads: int | None = None  # CPU threads a training may use; None: torch's default
    worker_beat_s: float = 5.0  # how often a worker records it is alive; keep well under run_stale_after_s
    run_max_attempts: int = 2  # a lost run is retried this many times in all, then failed
    promote_max_regression: float = 0.01  # accuracy a new production model may lose on a pinned eval set
    # Web service and the CLI's remote mode.
    server: str | None = Field(default=None, description="s2 server URL for the CLI (remote mode), e.g. http://host:8000")
    token: SecretStr | None = Field(default=None, description="API token for the CLI's remote mode")
    upload_max_bytes: int = Field(default=2 << 30, description="Largest upload the API accepts (bytes)")
    gc_grace_s: float = Field(
        default=3600, ge=60, le=10 * 365 * 86400, description="s2 gc leaves alone what is younger than this (seconds)"
    )
    import_workers: int = Field(default=2, ge=1, description="Imports a server process runs at once (more wait, queued)")
    # Every other request body: parsed in memory (and, for JSON, on the event loop), so kept small.
    json_max_bytes: int = Field(default=1 << 20, gt=0, description="Largest request body other than an import's upload (bytes)")
    # One example's input (an image or text file of an upload) is read into memory whole: bound it.
    input_max_bytes: int = Field(default=64 << 20, gt=0, description="Largest single input file of an upload (bytes)")
    # Decoding allocates width x height x channels bytes, whatever the file's size: 8192x8192 RGBA is 256 MiB.
    image_max_pixels: int = Field(default=8192 * 8192, gt=0, description="Largest image (width x height) an import accepts")
    page_max: int = 1000  # the most items one page of a list may hold
    auth_cache_s: float = 2.0  # how long a server process trusts a token it checked (revocation lag bound)
    session_hours: float = Field(default=7 * 24, gt=0, description="How long a browser stays signed in (hours)")
    login_block_s: float = Field(
        default=1.0, gt=0, le=900, description="The wait after three failed sign-ins in a row (seconds); it doubles with each more"
    )
    api_threads: int = 8  # threads serving the API's blocking work per server process (more only adds GIL contention)
    # The Label Studio bridge. Label Studio's browser loads images from s2 at public_url (signed, expiring URLs),
    # and its webhooks call s2 there: the address Label Studio reaches s2 at, not necessarily the one s2 listens on.
    public_url: str | None = Field(default=None, description="The URL Label Studio reaches this s2 server at, e.g. http://s2:8000")
    media_url_ttl_s: float = Field(
        default=14 * 86400, gt=0, le=365 * 86400, description="How long a media URL handed to Label Studio works (seconds)"
    )
    labelstudio_batch: int = Field(
        default=500, ge=1, le=10_000, description="Tasks per request when pushing to and pulling from Label Studio"
    )
    analysis_folds: int = Field(
        default=5,
        ge=0,
        le=20,
        description="The data engine's cross-fitting after each training: K fold models (0: off); a watch rule or a run can choose",
    )

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to the SQLite file in S2_HOME."""
        return self.database_url or f"sqlite:///{(self.home / 's2.db').resolve()}"

    @property
    def resolved_broker_url(self) -> str:
        """The Celery broker URL, defaulting to the filesystem broker in S2_HOME."""
        return self.broker_url or "filesystem://"

    @property
    def broker_folder(self):
        """Where the filesystem broker keeps its messages."""
        return (self.home / "broker").resolve()

    @property
    def resolved_blob_url(self) -> str:
        """The blob store URL, defaulting to the blob folder in S2_HOME."""
        return self.blob_url or f"file://{(self.home / 'blobs').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings.from_env()
