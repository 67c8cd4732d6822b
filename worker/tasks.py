"""Thin Celery tasks that take ids: the work itself is in worker.batch."""

import logging
import os
import threading
import uuid
from datetime import timedelta

from celery.signals import (
    setup_logging,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)
from prometheus_client import REGISTRY, start_http_server
from sqlalchemy.exc import InterfaceError, OperationalError

from digitflow.db import make_sessionmaker
from digitflow.db.usage import storage_use
from digitflow.logs import configure_logging
from digitflow.metrics import MODEL_VERSION, process_exited, scrape_registry
from digitflow.model_source import load_recognizer
from digitflow.queue import PURGE_TASK, RECOGNIZE_TASK, SWEEP_TASK, enqueue_documents
from digitflow.review import policy_from_settings
from digitflow.storage import StorageUnavailable, make_storage
from recognition.doctypes import DocumentTypes
from worker import metrics
from worker.batch import Runtime, job_layouts, process_batch, stale_documents
from worker.celery_app import app, settings
from worker.maintenance import fail_abandoned_uploads, purge_expired

logger = logging.getLogger("digitflow.worker")

# Worth a retry: the database or the store was unreachable for a moment.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, StorageUnavailable)

_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    """This process's model, database pool and storage client, created on first use."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            recognizer = load_recognizer(settings, num_threads=settings.inference_threads)
            _runtime = Runtime(
                recognizer=recognizer,
                sessions=make_sessionmaker(settings.resolved_database_url),
                storage=make_storage(settings),
                max_pixels=settings.max_image_pixels,
                document_types=DocumentTypes(settings.resolved_document_types_dir),
                review=policy_from_settings(settings, recognizer.threshold),
            )
            logger.info("loaded model %s", _runtime.recognizer.version)
            MODEL_VERSION.labels("worker", _runtime.recognizer.version).set(1)
        return _runtime


@setup_logging.connect
def _logging(**_) -> None:
    # Connected, so Celery leaves logging to us: JSON lines like the API's.
    configure_logging(settings.log_format, settings.log_level)


@worker_process_init.connect
def _load_after_fork(**_) -> None:
    # Each prefork child loads its own model and opens its own connections, after the fork:
    # nothing of the kind is inherited from the parent.
    runtime()


@worker_process_shutdown.connect
def _child_gone(pid=None, **_) -> None:
    process_exited(pid or os.getpid())


@worker_ready.connect
def _serve_metrics(**_) -> None:
    # The parent serves every child's samples (multiprocess mode) when a port is configured.
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, registry=scrape_registry() or REGISTRY)


@app.task(
    name=RECOGNIZE_TASK,
    autoretry_for=TRANSIENT_ERRORS,
    max_retries=settings.task_max_retries,
    retry_backoff=True,
    retry_backoff_max=settings.task_retry_backoff_max,
    retry_jitter=True,
)
def recognize(job_id: str, document_ids: list[str]) -> dict:
    outcome = process_batch(runtime(), uuid.UUID(job_id), [uuid.UUID(i) for i in document_ids])
    metrics.observe_batch(
        len(document_ids), outcome.succeeded, outcome.failed, outcome.needs_review,
        outcome.timings,
    )  # fmt: skip
    logger.info(
        "batch done",
        extra={
            "job_id": job_id, "documents": len(document_ids), "first_document_id": document_ids[0],
            "succeeded": outcome.succeeded, "failed": outcome.failed, "skipped": outcome.skipped,
            "needs_review": outcome.needs_review, **outcome.timings,
        },
    )  # fmt: skip
    return {"succeeded": outcome.succeeded, "failed": outcome.failed, "skipped": outcome.skipped}


@app.task(name=SWEEP_TASK, autoretry_for=TRANSIENT_ERRORS, max_retries=3, retry_backoff=True)
def sweep() -> int:
    """Re-send documents left `queued` too long (a lost message, a worker killed mid-batch);
    give up uploads that stopped half-way (their request died)."""
    rt = runtime()
    silent_for = timedelta(seconds=settings.upload_abandoned_after_seconds)
    metrics.ABANDONED.inc(len(fail_abandoned_uploads(rt.sessions, rt.storage, silent_for)))
    stale = stale_documents(rt.sessions, timedelta(seconds=settings.sweep_after_seconds))
    layouts = job_layouts(rt.sessions, stale) if stale else {}
    for job_id, ids in stale.items():
        enqueue_documents(app, job_id, ids, settings.batch_size_for(layouts.get(job_id)))
        logger.warning(
            "re-sent stale queued documents", extra={"job_id": str(job_id), "documents": len(ids)}
        )
    count = sum(map(len, stale.values()))
    metrics.RESENT.inc(count)
    return count


@app.task(name=PURGE_TASK, autoretry_for=TRANSIENT_ERRORS, max_retries=3, retry_backoff=True)
def purge() -> dict:
    """Retention: delete expired jobs (rows and files) and expired images; report storage use."""
    rt = runtime()
    purged = purge_expired(
        rt.sessions, rt.storage, settings.results_retention_days, settings.images_retention_days
    )
    metrics.PURGED.labels("jobs").inc(purged.jobs)
    metrics.PURGED.labels("images").inc(purged.image_jobs)
    with rt.sessions() as session:
        use = storage_use(session)
    metrics.STORED.labels("documents").set(use["documents"])
    metrics.STORED.labels("bytes").set(use["stored_bytes"])
    if purged.jobs or purged.image_jobs:
        logger.info("purged expired jobs", extra={**vars(purged), **use})
    return {**vars(purged), **use}
