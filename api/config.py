"""The API's settings: the platform's shared fields plus what only the web service needs."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field

from digitflow.settings import REPO_ROOT, PlatformSettings


class Settings(PlatformSettings):
    # Static pages (canvas, later jobs and review) served at / and /static.
    web_dir: Path = REPO_ROOT / "web"

    # Micro-batching of the synchronous fast path: concurrent requests share one model call.
    # A batch is whatever arrived while the previous batch ran, up to this many images.
    batch_max_size: int = 64
    # Payloads up to this size are decoded inside the batch's worker thread (one thread hop per
    # batch); larger ones are decoded in the threadpool first so they cannot stall a batch.
    inline_decode_max_bytes: int = 256 * 1024
    # Threads that decode a batch's images side by side.
    decode_threads: int = 2

    # Seconds between SIGTERM (readiness turns false) and the server starting to stop; keep it
    # below the orchestrator's grace period minus the longest upload you want to finish.
    shutdown_drain_seconds: float = Field(default=0, ge=0)
    # Let the app set up logging (JSON lines); tests that capture logs turn it off.
    configure_logging: bool = True


@lru_cache
def get_settings() -> Settings:
    return Settings()
