"""The worker's Celery app: `celery -A worker.celery_app worker -Q documents` (add `-B` for the
sweeper).

Messages carry ids only; images stay in object storage and state stays in the database. The queue
contract (names, configuration, enqueueing) is shared with the API in `digitflow.queue`.
"""

from digitflow.queue import make_celery
from worker.config import WorkerSettings

settings = WorkerSettings()
app = make_celery(settings, include=["worker.tasks"])
