"""The queue contract between the API (producer) and the workers (consumers).

Task and queue names, Celery's configuration and `enqueue_documents` live here, in the shared
package, so the API never imports `worker/`. Nothing happens at import: `make_celery` builds an
app (and, for the filesystem transport, its folders) only when a process asks for one.

Without REDIS_URL the broker is the embedded Redis server (digitflow.embedded) on a unix socket,
`redis+socket://`: the same transport, acks and redelivery as production.
"""

import uuid
from collections.abc import Sequence
from datetime import timedelta

from celery import Celery

from digitflow.settings import PlatformSettings

DOCUMENTS_QUEUE = "documents"
RECOGNIZE_TASK = "documents.recognize"
SWEEP_TASK = "documents.sweep"
PURGE_TASK = "jobs.purge"
# A message unacked this long (its worker vanished) is delivered again by Redis.
VISIBILITY_TIMEOUT_SECONDS = 600


def transport_options(settings: PlatformSettings) -> dict:
    if not settings.broker_url.startswith("filesystem://"):
        return {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS}
    folder = settings.data_dir / "broker"
    for sub in ("queue", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
        "polling_interval": settings.broker_polling_interval,
    }


def make_celery(settings: PlatformSettings, include: Sequence[str] = ()) -> Celery:
    """A Celery app on the configured broker: the API's producer, or (with the task modules
    in `include`) the worker's app."""
    app = Celery("digitflow", broker=settings.broker_url, include=list(include))
    app.conf.update(
        task_default_queue=DOCUMENTS_QUEUE,
        task_serializer="json",
        accept_content=["json"],
        # State lives in the database; a result backend would only duplicate it.
        task_ignore_result=True,
        # Ack after the batch is committed; a task whose process dies goes back to the queue.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message per process at a time: no hoarding, and the queue length shows the backlog
        # (KEDA scales workers on it).
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        broker_transport_options=transport_options(settings),
        beat_schedule={
            "sweep-stale-documents": {
                "task": SWEEP_TASK,
                "schedule": timedelta(seconds=settings.sweep_interval_seconds),
            },
            "purge-expired-jobs": {
                "task": PURGE_TASK,
                "schedule": timedelta(seconds=settings.purge_interval_seconds),
            },
        },
        # Beat (the sweeper's clock) keeps its last-run times here, not in the working directory.
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
    )
    return app


def enqueue_documents(
    app: Celery, job_id: uuid.UUID, document_ids: Sequence[uuid.UUID], batch_size: int
) -> int:
    """Send one recognition task per batch of documents; returns the number of tasks sent.

    Call only after the documents are committed: a worker must find them in the database.
    """
    sent = 0
    with app.producer_or_acquire() as producer:
        for start in range(0, len(document_ids), batch_size):
            batch = [str(i) for i in document_ids[start : start + batch_size]]
            app.send_task(
                RECOGNIZE_TASK, args=(str(job_id), batch), queue=DOCUMENTS_QUEUE, producer=producer
            )
            sent += 1
    return sent


def broker_problem(app: Celery) -> str | None:
    """None when the broker accepts a connection, else what is wrong (for readiness)."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=0, timeout=1)  # 0: no retries
    except Exception as exc:  # noqa: BLE001 - kombu/redis errors vary by transport
        return f"broker unreachable ({type(exc).__name__})"
    return None


def queue_depth(app: Celery, queue: str = DOCUMENTS_QUEUE) -> int:
    """Messages waiting in `queue` (not those a worker holds): the backlog, for metrics and
    back-pressure."""
    with app.connection_for_read() as connection:
        return connection.default_channel.queue_declare(queue, passive=True).message_count
