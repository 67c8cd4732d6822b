"""What the workers measure (prometheus-client; multiprocess mode across prefork children).

`digitflow run` points the API and the worker at one PROMETHEUS_MULTIPROC_DIR, so the API's
/metrics shows both; in Kubernetes a worker pod serves its own on WORKER_METRICS_PORT.
"""

from prometheus_client import Counter, Gauge, Histogram

DOCUMENTS = Counter(
    "digitflow_documents_processed_total",
    "Documents a worker finished, by outcome (succeeded or failed)",
    ["outcome"],
)
NEEDS_REVIEW = Counter(
    "digitflow_documents_needs_review_total",
    "Succeeded documents sent to review (review rate = this / succeeded)",
)
BATCH_SIZE = Histogram(
    "digitflow_batch_size",
    "Documents per recognition batch",
    buckets=(1, 8, 32, 64, 128, 256, 512, 1024),
)
STAGE_SECONDS = Histogram(
    "digitflow_document_stage_seconds",
    "Per-document time by stage: read (storage), decode (decode and normalise), inference",
    ["stage"],
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25),
)
BATCH_SECONDS = Histogram(
    "digitflow_batch_duration_seconds",
    "Time for one batch, read to commit",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RESENT = Counter(
    "digitflow_sweeper_resent_documents_total", "Queued documents the sweeper sent again"
)
ABANDONED = Counter(
    "digitflow_abandoned_uploads_total", "Uploads the sweeper gave up (failed, files deleted)"
)
PURGED = Counter(
    "digitflow_purged_total",
    "Retention: jobs deleted, and jobs whose images were deleted",
    ["what"],
)
STORED = Gauge(
    "digitflow_storage_stored",
    "Documents and bytes held in object storage (updated by the purge task)",
    ["unit"],
    multiprocess_mode="mostrecent",
)

# Stages named as the batch's timings are (milliseconds per document).
STAGES = {"read_ms": "read", "preprocess_ms": "decode", "inference_ms": "inference"}


def observe_batch(size: int, succeeded: int, failed: int, needs_review: int, timings: dict):
    BATCH_SIZE.observe(size)
    DOCUMENTS.labels("succeeded").inc(succeeded)
    DOCUMENTS.labels("failed").inc(failed)
    NEEDS_REVIEW.inc(needs_review)
    for key, stage in STAGES.items():
        if key in timings:
            STAGE_SECONDS.labels(stage).observe(timings[key] / 1000)
    if "total_s" in timings:
        BATCH_SECONDS.observe(timings["total_s"])
