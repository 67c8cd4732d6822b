"""The API's settings: the platform's shared fields plus what only the web service needs."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from digitflow.settings import REPO_ROOT, PlatformSettings


class Settings(PlatformSettings):
    # Static pages (canvas, later jobs and review) served at / and /static.
    web_dir: Path = REPO_ROOT / "web"

    # Back-pressure on POST /jobs: refuse new uploads (503 + Retry-After) while the queued work
    # would take the workers longer than `queue_max_seconds`, at the documents per second the
    # deployment's workers read (measured: docs/benchmarks.md; scale it with the worker count).
    queue_max_seconds: float = Field(default=600, gt=0)
    worker_documents_per_second: float = Field(default=1000, gt=0)

    # Micro-batching of the synchronous fast path: concurrent requests share one model call.
    # A batch is whatever arrived while the previous batch ran, up to this many images.
    batch_max_size: int = 64
    # Payloads up to this size are decoded inside the batch's worker thread (one thread hop per
    # batch); larger ones are decoded in the threadpool first so they cannot stall a batch.
    inline_decode_max_bytes: int = 256 * 1024
    # Threads that decode a batch's images side by side; 1 = in the batch's own thread, which is
    # cheaper when there is one API process per core (digitflow serve; docs/benchmarks.md).
    decode_threads: int = Field(default=1, ge=1)
    # A batch of one request (nothing else arrived meanwhile) is read on the event loop instead
    # of being handed to the batch thread and back (docs/benchmarks.md, "CPU a request").
    batch_inline: bool = True
    # Decode budget (api.budget): images above this many pixels are never decoded inside the
    # canvas micro-batch, and at most `heavy_decode_concurrency` of them decode at once.
    inline_decode_max_pixels: int = 1_000_000
    heavy_decode_concurrency: int = Field(default=1, ge=1)

    # Access control (api.auth). `production` refuses to start in open mode (no keys).
    digitflow_env: Literal["development", "production"] = "development"
    # A verified key's row is re-read (revocation noticed) after this many seconds.
    auth_cache_seconds: float = Field(default=5, gt=0)
    # Whether any key exists (open mode or not) is re-read this often.
    auth_mode_refresh_seconds: float = Field(default=10, gt=0)

    # Hardening (api.security). Hosts served (a leading "*." matches subdomains; "*" any);
    # "testserver" is the in-process test client's name.
    allowed_hosts: list[str] = ["localhost", "127.0.0.1", "[::1]", "testserver"]
    # Browser origins allowed to call the API from other sites (CORS); none by default.
    cors_origins: list[str] = []
    max_headers: int = 100
    max_header_bytes: int = 16 * 1024
    # Rate limits (`limits` syntax, fixed windows), per client address and per API key; the
    # storage is per process unless it points at Redis (e.g. redis://host:6379/3).
    rate_limit_enabled: bool = True
    rate_limit_per_address: str = "3000/minute"
    rate_limit_per_key: str = "6000/minute"
    # Images over inline_decode_max_pixels cost ~0.1-0.2 s of CPU each: a client gets this many.
    # A short window: a minute's allowance in one burst would take a core for seconds.
    rate_limit_heavy_per_address: str = "5/5 seconds"
    # Refused keys (unknown, wrong, revoked) per client address: past it, 429 without checking.
    rate_limit_refused_keys_per_address: str = "30/minute"
    rate_limit_storage: str = "memory://"
    # Own limits for chosen client addresses or key ids, e.g. a benchmark client:
    # RATE_LIMIT_OVERRIDES='{"10.0.0.7": "1000000/minute"}'
    rate_limit_overrides: dict[str, str] = {}

    # Seconds between SIGTERM (readiness turns false) and the server starting to stop; keep it
    # below the orchestrator's grace period minus the longest upload you want to finish.
    shutdown_drain_seconds: float = Field(default=0, ge=0)
    # At shutdown, the micro-batcher finishes the requests it holds for at most this long.
    shutdown_batch_seconds: float = Field(default=10, ge=0)
    # Let the app set up logging (JSON lines); tests that capture logs turn it off.
    configure_logging: bool = True


@lru_cache
def get_settings() -> Settings:
    return Settings()
