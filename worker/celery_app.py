"""The Celery app: `celery -A worker.celery_app worker -Q documents` (add `-B` for the sweeper).

Messages carry ids only; images stay in object storage and state stays in the database. The
broker is Redis when REDIS_URL is set, else Celery's filesystem transport under var/broker,
which needs no server (the embedded default).
"""

import uuid
from collections.abc import Sequence
from datetime import timedelta
from functools import lru_cache

from celery import Celery

from worker.config import WorkerSettings

DOCUMENTS_QUEUE = "documents"
RECOGNIZE_TASK = "documents.recognize"
SWEEP_TASK = "documents.sweep"


def make_celery(settings: WorkerSettings) -> Celery:
    app = Celery("digitflow", broker=settings.broker_url, include=["worker.tasks"])
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
        beat_schedule={
            "sweep-stale-documents": {
                "task": SWEEP_TASK,
                "schedule": timedelta(seconds=settings.sweep_interval_seconds),
            }
        },
    )
    # Beat (the sweeper's clock) keeps its last-run times here, not in the working directory.
    app.conf.beat_schedule_filename = str(settings.data_dir / "celerybeat-schedule")
    if settings.broker_url.startswith("filesystem://"):
        folder = settings.data_dir / "broker"
        for sub in ("queue", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        app.conf.broker_transport_options = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": settings.broker_polling_interval,
        }
    else:
        # A message unacked this long (its worker vanished) is delivered again by Redis.
        app.conf.broker_transport_options = {"visibility_timeout": 600}
    return app


@lru_cache(maxsize=4)
def _producer(settings_json: str) -> Celery:
    return make_celery(WorkerSettings.model_validate_json(settings_json))


def producer_for(settings) -> Celery:
    """A Celery app for sending tasks with these settings (the API's view of the broker)."""
    fields = settings.model_dump(mode="json", include=set(WorkerSettings.model_fields))
    return _producer(WorkerSettings.model_validate(fields).model_dump_json())


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
                RECOGNIZE_TASK,
                args=(str(job_id), batch),
                queue=DOCUMENTS_QUEUE,
                producer=producer,
            )
            sent += 1
    return sent


settings = WorkerSettings()
app = make_celery(settings)
