"""The worker's settings: the platform's shared fields plus what only workers need."""

from digitflow.settings import PlatformSettings


class WorkerSettings(PlatformSettings):
    # Bounded retries, with exponential backoff, for transient database and storage errors.
    task_max_retries: int = 5
    task_retry_backoff_max: int = 60
    # Documents still `queued` this long after their task was sent are sent again (Postgres is
    # the truth; a lost message must not lose a document). Checked every sweep interval.
    sweep_after_seconds: float = 300
    # LiteRT threads per worker process; one per process keeps the 2-core box fully used.
    inference_threads: int = 1
    # The worker's own /metrics port (every prefork child's samples, in multiprocess mode);
    # unset under `digitflow run`, whose API serves the worker's samples too.
    worker_metrics_port: int | None = None
