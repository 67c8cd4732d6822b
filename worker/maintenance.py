"""The workers' housekeeping, run by beat: give up uploads that died, purge expired jobs.

An upload commits its documents batch by batch and is accepted only when it completes; one whose
request died (client gone, API killed, database restarted) stays `uploading` and stops writing.
After UPLOAD_ABANDONED_AFTER_SECONDS of silence it is failed here, with the reason, its
documents dropped and its stored files deleted: nothing of it was ever accepted.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from digitflow.db import Document, Job, JobStatus
from digitflow.storage import Storage

logger = logging.getLogger("digitflow.worker")

ABANDONED_REASON = (
    "the upload did not complete (client gone, API or database restarted): nothing of it was "
    "accepted; send it again, with the same Idempotency-Key if you like"
)


def _now() -> datetime:
    return datetime.now(UTC)


def _job_folder(job_id: uuid.UUID) -> str:
    return f"jobs/{job_id}/"


def fail_abandoned_uploads(
    sessions: sessionmaker[Session], storage: Storage, silent_for: timedelta
) -> list[uuid.UUID]:
    """Fail every job still `uploading` that has written nothing for `silent_for`."""
    now = _now()
    with sessions.begin() as session:
        ids = list(
            session.scalars(
                update(Job)
                .where(Job.status == JobStatus.uploading, Job.updated_at < now - silent_for)
                .values(
                    status=JobStatus.failed, error=ABANDONED_REASON, total=0, succeeded=0,
                    failed=0, needs_review=0, finished_at=now, updated_at=now,
                )
                .returning(Job.id)
            )
        )  # fmt: skip
        if ids:
            session.execute(delete(Document).where(Document.job_id.in_(ids)))
    for job_id in ids:
        storage.delete_prefix(_job_folder(job_id))
        logger.warning("gave up an abandoned upload", extra={"job_id": str(job_id)})
    return ids


@dataclass
class Purged:
    jobs: int = 0
    image_jobs: int = 0
    files: int = 0


def purge_expired(
    sessions: sessionmaker[Session],
    storage: Storage,
    results_days: float | None,
    images_days: float | None,
    limit: int = 500,
) -> Purged:
    """Delete finished jobs older than `results_days` (rows and files), and the stored images
    of finished jobs older than `images_days` (their results stay)."""
    purged, now = Purged(), _now()
    if results_days is not None:
        with sessions.begin() as session:
            ids = list(
                session.scalars(
                    delete(Job)
                    .where(Job.id.in_(_finished_before(now - timedelta(days=results_days), limit)))
                    .returning(Job.id)
                )
            )
        purged.jobs = len(ids)
        purged.files += sum(storage.delete_prefix(_job_folder(job_id)) for job_id in ids)
    if images_days is not None:
        with sessions.begin() as session:
            old = _finished_before(now - timedelta(days=images_days), limit)
            ids = list(
                session.scalars(
                    update(Job)
                    .where(Job.id.in_(old.where(Job.images_deleted_at.is_(None))))
                    .values(images_deleted_at=now)
                    .returning(Job.id)
                )
            )
        purged.image_jobs = len(ids)
        purged.files += sum(storage.delete_prefix(_job_folder(job_id)) for job_id in ids)
    return purged


def _finished_before(moment: datetime, limit: int):
    return select(Job.id).where(Job.finished_at < moment).order_by(Job.finished_at).limit(limit)
