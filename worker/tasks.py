"""Thin Celery tasks that take ids: the work itself is in worker.batch."""

import logging
import threading
import uuid
from datetime import timedelta

from celery.signals import worker_process_init
from sqlalchemy.exc import InterfaceError, OperationalError

from digitflow.db import make_sessionmaker
from digitflow.queue import RECOGNIZE_TASK, SWEEP_TASK, enqueue_documents
from digitflow.storage import StorageUnavailable, make_storage
from recognition import Recognizer
from recognition.doctypes import DocumentTypes
from worker.batch import Runtime, process_batch, stale_documents
from worker.celery_app import app, settings

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
            _runtime = Runtime(
                recognizer=Recognizer(settings.model_dir, num_threads=settings.inference_threads),
                sessions=make_sessionmaker(settings.resolved_database_url),
                storage=make_storage(settings),
                max_pixels=settings.max_image_pixels,
                document_types=DocumentTypes(settings.resolved_document_types_dir),
            )
            logger.info("loaded model %s", _runtime.recognizer.version)
        return _runtime


@worker_process_init.connect
def _load_after_fork(**_) -> None:
    # Each prefork child loads its own model and opens its own connections, after the fork:
    # nothing of the kind is inherited from the parent.
    runtime()


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
    logger.info(
        "job %s: %d succeeded, %d failed, %d skipped; per document ms: read %.3f, "
        "preprocess %.3f, inference %.3f; batch %.3f s",
        job_id, outcome.succeeded, outcome.failed, outcome.skipped,
        outcome.timings.get("read_ms", 0), outcome.timings.get("preprocess_ms", 0),
        outcome.timings.get("inference_ms", 0), outcome.timings.get("total_s", 0),
    )  # fmt: skip
    return {"succeeded": outcome.succeeded, "failed": outcome.failed, "skipped": outcome.skipped}


@app.task(name=SWEEP_TASK, autoretry_for=TRANSIENT_ERRORS, max_retries=3, retry_backoff=True)
def sweep() -> int:
    """Re-send documents left `queued` too long (a lost message, a worker killed mid-batch)."""
    stale = stale_documents(runtime().sessions, timedelta(seconds=settings.sweep_after_seconds))
    for job_id, ids in stale.items():
        enqueue_documents(app, job_id, ids, settings.job_batch_size)
    count = sum(map(len, stale.values()))
    if count:
        logger.warning("re-sent %d stale queued documents of %d jobs", count, len(stale))
    return count
